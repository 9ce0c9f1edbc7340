/**
 * The operations flags, checked before anything is sent: the rebalance throttles, byte rates with
 * units, and a node's zone and failure-detection settings. Each mistake is a UsageError naming
 * the flag (or the variable it came from) and the limit.
 */
import type { RebalanceSettings } from '../client/ops.js';
import { HEARTBEAT_INTERVAL_MS } from '../cluster/membership.js';
import { describeError } from '../runtime/errors.js';
import { assertToken } from '../runtime/subjects.js';
import { MAX_BYTES_PER_SEC, REPLACE_AFTER_MS_MAX, REPLACE_AFTER_MS_MIN } from '../api/ops.js';
import { UsageError, intOption } from './command.js';

/** PROTOCOL.md, `rebalance.configure`. */
export const MAX_CONCURRENT_MOVES_MIN = 1;
export const MAX_CONCURRENT_MOVES_MAX = 64;
/** A node is `down` after at least two missed heartbeats, and at most ten minutes of silence. */
export const DOWN_AFTER_MS_MIN = 2 * HEARTBEAT_INTERVAL_MS;
export const DOWN_AFTER_MS_MAX = 600_000;

const UNITS: Readonly<Record<string, number>> = {
  '': 1, b: 1,
  kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12,
  kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40,
};

/**
 * A byte count ≥ 0 with an optional unit and `/s`: `52428800`, `50MiB`, `10MB`, `1.5 GiB/s`.
 * kB, MB, GB, TB are powers of 1000; KiB, MiB, GiB, TiB powers of 1024 (case does not matter).
 * A bare K, M or G is refused: it is 1000 to some and 1024 to others.
 */
export function parseBytes(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([A-Za-z]*)(?:\/s)?$/.exec(text.trim());
  const unit = m ? UNITS[(m[2] ?? '').toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    const bare = m && /^[kmgt]$/i.test(m[2] ?? '');
    throw new UsageError(
      bare
        ? `${flag}: '${text}' is ambiguous; write ${m[1]}${(m[2] ?? '').toUpperCase()}B (powers of 1000) or ${m[1]}${(m[2] ?? '').toUpperCase()}iB (powers of 1024)`
        : `${flag} must be a number of bytes ≥ 0, optionally with a unit (B, kB, MB, GB, KiB, MiB, GiB), got '${text}'`,
    );
  }
  const bytes = Math.floor(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes) || bytes > MAX_BYTES_PER_SEC) throw new UsageError(`${flag} must be at most ${MAX_BYTES_PER_SEC} bytes (1 TiB), got '${text}'`);
  return bytes;
}

/** `replaceAfterMs` in milliseconds, within the cluster's bounds (src/api/ops.ts), or undefined when absent. */
export function positiveMs(value: string | undefined, name: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < REPLACE_AFTER_MS_MIN || n > REPLACE_AFTER_MS_MAX) {
    throw new UsageError(`${name} must be ${REPLACE_AFTER_MS_MIN} to ${REPLACE_AFTER_MS_MAX} (milliseconds), got ${value}`);
  }
  return n;
}

function bool(value: string | undefined, name: string): boolean | undefined {
  if (value === undefined) return undefined;
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new UsageError(`${name} must be true or false, got ${value}`);
}

export interface ConfigureValues {
  'max-concurrent-moves'?: string | undefined;
  'max-bytes-per-sec'?: string | undefined;
  auto?: string | undefined;
  'replace-after-ms'?: string | undefined;
}

/** The flags of `shoal rebalance configure`; at least one must be given. */
export function rebalanceSettingsFrom(v: ConfigureValues): RebalanceSettings {
  const settings: RebalanceSettings = {};
  const moves = intOption(v['max-concurrent-moves'], '--max-concurrent-moves', MAX_CONCURRENT_MOVES_MIN, MAX_CONCURRENT_MOVES_MAX);
  if (moves !== undefined) settings.maxConcurrentMoves = moves;
  if (v['max-bytes-per-sec'] !== undefined) settings.maxBytesPerSec = parseBytes(v['max-bytes-per-sec'], '--max-bytes-per-sec');
  const auto = bool(v.auto, '--auto');
  if (auto !== undefined) settings.auto = auto;
  const replace = positiveMs(v['replace-after-ms'], '--replace-after-ms');
  if (replace !== undefined) settings.replaceAfterMs = replace;
  if (Object.keys(settings).length === 0) {
    throw new UsageError('rebalance configure needs at least one of --max-concurrent-moves, --max-bytes-per-sec, --auto, --replace-after-ms');
  }
  return settings;
}

/** A zone label: the characters of a node id (letters, digits, `_`, `-`). */
export function zoneOf(value: string, name: string): string {
  try {
    return assertToken(value, name);
  } catch (err) {
    throw new UsageError(describeError(err));
  }
}

export interface NodeSettingsValues {
  zone?: string | undefined;
  'down-after-ms'?: string | undefined;
  'replace-after-ms'?: string | undefined;
}

export interface NodeSettings {
  zone?: string;
  downAfterMs?: number;
  replaceAfterMs?: number;
}

/** `shoal node`'s zone and failure detection, from its flags or else SHOAL_ZONE, SHOAL_DOWN_AFTER_MS, SHOAL_REPLACE_AFTER_MS. */
export function nodeSettingsFrom(v: NodeSettingsValues, env: NodeJS.ProcessEnv): NodeSettings {
  const pick = (flag: keyof NodeSettingsValues, variable: string): [string | undefined, string] =>
    v[flag] !== undefined ? [v[flag], `--${flag}`] : [env[variable] || undefined, variable];
  const settings: NodeSettings = {};
  const [zone, zoneName] = pick('zone', 'SHOAL_ZONE');
  if (zone !== undefined) settings.zone = zoneOf(zone, zoneName);
  const [down, downName] = pick('down-after-ms', 'SHOAL_DOWN_AFTER_MS');
  const downAfterMs = intOption(down, downName, DOWN_AFTER_MS_MIN, DOWN_AFTER_MS_MAX);
  if (downAfterMs !== undefined) settings.downAfterMs = downAfterMs;
  const [replace, replaceName] = pick('replace-after-ms', 'SHOAL_REPLACE_AFTER_MS');
  const replaceAfterMs = positiveMs(replace, replaceName);
  if (replaceAfterMs !== undefined) settings.replaceAfterMs = replaceAfterMs;
  return settings;
}

/** `--zones a,b,c` of `shoal dev`: the zones to hand out to its nodes in turn. */
export function zonesFrom(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const zones = value.split(',').map((z) => z.trim());
  return zones.map((z) => zoneOf(z, '--zones entry'));
}
