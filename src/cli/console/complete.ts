/** TAB completion: commands first, then each argument by what its command says it is (complete()). */
import type { Completion, Registry } from './registry.js';

/** What completion knows of the cluster (ConsoleSession.completions). */
export interface Known {
  actors: string[];
  collections: { name: string; shards: number }[];
  nodes: string[];
}

/** Flags whose value is a node id. */
const NODE_FLAGS = new Set(['--node', '--to']);

function candidates(kind: Completion, registry: Registry, known: Known): readonly string[] {
  if (typeof kind === 'object') return kind.words;
  switch (kind) {
    case 'command':
      return registry.names();
    case 'actor':
      return known.actors;
    case 'collection':
      return known.collections.map((c) => c.name);
    case 'shard':
      return known.collections.flatMap((c) => Array.from({ length: c.shards }, (_, i) => `${c.name}/${i}`));
    case 'node':
      return known.nodes;
  }
}

/**
 * readline's completer: the words that could stand for the one under the cursor (at the end of
 * `line`), and that word. `known` is asked only when an argument needs it.
 */
export async function complete(line: string, registry: Registry, known: () => Promise<Known>): Promise<[string[], string]> {
  const segment = line.slice(line.lastIndexOf(';') + 1);
  const words = segment.trimStart().split(/\s+/);
  const current = words.pop() ?? '';
  let kind: Completion | undefined;
  if (words.length === 0) {
    kind = 'command';
  } else {
    const cmd = registry.get(words[0] as string);
    const previous = words[words.length - 1] as string;
    if (NODE_FLAGS.has(previous)) kind = 'node';
    else if (cmd && !current.startsWith('-')) {
      // the positional under the cursor: words after the command that are not flags or their values
      let n = 0;
      for (let i = 1; i < words.length; i++) {
        const w = words[i] as string;
        if (w.startsWith('--')) {
          if (NODE_FLAGS.has(w)) i++;
        } else n++;
      }
      kind = cmd.complete?.[n];
    }
  }
  if (kind === undefined) return [[], current];
  const pool = candidates(kind, registry, typeof kind === 'string' && kind !== 'command' ? await known() : { actors: [], collections: [], nodes: [] });
  const hits = pool.filter((c) => c.startsWith(current));
  // one hit: complete it and a space after, ready for the next argument
  return [hits.length === 1 ? [`${hits[0] as string} `] : [...hits].sort(), current];
}
