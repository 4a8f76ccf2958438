// The `store` section: the federation's revisioned SQL store on each backend, side by side in one
// run — write rate and tail, a 10 000-object list, and write-to-watcher latency.
// Keys: store.<sqlite|mysql>.{writes_per_s,write_p99_ms,list_10k_ms,watch_p50_ms,watch_p99_ms}.
import path from 'node:path';
import mysql from 'mysql2/promise';
import { benchStore, type StoreBenchResult } from '../federation/store/bench.js';
import { mysqlTableNames } from '../federation/store/mysql.js';
import { openStore } from '../federation/store/open.js';
import type { Section } from './scenario.js';
import { errorMessage, log, makeTempDir, removeTempDir } from './system.js';

const MYSQL_URL = process.env.FEDTUNNEL_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
const KEYS = ['writes_per_s', 'write_p99_ms', 'list_10k_ms', 'watch_p50_ms', 'watch_p99_ms'] as const;

export function createStoreSection(): Section {
  return {
    name: 'store',
    async run(ctx) {
      const sizes = { writes: ctx.sizes.storeWrites, listSize: 10_000, watchSamples: ctx.sizes.storeWatchSamples };
      const record = (backend: string, result: StoreBenchResult | null): void => {
        for (const key of KEYS) ctx.record(`store.${backend}.${key}`, result ? result[key] : NaN);
      };

      const dir = await makeTempDir('store-bench');
      try {
        log('store: sqlite');
        record('sqlite', await benchStore(() => openStore(`sqlite://${path.join(dir, 'bench.db')}`), sizes));
      } catch (error) {
        log(`store: sqlite failed: ${errorMessage(error)}`);
        record('sqlite', null);
      } finally {
        await removeTempDir(dir);
      }

      const tablePrefix = `bench_${process.pid}_`;
      try {
        log('store: mysql');
        record('mysql', await benchStore(() => openStore(MYSQL_URL, { mysql: { tablePrefix } }), sizes));
      } catch (error) {
        log(`store: mysql not measured: ${errorMessage(error)}`);
        record('mysql', null);
      } finally {
        await dropTables(tablePrefix).catch(() => undefined);
      }
    },
  };
}

async function dropTables(tablePrefix: string): Promise<void> {
  const tables = mysqlTableNames(tablePrefix);
  const connection = await mysql.createConnection({ uri: MYSQL_URL, connectTimeout: 3000 });
  try {
    await connection.query(`DROP TABLE IF EXISTS \`${tables.log}\`, \`${tables.current}\`, \`${tables.revision}\``);
  } finally {
    await connection.end();
  }
}
