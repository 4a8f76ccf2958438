// The log row model shared by both backends: how a write is validated against a key's latest
// version and turned into the row that records it, and how rows are read back as key-values and
// watch events. Keeping this in one place means SQLite and MySQL cannot disagree on semantics.
import { StoreError, type Event, type KeyValue, type ListResult } from './types.js';

/** One row of the log table: the write that produced revision `id`. */
export interface LogRow {
  id: number;
  name: string;
  /** The write created the key (no prevKv even if a tombstone precedes it). */
  created: boolean;
  /** The row is a tombstone. */
  deleted: boolean;
  createRevision: number;
  /** Revision of the row this one replaced (0 for a first create); unique per key: the CAS guard. */
  prevRevision: number;
  value: Buffer;
  /** The replaced row's value, so watch events carry prevKv even after that row is compacted. */
  oldValue: Buffer | null;
}

/** A key's latest row as the write path reads it from the current table. */
export interface LatestVersion {
  revision: number;
  deleted: boolean;
  createRevision: number;
  value: Buffer;
}

export type WriteRequest =
  | { kind: 'create'; key: string; value: Buffer }
  | { kind: 'update'; key: string; value: Buffer; expectedModRevision: number }
  | { kind: 'delete'; key: string; expectedModRevision?: number };

export interface PlannedWrite {
  row: LogRow;
  /** What the Store method returns: the new version, or for a delete the version deleted. */
  result: KeyValue;
}

/** Key bytes the MySQL schema can index (VARBINARY(1024)); enforced for both backends alike. */
export const MAX_KEY_BYTES = 1024;

const EMPTY = Buffer.alloc(0);

export function validateKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0) throw new TypeError('store key must be a non-empty string');
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw new RangeError(`store key longer than ${MAX_KEY_BYTES} bytes`);
}

/**
 * Checks a write against the key's latest version and builds the log row for it at `revision`.
 * Throws the StoreError the caller must see (the transaction is then rolled back).
 */
export function planWrite(request: WriteRequest, latest: LatestVersion | undefined, revision: number): PlannedWrite {
  const live = latest !== undefined && !latest.deleted ? latest : undefined;
  const key = request.key;
  if (request.kind === 'create') {
    if (live) throw new StoreError('ALREADY_EXISTS', `key ${key} already exists`);
    const row: LogRow = {
      id: revision,
      name: key,
      created: true,
      deleted: false,
      createRevision: revision,
      prevRevision: latest?.revision ?? 0,
      value: request.value,
      oldValue: null,
    };
    return { row, result: keyValueOf(row) };
  }
  if (!live) throw new StoreError('NOT_FOUND', `key ${key} not found`);
  const expected = request.expectedModRevision;
  if (expected !== undefined && expected !== live.revision) {
    throw new StoreError('CONFLICT', `key ${key} is at revision ${live.revision}, not ${expected}`);
  }
  const row: LogRow = {
    id: revision,
    name: key,
    created: false,
    deleted: request.kind === 'delete',
    createRevision: live.createRevision,
    prevRevision: live.revision,
    value: request.kind === 'delete' ? EMPTY : request.value,
    oldValue: live.value,
  };
  const result =
    request.kind === 'delete'
      ? { key, value: live.value, createRevision: live.createRevision, modRevision: live.revision }
      : keyValueOf(row);
  return { row, result };
}

export function keyValueOf(row: Pick<LogRow, 'id' | 'name' | 'createRevision' | 'value'>): KeyValue {
  return { key: row.name, value: row.value, createRevision: row.createRevision, modRevision: row.id };
}

export function eventOf(row: LogRow): Event {
  const event: Event = { type: row.deleted ? 'DELETE' : 'PUT', kv: keyValueOf(row), revision: row.id };
  if (!row.created && row.prevRevision > 0) {
    event.prevKv = {
      key: row.name,
      value: row.oldValue ?? EMPTY,
      createRevision: row.createRevision,
      modRevision: row.prevRevision,
    };
  }
  return event;
}

/** Key range of a prefix scan: start inclusive, end exclusive (null: no upper bound). */
export interface KeyRange {
  start: string;
  end: string | null;
}

/**
 * The range of keys starting with `prefix`, from `startKey` if that lies further. Both databases
 * order keys by their UTF-8 bytes, which is code point order, so the end bound is the prefix with
 * its last code point incremented (dropping trailing U+10FFFF).
 */
export function keyRange(prefix: string, startKey?: string): KeyRange {
  const start = startKey !== undefined && compareKeys(startKey, prefix) > 0 ? startKey : prefix;
  const codePoints = [...prefix];
  while (codePoints.length > 0) {
    const last = codePoints.pop()!.codePointAt(0)!;
    if (last < 0x10ffff) {
      const next = last + 1 === 0xd800 ? 0xe000 : last + 1; // skip the surrogate block
      return { start, end: codePoints.join('') + String.fromCodePoint(next) };
    }
  }
  return { start, end: null };
}

export function inRange(key: string, range: KeyRange): boolean {
  return compareKeys(key, range.start) >= 0 && (range.end === null || compareKeys(key, range.end) < 0);
}

/** Byte order of the UTF-8 encodings (JS `<` compares UTF-16 units, which differs above U+FFFF). */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** The startKey that continues a list after `lastKey`: the smallest key greater than it. */
export function keyAfter(lastKey: string): string {
  return `${lastKey}\u0000`;
}

/**
 * Resolves the revision a read is served at and checks it against what the log still holds.
 * `requested` 0 or undefined means the latest revision.
 */
export function readRevision(requested: number | undefined, current: number, compacted: number): number {
  if (requested === undefined || requested === 0) return current;
  if (!Number.isSafeInteger(requested) || requested < 0) throw new RangeError(`invalid revision ${requested}`);
  if (requested > current) throw new StoreError('FUTURE_REVISION', `revision ${requested} is after the current revision ${current}`);
  if (requested < compacted) throw new StoreError('COMPACTED', `revision ${requested} is compacted (compacted up to ${compacted})`);
  return requested;
}

/** Builds a ListResult page from up to limit + 1 rows read in key order. */
export function listPage(rows: KeyValue[], revision: number, limit: number | undefined): ListResult {
  const more = limit !== undefined && limit > 0 && rows.length > limit;
  const items = more ? rows.slice(0, limit) : rows;
  return more ? { items, revision, more, continueKey: keyAfter(items[items.length - 1]!.key) } : { items, revision, more };
}
