// The replicas' shared ledger of used bootstrap tokens: a table beside the membership tables in
// --federation-store's database (MySQL for several hosts, a SQLite file for one host). A token is
// claimed with one INSERT keyed by its id, so of two replicas racing on one token exactly one
// row goes in; the other sees the winner's row. Only ids are stored (the secrets' hashes stay in
// the token file), with the SHA-256 of the key the token enrolled, so an agent retrying with the
// same key after a lost answer is recognised (certs/enrolment.ts claimOutcome).
import type Database from 'better-sqlite3';
import { openReplicaSqlite } from './sqlite-file.js';
import mysql, { type Pool, type RowDataPacket } from 'mysql2/promise';
import { connectionConfig } from '../../federation/store/mysql.js';

export interface UsedTokenClaim {
  id: string;
  cluster: string;
  /** The replica that claims it (--instance). */
  usedBy: string;
  /** publicKeySha256 of the enrolling key; '' for tokens imported from a file ledger. */
  keySha256: string;
}

export interface UsedTokenTable {
  /** Inserts the claim unless the id is there; `inserted` whether ours went in, `keySha256` of the row there now. */
  claim(claim: UsedTokenClaim): Promise<{ inserted: boolean; keySha256: string }>;
  /** Records ids spent before the hub ran as replicas (its file ledger); ids already there are kept as they are. */
  importUsed(claims: UsedTokenClaim[]): Promise<void>;
  close(): Promise<void>;
}

export const USED_TOKENS_TABLE = 'fedtunnel_bootstrap_tokens_used';
/** A claim is on an agent's request path: a store that does not answer in this long is unavailable (503, the agent retries). */
const QUERY_TIMEOUT_MS = 5000;

/** Opens the used-token table in the database of a --federation-store URL (creating it if missing). */
export async function openUsedTokenTable(url: string): Promise<UsedTokenTable> {
  if (url.startsWith('mysql://')) return MysqlUsedTokens.open(url);
  if (url === 'sqlite::memory:') return new SqliteUsedTokens(':memory:');
  if (url.startsWith('sqlite://')) return new SqliteUsedTokens(decodeURIComponent(url.slice('sqlite://'.length)));
  throw new TypeError(`unsupported store URL scheme ${JSON.stringify(url.split(':', 1)[0])}`);
}

class MysqlUsedTokens implements UsedTokenTable {
  private constructor(private readonly pool: Pool) {}

  static async open(url: string): Promise<MysqlUsedTokens> {
    const pool = mysql.createPool({ ...connectionConfig(url), connectionLimit: 2, connectTimeout: QUERY_TIMEOUT_MS, charset: 'utf8mb4' });
    try {
      await pool.query(`CREATE TABLE IF NOT EXISTS ${USED_TOKENS_TABLE} (
        id VARCHAR(64) NOT NULL PRIMARY KEY,
        cluster VARCHAR(253) NOT NULL,
        used_at_ms BIGINT NOT NULL,
        used_by VARCHAR(253) NOT NULL,
        key_sha256 CHAR(64) NOT NULL
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`);
    } catch (error) {
      await pool.end();
      throw error;
    }
    return new MysqlUsedTokens(pool);
  }

  async claim(c: UsedTokenClaim): Promise<{ inserted: boolean; keySha256: string }> {
    try {
      // The database's clock, as for heartbeats: replicas on hosts whose clocks disagree record one time line.
      await this.pool.execute(
        { sql: `INSERT INTO ${USED_TOKENS_TABLE} (id, cluster, used_at_ms, used_by, key_sha256) VALUES (?, ?, ROUND(UNIX_TIMESTAMP(NOW(3)) * 1000), ?, ?)`, timeout: QUERY_TIMEOUT_MS },
        [c.id, c.cluster, c.usedBy, c.keySha256],
      );
      return { inserted: true, keySha256: c.keySha256 };
    } catch (error) {
      if ((error as { code?: string }).code !== 'ER_DUP_ENTRY') throw error;
    }
    const [rows] = await this.pool.execute<RowDataPacket[]>({ sql: `SELECT key_sha256 FROM ${USED_TOKENS_TABLE} WHERE id = ?`, timeout: QUERY_TIMEOUT_MS }, [c.id]);
    return { inserted: false, keySha256: String(rows[0]?.key_sha256 ?? '') };
  }

  async importUsed(claims: UsedTokenClaim[]): Promise<void> {
    if (claims.length === 0) return;
    await this.pool.query(`INSERT IGNORE INTO ${USED_TOKENS_TABLE} (id, cluster, used_at_ms, used_by, key_sha256) VALUES ?`, [
      claims.map((c) => [c.id, c.cluster, Date.now(), c.usedBy, c.keySha256]),
    ]);
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}

class SqliteUsedTokens implements UsedTokenTable {
  private readonly db: Database.Database;

  constructor(file: string) {
    this.db = openReplicaSqlite(file, `CREATE TABLE IF NOT EXISTS ${USED_TOKENS_TABLE} (id TEXT PRIMARY KEY, cluster TEXT NOT NULL, used_at_ms INTEGER NOT NULL, used_by TEXT NOT NULL, key_sha256 TEXT NOT NULL)`);
  }

  async claim(c: UsedTokenClaim): Promise<{ inserted: boolean; keySha256: string }> {
    // One statement: SQLite's write lock makes it atomic across the processes sharing the file.
    const result = this.db
      .prepare(`INSERT OR IGNORE INTO ${USED_TOKENS_TABLE} (id, cluster, used_at_ms, used_by, key_sha256) VALUES (?, ?, ?, ?, ?)`)
      .run(c.id, c.cluster, Date.now(), c.usedBy, c.keySha256);
    if (result.changes === 1) return { inserted: true, keySha256: c.keySha256 };
    const row = this.db.prepare(`SELECT key_sha256 FROM ${USED_TOKENS_TABLE} WHERE id = ?`).get(c.id) as { key_sha256: string } | undefined;
    return { inserted: false, keySha256: row?.key_sha256 ?? '' };
  }

  async importUsed(claims: UsedTokenClaim[]): Promise<void> {
    const insert = this.db.prepare(`INSERT OR IGNORE INTO ${USED_TOKENS_TABLE} (id, cluster, used_at_ms, used_by, key_sha256) VALUES (?, ?, ?, ?, ?)`);
    this.db.transaction(() => {
      for (const c of claims) insert.run(c.id, c.cluster, Date.now(), c.usedBy, c.keySha256);
    })();
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
