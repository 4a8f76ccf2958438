// The membership table of HA replicas, beside the federation store in the same database (its own
// tables, not store keys: a heartbeat every few seconds must not add revisions to the API
// server's log nor wake its watchers). MySQL for several hosts, a SQLite file for one host.
//
// Heartbeat times are the database's clock on MySQL (NOW(3)), so replicas on hosts whose clocks
// disagree still agree on who is live; on SQLite all replicas share the host's clock.
import type Database from 'better-sqlite3';
import { openReplicaSqlite } from './sqlite-file.js';
import mysql, { type Pool, type RowDataPacket } from 'mysql2/promise';
import { connectionConfig } from '../../federation/store/mysql.js';
import type { ReplicaRecord } from './liveness.js';

export interface MembershipSnapshot {
  /** The store's clock when the rows were read (milliseconds). */
  nowMs: number;
  replicas: ReplicaRecord[];
  /** Every cluster any replica ever had an agent for (a dial to one is 503 NO_AGENT, not 404). */
  seenClusters: string[];
}

export interface OwnRecord {
  id: string;
  address: string;
  clusters: string[];
}

export interface MembershipStore {
  /** Upserts this replica's row with the store's current time and records its clusters as seen. */
  heartbeat(self: OwnRecord): Promise<void>;
  read(): Promise<MembershipSnapshot>;
  /** Removes this replica's row: the others stop announcing it at once instead of after the TTL. */
  leave(id: string): Promise<void>;
  close(): Promise<void>;
}

const REPLICAS = 'fedtunnel_replicas';
const SEEN = 'fedtunnel_seen_clusters';
/** Rows of replicas silent for this long are deleted (by any replica's heartbeat). */
const FORGET_AFTER_MS = 24 * 3_600_000;

function parseClusters(text: string): string[] {
  try {
    const value: unknown = JSON.parse(text);
    return Array.isArray(value) ? value.filter((c): c is string => typeof c === 'string') : [];
  } catch {
    return [];
  }
}

/** Opens the membership tables in the database of a --federation-store URL (creating them if missing). */
export async function openMembershipStore(url: string): Promise<MembershipStore> {
  if (url.startsWith('mysql://')) return MysqlMembership.open(url);
  if (url === 'sqlite::memory:') return new SqliteMembership(':memory:');
  if (url.startsWith('sqlite://')) return new SqliteMembership(decodeURIComponent(url.slice('sqlite://'.length)));
  throw new TypeError(`unsupported store URL scheme ${JSON.stringify(url.split(':', 1)[0])}`);
}

interface ReplicaRow extends RowDataPacket {
  id: string;
  address: string;
  heartbeat_ms: number | string;
  clusters: string;
}

class MysqlMembership implements MembershipStore {
  private constructor(private readonly pool: Pool) {}

  static async open(url: string): Promise<MysqlMembership> {
    // Two connections: a heartbeat and a read may overlap, nothing more.
    const pool = mysql.createPool({ ...connectionConfig(url), connectionLimit: 2, charset: 'utf8mb4' });
    try {
      await pool.query(`CREATE TABLE IF NOT EXISTS ${REPLICAS} (
        id VARCHAR(253) NOT NULL PRIMARY KEY,
        address VARCHAR(261) NOT NULL,
        heartbeat_ms BIGINT NOT NULL,
        clusters MEDIUMTEXT NOT NULL
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`);
      await pool.query(`CREATE TABLE IF NOT EXISTS ${SEEN} (
        cluster VARCHAR(253) NOT NULL PRIMARY KEY,
        first_seen_ms BIGINT NOT NULL
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`);
    } catch (error) {
      await pool.end();
      throw error;
    }
    return new MysqlMembership(pool);
  }

  async heartbeat(self: OwnRecord): Promise<void> {
    const now = 'ROUND(UNIX_TIMESTAMP(NOW(3)) * 1000)';
    await this.pool.execute(
      `INSERT INTO ${REPLICAS} (id, address, heartbeat_ms, clusters) VALUES (?, ?, ${now}, ?)
       ON DUPLICATE KEY UPDATE address = VALUES(address), heartbeat_ms = VALUES(heartbeat_ms), clusters = VALUES(clusters)`,
      [self.id, self.address, JSON.stringify(self.clusters)],
    );
    if (self.clusters.length > 0) {
      await this.pool.query(`INSERT IGNORE INTO ${SEEN} (cluster, first_seen_ms) VALUES ?`, [self.clusters.map((c) => [c, Date.now()])]);
    }
    await this.pool.execute(`DELETE FROM ${REPLICAS} WHERE heartbeat_ms < ${now} - ?`, [FORGET_AFTER_MS]);
  }

  async read(): Promise<MembershipSnapshot> {
    const [[clock]] = await this.pool.query<RowDataPacket[]>(`SELECT ROUND(UNIX_TIMESTAMP(NOW(3)) * 1000) AS now_ms`);
    const [rows] = await this.pool.query<ReplicaRow[]>(`SELECT id, address, heartbeat_ms, clusters FROM ${REPLICAS}`);
    const [seen] = await this.pool.query<RowDataPacket[]>(`SELECT cluster FROM ${SEEN}`);
    return {
      nowMs: Number(clock!.now_ms),
      replicas: rows.map((r) => ({ id: r.id, address: r.address, heartbeatMs: Number(r.heartbeat_ms), clusters: parseClusters(r.clusters) })),
      seenClusters: seen.map((r) => String(r.cluster)),
    };
  }

  async leave(id: string): Promise<void> {
    await this.pool.execute(`DELETE FROM ${REPLICAS} WHERE id = ?`, [id]);
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}

class SqliteMembership implements MembershipStore {
  private readonly db: Database.Database;

  constructor(file: string) {
    this.db = openReplicaSqlite(file, `CREATE TABLE IF NOT EXISTS ${REPLICAS} (id TEXT PRIMARY KEY, address TEXT NOT NULL, heartbeat_ms INTEGER NOT NULL, clusters TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS ${SEEN} (cluster TEXT PRIMARY KEY, first_seen_ms INTEGER NOT NULL);`);
  }

  async heartbeat(self: OwnRecord): Promise<void> {
    const now = Date.now();
    this.db.transaction(() => {
      this.db
        .prepare(`INSERT INTO ${REPLICAS} (id, address, heartbeat_ms, clusters) VALUES (?, ?, ?, ?)
          ON CONFLICT(id) DO UPDATE SET address = excluded.address, heartbeat_ms = excluded.heartbeat_ms, clusters = excluded.clusters`)
        .run(self.id, self.address, now, JSON.stringify(self.clusters));
      const seen = this.db.prepare(`INSERT OR IGNORE INTO ${SEEN} (cluster, first_seen_ms) VALUES (?, ?)`);
      for (const cluster of self.clusters) seen.run(cluster, now);
      this.db.prepare(`DELETE FROM ${REPLICAS} WHERE heartbeat_ms < ?`).run(now - FORGET_AFTER_MS);
    })();
  }

  async read(): Promise<MembershipSnapshot> {
    const rows = this.db.prepare(`SELECT id, address, heartbeat_ms, clusters FROM ${REPLICAS}`).all() as Array<{ id: string; address: string; heartbeat_ms: number; clusters: string }>;
    const seen = this.db.prepare(`SELECT cluster FROM ${SEEN}`).all() as Array<{ cluster: string }>;
    return {
      nowMs: Date.now(),
      replicas: rows.map((r) => ({ id: r.id, address: r.address, heartbeatMs: r.heartbeat_ms, clusters: parseClusters(r.clusters) })),
      seenClusters: seen.map((r) => r.cluster),
    };
  }

  async leave(id: string): Promise<void> {
    this.db.prepare(`DELETE FROM ${REPLICAS} WHERE id = ?`).run(id);
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
