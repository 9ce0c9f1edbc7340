/**
 * The one module that builds NATS subjects. Nothing else in Shoal concatenates subject
 * strings: every token passes through {@link assertToken} here, so a name with a dot, a space
 * or a wildcard can never reach NATS as a subject.
 *
 * Two spaces, so that NATS permissions can give clients the API and nothing else:
 * - public:   `<prefix>.v1.…`  (PROTOCOL.md)
 * - internal: `_<prefix>.…`    (actors, system introspection, Raft, heartbeats)
 */
import { InvalidArgumentError } from './errors.js';

export const DEFAULT_PREFIX = 'shoal';

const TOKEN = /^[A-Za-z0-9_-]{1,128}$/;
const PREFIX = /^[A-Za-z0-9-][A-Za-z0-9_-]{0,31}$/;

/** Throws unless `token` is one safe subject token (letters, digits, `_`, `-`; 1..128 chars). */
export function assertToken(token: string, what = 'subject token'): string {
  if (typeof token !== 'string' || !TOKEN.test(token)) {
    throw new InvalidArgumentError(
      `${what} ${JSON.stringify(token)} is not valid: use 1 to 128 of A-Z a-z 0-9 _ -`,
    );
  }
  return token;
}

/**
 * An actor's name: one or more tokens joined by dots (`replica.docs.0`). Dots make the name
 * hierarchical in the subject space, so `…actor.n1.replica.>` reaches every replica of a node.
 */
export function assertActorName(name: string): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > 200) {
    throw new InvalidArgumentError(`actor name ${JSON.stringify(name)} must be 1 to 200 characters`);
  }
  for (const part of name.split('.')) assertToken(part, `actor name ${JSON.stringify(name)} has a part that`);
  return name;
}

export class Subjects {
  readonly prefix: string;
  /** Root of every internal subject: `_<prefix>`. */
  readonly internalRoot: string;

  constructor(prefix: string = DEFAULT_PREFIX) {
    if (typeof prefix !== 'string' || !PREFIX.test(prefix)) {
      throw new InvalidArgumentError(
        `prefix ${JSON.stringify(prefix)} is not valid: 1 to 32 of A-Z a-z 0-9 _ -, not starting with _`,
      );
    }
    this.prefix = prefix;
    this.internalRoot = `_${prefix}`;
  }

  // ---- public API (PROTOCOL.md) ----

  /** `<prefix>.v1.<collection>.<op>`, e.g. `shoal.v1.docs.search`. */
  api(collection: string, op: string): string {
    return `${this.prefix}.v1.${assertToken(collection, 'collection')}.${assertToken(op, 'operation')}`;
  }

  /** `<prefix>.v1.admin.<area>.<op>`, e.g. `shoal.v1.admin.collections.create`. */
  admin(area: string, op: string): string {
    return `${this.prefix}.v1.admin.${assertToken(area, 'admin area')}.${assertToken(op, 'operation')}`;
  }

  /** One operation on any collection: `<prefix>.v1.*.<op>` (for subscribing). */
  apiPattern(op: string): string {
    return `${this.prefix}.v1.*.${assertToken(op, 'operation')}`;
  }

  /** The collection named by a data subject `<prefix>.v1.<collection>.<op>`. */
  collectionOf(subject: string): string | undefined {
    const parts = subject.split('.');
    return parts.length === 4 && parts[0] === this.prefix && parts[1] === 'v1' ? parts[2] : undefined;
  }

  /** A collection's change stream (PROTOCOL.md, Change streams): `<prefix>.changes.v1.<collection>`. */
  changes(collection: string): string {
    return `${this.prefix}.changes.v1.${assertToken(collection, 'collection')}`;
  }

  /** Every public subject: `<prefix>.v1.>`. */
  apiAll(): string {
    return `${this.prefix}.v1.>`;
  }

  // ---- internal ----

  /** The subject an actor receives on: `_<prefix>.actor.<system>.<name>`. */
  actor(system: string, name: string): string {
    return `${this.internalRoot}.actor.${assertToken(system, 'actor system')}.${assertActorName(name)}`;
  }

  /** Where one actor system answers introspection requests. */
  introspect(system: string): string {
    return `${this.internalRoot}.sys.${assertToken(system, 'actor system')}.introspect`;
  }

  /** Where every actor system answers introspection requests (one reply per system). */
  introspectAll(): string {
    return `${this.internalRoot}.sys.introspect`;
  }

  /**
   * Any other internal subject: `_<prefix>.<kind>.<token>…`, every token validated. Higher
   * layers (Raft transport, shard leader subjects, heartbeats) build their subjects here.
   */
  internal(kind: string, ...tokens: string[]): string {
    let s = `${this.internalRoot}.${assertToken(kind, 'subject kind')}`;
    for (const t of tokens) s += `.${assertToken(t)}`;
    return s;
  }

  /** Every internal subject under `_<prefix>.<kind>.<token>…`: `…​.>`, for subscribing. */
  internalAll(kind: string, ...tokens: string[]): string {
    return `${this.internal(kind, ...tokens)}.>`;
  }
}
