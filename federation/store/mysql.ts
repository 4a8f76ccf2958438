// MySQL / MariaDB backend (mysql2 pool). Several processes may share one database: each Store
// instance polls the log for the others' writes.
//
// Revisions: every write transaction starts with
//   UPDATE <revision> SET current_revision = LAST_INSERT_ID(current_revision + 1)
// and uses the result as the log row's id. The row lock on that single counter row is held until
// COMMIT, so writers are serialized and commit in revision order: once a watcher has seen
// revision N committed, no row below N can still appear. Watchers can therefore follow the log
// with "id > last" without Kine's gap detection and dummy fill rows. The log has no AUTO_INCREMENT
// column at all, so auto_increment_increment/offset (Galera, OceanBase) cannot affect revisions; a
// rolled-back write also rolls back its counter increment. On Galera, concurrent writers on
// different nodes both update the counter row, so certification aborts all but one (error 1213),
// which the retry loop handles. The cost: commits (and their fsyncs) cannot overlap, so write
// throughput is bounded by commit latency (about 1000 writes/s on a local MariaDB that fsyncs every
// commit), which is far above what an API server's writes need.
//
// Reads: the latest version of a key is one primary key lookup in `current`. A list, and a get at
// a given revision, run in a READ ONLY consistent-snapshot transaction, so the revision they report
// or check and the rows they return agree even while writes or compaction run.
import mysql, { type Pool, type PoolConnection, type ResultSetHeader, type RowDataPacket } from 'mysql2/promise';
import { keyRange, keyValueOf, listPage, planWrite, readRevision, validateKey, type KeyRange, type LogRow, type WriteRequest } from './log.js';
import { StoreError, type KeyValue, type ListResult, type Store } from './types.js';
import { WatchHub, type LogPage } from './watch-hub.js';
import { LogStore } from './log-store.js';

export interface MysqlStoreOptions {
  /** Prefix of the three table names (letters, digits, underscore); default "kv_". */
  tablePrefix?: string;
  /** How often watchers look for writes by other processes (local writes wake them at once). */
  pollIntervalMs?: number;
  poolSize?: number;
  /** Revisions removed per compaction transaction (writes wait for a batch, not the whole run). */
  compactBatchRevisions?: number;
  /** Attempts of a write that hits a deadlock or lock wait timeout before it fails 'UNAVAILABLE'. */
  maxWriteAttempts?: number;
  /** Session variables set on every pooled connection, e.g. { innodb_lock_wait_timeout: 10 }. */
  sessionVariables?: Record<string, string | number>;
}

export interface MysqlTableNames {
  log: string;
  current: string;
  revision: string;
}

export function mysqlTableNames(tablePrefix = 'kv_'): MysqlTableNames {
  if (!/^[A-Za-z0-9_]{0,48}$/.test(tablePrefix)) throw new TypeError('MySQL table prefix must be at most 48 letters, digits or underscores');
  return { log: `${tablePrefix}log`, current: `${tablePrefix}current`, revision: `${tablePrefix}revision` };
}

/** Opens the pool and creates the tables if they are missing. */
export async function openMysqlStore(url: string, options: MysqlStoreOptions = {}): Promise<MysqlStore> {
  const tables = mysqlTableNames(options.tablePrefix);
  for (const name of Object.keys(options.sessionVariables ?? {})) {
    if (!/^[A-Za-z_]+$/.test(name)) throw new TypeError(`invalid session variable name ${name}`);
  }
  const pool = mysql.createPool({ ...connectionConfig(url), connectionLimit: options.poolSize ?? 10, charset: 'utf8mb4' });
  const store = new MysqlStore(pool, tables, options);
  try {
    await store.createTables();
  } catch (err) {
    await store.close();
    throw err;
  }
  return store;
}

/** Pool settings from mysql://user:password@host:port/database (the URL is never echoed: it may hold a password). */
export function connectionConfig(dsn: string) {
  let url: URL;
  try {
    url = new URL(dsn);
  } catch {
    throw new TypeError('invalid MySQL store URL');
  }
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (url.protocol !== 'mysql:' || !url.hostname || !database) {
    throw new TypeError('MySQL store URL must look like mysql://user:password@host:3306/database');
  }
  return {
    host: url.hostname,
    port: url.port ? Number(url.port) : 3306,
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    database,
  };
}

/** MySQL error numbers after which the whole transaction can simply run again. */
const RETRYABLE_ERRNOS = new Set([
  1213, // ER_LOCK_DEADLOCK (also Galera certification failure)
  1205, // ER_LOCK_WAIT_TIMEOUT
  1020, // ER_CHECKREAD: MariaDB snapshot isolation saw a concurrent change
]);
const ER_DUP_ENTRY = 1062;
/** ER_DISK_FULL, ER_RECORD_FILE_FULL (a table or tablespace cannot grow). */
const NO_SPACE_ERRNOS = new Set([1021, 1114]);
/** ER_OPTION_PREVENTS_STATEMENT (--read-only), ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION. */
const READ_ONLY_ERRNOS = new Set([1290, 1792]);

interface LogRowPacket extends RowDataPacket {
  id: number;
  name: Buffer;
  created: number;
  deleted: number;
  create_revision: number;
  prev_revision: number;
  value: Buffer;
  old_value: Buffer | null;
}

const LOG_COLUMNS = 'l.id, l.name, l.created, l.deleted, l.create_revision, l.prev_revision, l.value, l.old_value';

export class MysqlStore extends LogStore implements Store {
  protected readonly hub: WatchHub;
  private readonly compactBatchRevisions: number;
  private readonly maxWriteAttempts: number;
  /** Core connections whose session settings are applied (the pool reuses them). */
  private readonly preparedSessions = new WeakSet<object>();
  private readonly sessionSetup: string[];
  private closed = false;

  constructor(
    private readonly pool: Pool,
    private readonly tables: MysqlTableNames,
    options: MysqlStoreOptions,
  ) {
    super();
    this.compactBatchRevisions = options.compactBatchRevisions ?? 1000;
    this.maxWriteAttempts = options.maxWriteAttempts ?? 5;
    // Snapshot reads need REPEATABLE READ whatever the server default is.
    this.sessionSetup = ['SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ'];
    const variables = Object.entries(options.sessionVariables ?? {});
    if (variables.length > 0) {
      this.sessionSetup.push(mysql.format(`SET SESSION ${variables.map(([name]) => `${name} = ?`).join(', ')}`, variables.map(([, value]) => value)));
    }
    this.hub = new WatchHub(
      { currentRevision: () => this.currentRevision(), readLog: (after, limit, filter) => this.readLog(after, limit, filter) },
      { pollIntervalMs: options.pollIntervalMs ?? 25, batchSize: 500 },
    );
  }

  /** Called once by openMysqlStore; safe to run concurrently from several processes. */
  async createTables(): Promise<void> {
    const { log, current, revision } = this.tables;
    await this.read(async (conn) => {
      // Keys are VARBINARY so they compare as UTF-8 bytes, like SQLite, and never collate or pad.
      await conn.query(`CREATE TABLE IF NOT EXISTS \`${log}\` (
        id BIGINT UNSIGNED NOT NULL,
        name VARBINARY(1024) NOT NULL,
        created TINYINT NOT NULL,
        deleted TINYINT NOT NULL,
        create_revision BIGINT UNSIGNED NOT NULL,
        prev_revision BIGINT UNSIGNED NOT NULL,
        value MEDIUMBLOB NOT NULL,
        old_value MEDIUMBLOB NULL,
        PRIMARY KEY (id),
        UNIQUE KEY name_prev_revision (name, prev_revision),
        KEY name_id (name, id)
      ) ENGINE = InnoDB`);
      // The latest row of every key (tombstones until compacted): latest reads never aggregate history.
      await conn.query(`CREATE TABLE IF NOT EXISTS \`${current}\` (
        name VARBINARY(1024) NOT NULL,
        revision BIGINT UNSIGNED NOT NULL,
        deleted TINYINT NOT NULL,
        PRIMARY KEY (name)
      ) ENGINE = InnoDB`);
      await conn.query(`CREATE TABLE IF NOT EXISTS \`${revision}\` (
        id TINYINT UNSIGNED NOT NULL,
        current_revision BIGINT UNSIGNED NOT NULL,
        compacted_revision BIGINT UNSIGNED NOT NULL,
        PRIMARY KEY (id)
      ) ENGINE = InnoDB`);
      await conn.query(`INSERT IGNORE INTO \`${revision}\` (id, current_revision, compacted_revision) VALUES (1, 0, 0)`);
    });
  }

  async currentRevision(): Promise<number> {
    return (await this.read((conn) => this.revisions(conn))).current;
  }

  async get(key: string, opts: { revision?: number } = {}): Promise<KeyValue | null> {
    validateKey(key);
    const { log, current } = this.tables;
    if (!opts.revision) {
      const rows = await this.read(async (conn) => {
        const [rows] = await conn.query<LogRowPacket[]>(
          `SELECT ${LOG_COLUMNS} FROM \`${current}\` c JOIN \`${log}\` l ON l.id = c.revision WHERE c.name = ? AND c.deleted = 0`,
          [key],
        );
        return rows;
      });
      return rows[0] ? keyValueOf(toLogRow(rows[0])) : null;
    }
    return this.snapshot(async (conn) => {
      const { current: head, compacted } = await this.revisions(conn);
      const revision = readRevision(opts.revision, head, compacted);
      const [rows] = await conn.query<LogRowPacket[]>(`SELECT ${LOG_COLUMNS} FROM \`${log}\` l FORCE INDEX (name_id) WHERE l.name = ? AND l.id <= ? ORDER BY l.id DESC LIMIT 1`, [
        key,
        revision,
      ]);
      return rows[0] && !rows[0].deleted ? keyValueOf(toLogRow(rows[0])) : null;
    });
  }

  async list(prefix: string, opts: { revision?: number; limit?: number; startKey?: string } = {}): Promise<ListResult> {
    const range = keyRange(prefix, opts.startKey);
    const { log, current } = this.tables;
    return this.snapshot(async (conn) => {
      const { current: head, compacted } = await this.revisions(conn);
      const revision = readRevision(opts.revision, head, compacted);
      // A key's row at `revision`: its current row unless modified since, else the newest history
      // row at or before it. At the latest revision this is a range scan of `current`.
      const [rows] = await conn.query<LogRowPacket[]>(
        `SELECT ${LOG_COLUMNS} FROM \`${current}\` c
         JOIN \`${log}\` l ON l.id = CASE WHEN c.revision <= ? THEN c.revision
           ELSE (SELECT MAX(h.id) FROM \`${log}\` h FORCE INDEX (name_id) WHERE h.name = c.name AND h.id <= ?) END
         WHERE c.name >= ? ${range.end === null ? '' : 'AND c.name < ?'} AND l.deleted = 0
         ORDER BY c.name ${opts.limit ? 'LIMIT ?' : ''}`,
        [revision, revision, range.start, ...(range.end === null ? [] : [range.end]), ...(opts.limit ? [opts.limit + 1] : [])],
      );
      return listPage(rows.map((row) => keyValueOf(toLogRow(row))), revision, opts.limit);
    });
  }

  async compact(revision: number): Promise<void> {
    const { log, current, revision: counter } = this.tables;
    let done = false;
    while (!done) {
      done = await this.transaction(async (conn) => {
        // Locking the counter row puts each batch between two writes, never across one.
        const [[state]] = await conn.query<RowDataPacket[]>(`SELECT current_revision, compacted_revision FROM \`${counter}\` WHERE id = 1 FOR UPDATE`);
        const head = Number(state!.current_revision);
        const compacted = Number(state!.compacted_revision);
        if (revision > head) throw new StoreError('FUTURE_REVISION', `cannot compact to ${revision}: current revision is ${head}`);
        if (revision <= compacted) return true;
        const upTo = Math.min(revision, compacted + this.compactBatchRevisions);
        const [rows] = await conn.query<RowDataPacket[]>(`SELECT id, name, deleted, prev_revision FROM \`${log}\` WHERE id > ? AND id <= ?`, [compacted, upTo]);
        // A row is superseded when a later row names it as prev_revision; tombstones go themselves.
        const superseded = rows.filter((row) => row.prev_revision > 0).map((row) => Number(row.prev_revision));
        const tombstones = rows.filter((row) => row.deleted === 1);
        if (tombstones.length > 0) {
          await conn.query(`DELETE FROM \`${current}\` WHERE name IN (?) AND deleted = 1 AND revision <= ?`, [tombstones.map((row) => row.name as Buffer), upTo]);
        }
        const doomed = [...superseded, ...tombstones.map((row) => Number(row.id))];
        if (doomed.length > 0) await conn.query(`DELETE FROM \`${log}\` WHERE id IN (?)`, [doomed]);
        await conn.query(`UPDATE \`${counter}\` SET compacted_revision = ? WHERE id = 1`, [upTo]);
        return upTo === revision;
      });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.hub.close(); // lets a poll in progress finish on the still open pool
    this.closed = true;
    await this.pool.end();
  }

  protected async write(request: WriteRequest): Promise<KeyValue> {
    validateKey(request.key);
    const { log, current, revision: counter } = this.tables;
    const result = await this.transaction(async (conn) => {
      // First statement: take the next revision and, with it, the counter row lock (see top of file).
      const [bump] = await conn.query<ResultSetHeader>(`UPDATE \`${counter}\` SET current_revision = LAST_INSERT_ID(current_revision + 1) WHERE id = 1`);
      const revision = Number(bump.insertId);
      const [latest] = await conn.query<RowDataPacket[]>(
        `SELECT c.revision, c.deleted, l.create_revision, l.value FROM \`${current}\` c JOIN \`${log}\` l ON l.id = c.revision WHERE c.name = ?`,
        [request.key],
      );
      const version = latest[0] && {
        revision: Number(latest[0].revision),
        deleted: latest[0].deleted === 1,
        createRevision: Number(latest[0].create_revision),
        value: latest[0].value as Buffer,
      };
      const { row, result } = planWrite(request, version, revision);
      await conn.query(
        `INSERT INTO \`${log}\` (id, name, created, deleted, create_revision, prev_revision, value, old_value) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        [row.id, row.name, +row.created, +row.deleted, row.createRevision, row.prevRevision, row.value, row.oldValue],
      );
      await conn.query(`INSERT INTO \`${current}\` (name, revision, deleted) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE revision = ?, deleted = ?`, [
        row.name,
        row.id,
        +row.deleted,
        row.id,
        +row.deleted,
      ]);
      return result;
    });
    this.hub.wake();
    return result;
  }

  /**
   * Log rows after `after` plus the compacted revision, in one statement and so one snapshot: the
   * counter row comes as an extra row of the UNION, so it is there even when no log row matches.
   * The primary key order bounds a history replay to one pass over its revision range.
   */
  private async readLog(after: number, limit: number, filter?: { range: KeyRange; upTo: number }): Promise<LogPage> {
    const { log, revision } = this.tables;
    const conditions = ['l.id > ?'];
    const params: unknown[] = [after];
    if (filter) {
      conditions.push('l.id <= ?', 'l.name >= ?');
      params.push(filter.upTo, filter.range.start);
      if (filter.range.end !== null) {
        conditions.push('l.name < ?');
        params.push(filter.range.end);
      }
    }
    const [rows] = await this.read((conn) =>
      conn.query<(LogRowPacket & { compacted_revision: number | null })[]>(
        `(SELECT NULL AS compacted_revision, ${LOG_COLUMNS} FROM \`${log}\` l FORCE INDEX (PRIMARY)
           WHERE ${conditions.join(' AND ')} ORDER BY l.id LIMIT ?)
         UNION ALL
         (SELECT compacted_revision, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM \`${revision}\` WHERE id = 1)`,
        [...params, limit],
      ),
    );
    const counter = rows.find((row) => row.compacted_revision !== null)!;
    return {
      rows: rows
        .filter((row) => row.compacted_revision === null)
        .map(toLogRow)
        .sort((a, b) => a.id - b.id), // UNION ALL does not promise to keep the inner order
      compactedRevision: Number(counter.compacted_revision),
    };
  }

  private async revisions(conn: PoolConnection) {
    const [[row]] = await conn.query<RowDataPacket[]>(`SELECT current_revision, compacted_revision FROM \`${this.tables.revision}\` WHERE id = 1`);
    return { current: Number(row!.current_revision), compacted: Number(row!.compacted_revision) };
  }

  /** A read-only transaction over one consistent snapshot. */
  private snapshot<T>(work: (conn: PoolConnection) => Promise<T>): Promise<T> {
    return this.read(async (conn) => {
      await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
      const result = await work(conn);
      await conn.query('COMMIT');
      return result;
    });
  }

  /** Statements outside a read-write transaction: nothing to retry, failures become StoreErrors. */
  private async read<T>(work: (conn: PoolConnection) => Promise<T>): Promise<T> {
    try {
      return await this.withConnection(work);
    } catch (err) {
      throw toStoreError(err);
    }
  }

  /** A read-write transaction, run again from the start after a deadlock or lock wait timeout. */
  private async transaction<T>(work: (conn: PoolConnection) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.withConnection(async (conn) => {
          await conn.query('START TRANSACTION');
          const result = await work(conn);
          await conn.query('COMMIT');
          return result;
        });
      } catch (err) {
        const retryable = RETRYABLE_ERRNOS.has((err as { errno?: number }).errno ?? 0);
        if (!retryable || attempt >= this.maxWriteAttempts) throw toStoreError(err);
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 5 * attempt));
      }
    }
  }

  /**
   * Runs `work` on a pooled connection with this store's session settings. A connection whose
   * work failed is rolled back before it returns to the pool, or destroyed if that fails too.
   */
  private async withConnection<T>(work: (conn: PoolConnection) => Promise<T>): Promise<T> {
    if (this.closed) throw new StoreError('UNAVAILABLE', 'store is closed');
    const conn = await this.pool.getConnection();
    try {
      if (!this.preparedSessions.has(conn.connection)) {
        for (const statement of this.sessionSetup) await conn.query(statement);
        this.preparedSessions.add(conn.connection);
      }
      const result = await work(conn);
      conn.release();
      return result;
    } catch (err) {
      try {
        await conn.query('ROLLBACK');
        conn.release();
      } catch {
        conn.destroy();
      }
      throw err;
    }
  }
}

function toStoreError(err: unknown): Error {
  if (err instanceof StoreError || err instanceof TypeError || err instanceof RangeError) return err;
  const { errno, code, message } = err as { errno?: number; code?: string; message?: string };
  if (errno === ER_DUP_ENTRY) return new StoreError('CONFLICT', 'concurrent write to the same key');
  // mysql2 messages name the user and host at most, never the password.
  const text = `mysql: ${code ?? 'error'}: ${message ?? String(err)}`;
  if (errno !== undefined && NO_SPACE_ERRNOS.has(errno)) return new StoreError('NO_SPACE', text);
  if (errno !== undefined && READ_ONLY_ERRNOS.has(errno)) return new StoreError('READ_ONLY', text);
  return new StoreError('UNAVAILABLE', text);
}

function toLogRow(row: LogRowPacket): LogRow {
  return {
    id: Number(row.id),
    name: row.name.toString('utf8'),
    created: row.created === 1,
    deleted: row.deleted === 1,
    createRevision: Number(row.create_revision),
    prevRevision: Number(row.prev_revision),
    value: row.value,
    oldValue: row.old_value,
  };
}
