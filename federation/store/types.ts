// The storage contract of the federation API server: an etcd-like revisioned key-value log.
// Every successful write gets a new store-wide revision; reads can be served at any revision not
// yet compacted, and watchers receive every write after a given revision, in revision order.

export interface KeyValue {
  key: string;
  value: Buffer;
  /** Revision of the write that created this key (a re-create after a delete starts over). */
  createRevision: number;
  /** Revision of the write that produced this version. */
  modRevision: number;
}

export interface Event {
  type: 'PUT' | 'DELETE';
  /** For DELETE: the key with an empty value; modRevision is the revision of the delete. */
  kv: KeyValue;
  /** The version this write replaced; absent for a create. */
  prevKv?: KeyValue;
  revision: number;
}

export interface ListResult {
  items: KeyValue[];
  /** The revision the list was read at: pass it back with continueKey for the next page. */
  revision: number;
  more: boolean;
  /** startKey for the next page (set when more is true). */
  continueKey?: string;
}

export interface Watch {
  cancel(): void;
}

export interface Store {
  /** Current (latest) revision of the whole store. */
  currentRevision(): Promise<number>;
  /**
   * The key at `revision` (default or 0: latest); null if absent or deleted at that revision.
   * 'COMPACTED' below the compacted revision, 'FUTURE_REVISION' above the current one.
   */
  get(key: string, opts?: { revision?: number }): Promise<KeyValue | null>;
  /**
   * Keys starting with `prefix`, ordered by key (UTF-8 byte order), read at one revision (default:
   * latest). For the next page pass { revision: result.revision, startKey: result.continueKey }:
   * the continuation then reads the same snapshot however many writes happened in between.
   */
  list(prefix: string, opts?: { revision?: number; limit?: number; startKey?: string }): Promise<ListResult>;
  /** 'ALREADY_EXISTS' if the key exists (a deleted key can be created again). */
  create(key: string, value: Buffer): Promise<KeyValue>;
  /** Compare-and-swap: 'CONFLICT' if the key's modRevision is not expectedModRevision, 'NOT_FOUND'. */
  update(key: string, value: Buffer, expectedModRevision: number): Promise<KeyValue>;
  /**
   * Writes a tombstone and returns the version that was deleted (as it was: its own modRevision).
   * 'CONFLICT' if expectedModRevision is given and differs, 'NOT_FOUND'.
   */
  delete(key: string, expectedModRevision?: number): Promise<KeyValue>;
  /**
   * Delivers every write to a key under `prefix` with revision > fromRevision, in revision order,
   * without gaps or duplicates: first the history already in the log, then new writes as they
   * commit. onError ends the watch: 'COMPACTED' if history after fromRevision is no longer
   * complete, 'UNAVAILABLE' if the database cannot be read or the store is closed. Event objects
   * are shared by all watchers that receive them: treat them as read-only.
   */
  watch(prefix: string, fromRevision: number, onEvent: (e: Event) => void, onError: (e: StoreError) => void): Watch;
  /**
   * Removes versions superseded at or below `revision` and tombstones at or below it, in small
   * batches. Afterwards reads and watches below `revision` fail with 'COMPACTED'; latest values
   * stay readable. Compacting to a revision already compacted is a no-op.
   */
  compact(revision: number): Promise<void>;
  close(): Promise<void>;
}

export type StoreErrorCode =
  | 'ALREADY_EXISTS'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'COMPACTED'
  /** A read, watch or compaction asked for a revision after the current one. */
  | 'FUTURE_REVISION'
  /** The database failed or could not be reached; the operation may be retried. */
  | 'UNAVAILABLE'
  /** The disk under the database is full: the write was not stored; retrying succeeds once space returns. */
  | 'NO_SPACE'
  /** The database cannot be written (read-only file, file system or server): the write was not stored. */
  | 'READ_ONLY'
  /** A value could not be encrypted or decrypted (KMS unreachable, wrong key, tampered value). */
  | 'ENCRYPTION_FAILED';

export class StoreError extends Error {
  override name = 'StoreError';

  constructor(
    readonly code: StoreErrorCode,
    message: string,
  ) {
    super(message);
  }
}
