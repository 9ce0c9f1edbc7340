/** Building, checking and decoding log entries. */
import { crc32, crc32Number } from './crc32.js';
import type { ConfState, Entry, EntryType, LogIndex, NodeId, Term } from './types.js';

/**
 * Each entry type's code: in the checksum ({@link entryCrc}) and in the header of a stored
 * entry. Durable: entries already on disk carry these codes, so a code is never renumbered or
 * reused; a new type takes a new code.
 */
export const ENTRY_TYPE_CODES: Readonly<Record<EntryType, number>> = { normal: 1, noop: 2, config: 3 };

/** The checksum an entry must carry: CRC-32 over index, term, type code and data. */
export function entryCrc(index: number, term: number, type: EntryType, data: Uint8Array): number {
  let c = crc32Number(index);
  c = crc32Number(term, c);
  c = crc32Number(ENTRY_TYPE_CODES[type], c);
  return crc32(data, c);
}

export function makeEntry(index: LogIndex, term: Term, type: EntryType, data: Uint8Array): Entry {
  return { index, term, type, data, crc: entryCrc(index, term, type, data) };
}

/** True when the entry's checksum matches its content. */
export function entryIntact(e: Entry): boolean {
  return ENTRY_TYPE_CODES[e.type] !== undefined && e.data instanceof Uint8Array && e.crc === entryCrc(e.index, e.term, e.type, e.data);
}

/** Bytes an entry weighs for flow control (data plus a fixed overhead). */
export function entrySize(e: Entry): number {
  return e.data.length + 32;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A configuration as the data of a `config` entry (JSON in UTF-8). */
export function encodeConf(conf: ConfState): Uint8Array {
  return enc.encode(JSON.stringify({ voters: conf.voters, learners: conf.learners }));
}

export function decodeConf(data: Uint8Array): ConfState {
  const v = JSON.parse(dec.decode(data)) as { voters?: unknown; learners?: unknown };
  const ids = (x: unknown): NodeId[] => (Array.isArray(x) ? x.map((s) => String(s) as NodeId) : []);
  return { voters: ids(v.voters), learners: ids(v.learners) };
}

export function sameConf(a: ConfState, b: ConfState): boolean {
  const key = (c: ConfState): string => `${[...c.voters].sort().join(',')}|${[...c.learners].sort().join(',')}`;
  return key(a) === key(b);
}

export const EMPTY_CONF: ConfState = { voters: [], learners: [] };
