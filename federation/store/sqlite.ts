// SQLite backend (better-sqlite3). The driver is synchronous: every Store method runs its
// statements to completion inside one call, so within a process nothing interleaves with a
// transaction; BEGIN IMMEDIATE and busy_timeout cover other processes opening the same file.
//
// Durability: WAL with synchronous=NORMAL. A commit is written to the WAL file (in the OS page
// cache) before the call returns and is fsynced only at checkpoints, so an acknowledged write
// survives the process being killed (kill -9, crash) but not an OS crash or power loss, which may
// lose the last commits (never corrupt the database). That trade is accepted for the store.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { keyRange, keyValueOf, listPage, planWrite, readRevision, validateKey, type KeyRange, type LatestVersion, type LogRow, type WriteRequest } from './log.js';
import { StoreError, type KeyValue, type ListResult, type Store } from './types.js';
import { WatchHub, type LogPage } from './watch-hub.js';
import { LogStore } from './log-store.js';

export interface SqliteStoreOptions {
  /** How long a write waits for another process holding the write lock. */
  busyTimeoutMs?: number;
  /**
   * Only needed when other processes write to the same file: this process's writes wake its
   * watchers directly, so by default there is no poll.
   */
  pollIntervalMs?: number | null;
  /** Revisions removed per compaction transaction (writes wait for a batch, not the whole run). */
  compactBatchRevisions?: number;
}

interface RawLogRow {
  id: number;
  name: string;
  created: number;
  deleted: number;
  create_revision: number;
  prev_revision: number;
  value: Buffer;
  old_value: Buffer | null;
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS log (
    id INTEGER PRIMARY KEY,                 -- the revision, from the revision counter (never reused)
    name TEXT NOT NULL,
    created INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    value BLOB NOT NULL,
    old_value BLOB
  );
  CREATE UNIQUE INDEX IF NOT EXISTS log_name_prev_revision ON log (name, prev_revision);
  CREATE INDEX IF NOT EXISTS log_name_id ON log (name, id);
  -- The latest row of every key (tombstones included until compacted): latest reads are index
  -- lookups and range scans here instead of MAX(id) ... GROUP BY name over the whole history.
  CREATE TABLE IF NOT EXISTS current (
    name TEXT PRIMARY KEY,
    revision INTEGER NOT NULL,
    deleted INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS revision (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    current_revision INTEGER NOT NULL,
    compacted_revision INTEGER NOT NULL
  );
  INSERT OR IGNORE INTO revision (id, current_revision, compacted_revision) VALUES (1, 0, 0);
`;

const LOG_COLUMNS = 'l.id, l.name, l.created, l.deleted, l.create_revision, l.prev_revision, l.value, l.old_value';

/**
 * The row a key had at @revision: its current row if not modified since, else the newest
 * history row at or before @revision. Only keys written after @revision touch the log's
 * (name, id) index; at the latest revision a list is a range scan of `current`.
 */
const AS_OF_REVISION_JOIN = `
  JOIN log l ON l.id = CASE WHEN c.revision <= @revision THEN c.revision
    ELSE (SELECT MAX(h.id) FROM log h WHERE h.name = c.name AND h.id <= @revision) END`;

function prepareStatements(db: Database.Database) {
  return {
    revisions: db.prepare<[], { current_revision: number; compacted_revision: number }>(
      'SELECT current_revision, compacted_revision FROM revision WHERE id = 1',
    ),
    nextRevision: db
      .prepare<[], number>('UPDATE revision SET current_revision = current_revision + 1 WHERE id = 1 RETURNING current_revision')
      .pluck(),
    latest: db.prepare<[string], { revision: number; deleted: number; create_revision: number; value: Buffer }>(
      'SELECT c.revision, c.deleted, l.create_revision, l.value FROM current c JOIN log l ON l.id = c.revision WHERE c.name = ?',
    ),
    insertLog: db.prepare<[number, string, number, number, number, number, Buffer, Buffer | null]>(
      'INSERT INTO log (id, name, created, deleted, create_revision, prev_revision, value, old_value) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    upsertCurrent: db.prepare<[string, number, number]>(
      'INSERT INTO current (name, revision, deleted) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET revision = excluded.revision, deleted = excluded.deleted',
    ),
    getLatest: db.prepare<[string], RawLogRow>(
      `SELECT ${LOG_COLUMNS} FROM current c JOIN log l ON l.id = c.revision WHERE c.name = ? AND c.deleted = 0`,
    ),
    getAt: db.prepare<[string, number], RawLogRow>(`SELECT ${LOG_COLUMNS} FROM log l WHERE l.name = ? AND l.id <= ? ORDER BY l.id DESC LIMIT 1`),
    listBounded: db.prepare<[{ revision: number; start: string; end: string; limit: number }], RawLogRow>(
      `SELECT ${LOG_COLUMNS} FROM current c ${AS_OF_REVISION_JOIN}
       WHERE c.name >= @start AND c.name < @end AND l.deleted = 0 ORDER BY c.name LIMIT @limit`,
    ),
    listUnbounded: db.prepare<[{ revision: number; start: string; limit: number }], RawLogRow>(
      `SELECT ${LOG_COLUMNS} FROM current c ${AS_OF_REVISION_JOIN}
       WHERE c.name >= @start AND l.deleted = 0 ORDER BY c.name LIMIT @limit`,
    ),
    tail: db.prepare<[number, number], RawLogRow>(`SELECT ${LOG_COLUMNS} FROM log l WHERE l.id > ? ORDER BY l.id LIMIT ?`),
    historyBounded: db.prepare<[number, number, string, string, number], RawLogRow>(
      `SELECT ${LOG_COLUMNS} FROM log l WHERE l.id > ? AND l.id <= ? AND l.name >= ? AND l.name < ? ORDER BY l.id LIMIT ?`,
    ),
    historyUnbounded: db.prepare<[number, number, string, number], RawLogRow>(
      `SELECT ${LOG_COLUMNS} FROM log l WHERE l.id > ? AND l.id <= ? AND l.name >= ? ORDER BY l.id LIMIT ?`,
    ),
    // A row is superseded when a later row names it as prev_revision; tombstones go themselves.
    compactLog: db.prepare<[{ from: number; to: number }]>(
      `DELETE FROM log WHERE id IN (
         SELECT prev_revision FROM log WHERE id > @from AND id <= @to AND prev_revision > 0
         UNION ALL SELECT id FROM log WHERE id > @from AND id <= @to AND deleted = 1)`,
    ),
    // Tombstones still latest leave `current` too (run before compactLog removes them from the log).
    compactCurrent: db.prepare<[{ from: number; to: number }]>(
      `DELETE FROM current WHERE deleted = 1 AND revision <= @to
         AND name IN (SELECT name FROM log WHERE id > @from AND id <= @to AND deleted = 1)`,
    ),
    setCompacted: db.prepare<[number]>('UPDATE revision SET compacted_revision = ? WHERE id = 1'),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

export class SqliteStore extends LogStore implements Store {
  private readonly db: Database.Database;
  protected readonly hub: WatchHub;
  private readonly compactBatchRevisions: number;
  private closed = false;
  private readonly statements: Statements;

  constructor(file: string, options: SqliteStoreOptions = {}) {
    super();
    this.db = openDatabase(file, (db) => {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 30_000}`);
      db.exec(SCHEMA);
    });
    this.compactBatchRevisions = options.compactBatchRevisions ?? 1000;
    this.statements = prepareStatements(this.db);
    this.hub = new WatchHub(
      { currentRevision: () => this.currentRevision(), readLog: async (after, limit, filter) => this.readLog(after, limit, filter) },
      { pollIntervalMs: options.pollIntervalMs ?? null, batchSize: 500 },
    );
  }

  async currentRevision(): Promise<number> {
    return this.run(() => this.statements.revisions.get()!.current_revision);
  }

  async get(key: string, opts: { revision?: number } = {}): Promise<KeyValue | null> {
    validateKey(key);
    return this.run(() => {
      if (!opts.revision) return toKeyValue(this.statements.getLatest.get(key));
      return this.snapshot(() => {
        const row = this.statements.getAt.get(key, this.resolveRevision(opts.revision));
        return row && !row.deleted ? toKeyValue(row) : null;
      });
    });
  }

  async list(prefix: string, opts: { revision?: number; limit?: number; startKey?: string } = {}): Promise<ListResult> {
    const range = keyRange(prefix, opts.startKey);
    const fetch = opts.limit ? opts.limit + 1 : -1; // one extra row tells whether there is more
    return this.run(() =>
      this.snapshot(() => {
        const revision = this.resolveRevision(opts.revision);
        const rows =
          range.end === null
            ? this.statements.listUnbounded.all({ revision, start: range.start, limit: fetch })
            : this.statements.listBounded.all({ revision, start: range.start, end: range.end, limit: fetch });
        return listPage(rows.map((row) => toKeyValue(row)!), revision, opts.limit);
      }),
    );
  }

  async compact(revision: number): Promise<void> {
    let done = false;
    while (!done) {
      // Yield between batches so reads and writes of this process get their turn.
      await new Promise((resolve) => setImmediate(resolve));
      done = this.run(() =>
        this.db
          .transaction(() => {
            const { current_revision: current, compacted_revision: compacted } = this.statements.revisions.get()!;
            if (revision > current) throw new StoreError('FUTURE_REVISION', `cannot compact to ${revision}: current revision is ${current}`);
            if (revision <= compacted) return true;
            const upTo = Math.min(revision, compacted + this.compactBatchRevisions);
            this.statements.compactCurrent.run({ from: compacted, to: upTo });
            this.statements.compactLog.run({ from: compacted, to: upTo });
            this.statements.setCompacted.run(upTo);
            return upTo === revision;
          })
          .immediate(),
      );
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.hub.close();
    this.closed = true;
    this.db.close();
  }

  protected async write(request: WriteRequest): Promise<KeyValue> {
    validateKey(request.key);
    const result = this.run(() =>
      this.db
        .transaction(() => {
          // BEGIN IMMEDIATE holds the write lock from the start, so revisions commit in order.
          const revision = this.statements.nextRevision.get()!;
          const latest = this.statements.latest.get(request.key);
          const { row, result } = planWrite(request, latest && toLatestVersion(latest), revision);
          this.statements.insertLog.run(row.id, row.name, +row.created, +row.deleted, row.createRevision, row.prevRevision, row.value, row.oldValue);
          this.statements.upsertCurrent.run(row.name, row.id, +row.deleted);
          return result;
        })
        .immediate(),
    );
    this.hub.wake();
    return result;
  }

  private readLog(after: number, limit: number, filter?: { range: KeyRange; upTo: number }): LogPage {
    return this.run(() =>
      this.snapshot(() => {
        let rows: RawLogRow[];
        if (!filter) rows = this.statements.tail.all(after, limit);
        else if (filter.range.end === null) rows = this.statements.historyUnbounded.all(after, filter.upTo, filter.range.start, limit);
        else rows = this.statements.historyBounded.all(after, filter.upTo, filter.range.start, filter.range.end, limit);
        return { rows: rows.map(toLogRow), compactedRevision: this.statements.revisions.get()!.compacted_revision };
      }),
    );
  }

  private resolveRevision(requested: number | undefined): number {
    const { current_revision, compacted_revision } = this.statements.revisions.get()!;
    return readRevision(requested, current_revision, compacted_revision);
  }

  /** A read transaction: all statements in it see one snapshot, even if another process writes. */
  private snapshot<T>(read: () => T): T {
    return this.db.transaction(read).deferred();
  }

  /** Runs database work, turning driver failures into StoreErrors. */
  private run<T>(work: () => T): T {
    if (this.closed) throw new StoreError('UNAVAILABLE', 'store is closed');
    try {
      return work();
    } catch (err) {
      if (err instanceof StoreError || err instanceof TypeError || err instanceof RangeError) throw err;
      const code = err instanceof Database.SqliteError ? err.code : '';
      if (code === 'SQLITE_CONSTRAINT_UNIQUE') throw new StoreError('CONFLICT', 'concurrent write to the same key');
      const message = `sqlite: ${code ? `${code}: ` : ''}${err instanceof Error ? err.message : String(err)}`;
      // SQLite rolls the transaction back in both cases: nothing of the write is stored.
      if (code === 'SQLITE_FULL') throw new StoreError('NO_SPACE', message);
      if (code.startsWith('SQLITE_READONLY')) throw new StoreError('READ_ONLY', message);
      throw new StoreError('UNAVAILABLE', message);
    }
  }
}

/**
 * Opens and sets up the database. SQLite reports a file it cannot open or write as "unable to open
 * database file" or "attempt to write a readonly database": the StoreError says which file and,
 * when the directory is the cause (read-only file system, no permission, missing), why.
 */
function openDatabase(file: string, setup: (db: Database.Database) => void): Database.Database {
  let db: Database.Database | undefined;
  try {
    db = new Database(file);
    setup(db);
    return db;
  } catch (err) {
    db?.close();
    const code = err instanceof Database.SqliteError ? `${err.code}: ` : '';
    const message = `sqlite: cannot open ${file}: ${code}${err instanceof Error ? err.message : String(err)}${file === ':memory:' ? '' : directoryProblem(file)}`;
    throw new StoreError(code.startsWith('SQLITE_READONLY') ? 'READ_ONLY' : 'UNAVAILABLE', message);
  }
}

function directoryProblem(file: string): string {
  try {
    fs.accessSync(path.dirname(file), fs.constants.W_OK);
    return '';
  } catch (err) {
    const { code } = err as NodeJS.ErrnoException;
    const why = code === 'EROFS' ? 'is on a read-only file system' : code === 'EACCES' ? 'is not writable' : code === 'ENOENT' ? 'does not exist' : `cannot be written (${code})`;
    return ` (its directory ${why})`;
  }
}

function toLogRow(row: RawLogRow): LogRow {
  return {
    id: row.id,
    name: row.name,
    created: row.created === 1,
    deleted: row.deleted === 1,
    createRevision: row.create_revision,
    prevRevision: row.prev_revision,
    value: row.value,
    oldValue: row.old_value,
  };
}

function toKeyValue(row: RawLogRow | undefined): KeyValue | null {
  return row ? keyValueOf({ id: row.id, name: row.name, createRevision: row.create_revision, value: row.value }) : null;
}

function toLatestVersion(row: { revision: number; deleted: number; create_revision: number; value: Buffer }): LatestVersion {
  return { revision: row.revision, deleted: row.deleted === 1, createRevision: row.create_revision, value: row.value };
}
