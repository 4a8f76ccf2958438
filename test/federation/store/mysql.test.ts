// The Store contract on MySQL/MariaDB, plus what only a shared server database has to prove:
// several Store instances and processes see every write in the same order, and revisions do not
// depend on auto_increment settings. DSN from FEDTUNNEL_MYSQL_URL; without a reachable server the
// tests are skipped, except under CI, where they must run.
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';
import { mysqlTableNames } from '../../../federation/store/mysql.js';
import { openStore } from '../../../federation/store/open.js';
import { StoreError, type Store } from '../../../federation/store/types.js';
import { assertNoLeakedResources, resourceBaseline } from '../../support/leaks.js';
import { DIST } from '../../support/paths.js';
import { describeStore, type StoreFixture, type StoreTuning } from './suite.js';
import { assertStreamMatches, runConcurrentUpdates, text, WatchRecorder, type AckedWrite } from './workload.js';
import { MYSQL_URL, mysqlUnreachable } from '../../support/mysql.js';



/** Tables of their own for one test (random prefix), dropped by destroy(). */
async function mysqlFixture(): Promise<StoreFixture & { tablePrefix: string; openWith(options: object): Promise<Store> }> {
  const tablePrefix = `kv_t${randomBytes(5).toString('hex')}_`;
  const tables = mysqlTableNames(tablePrefix);
  const admin = await mysql.createConnection(MYSQL_URL);
  const openWith = (options: object) => openStore(MYSQL_URL, { mysql: { tablePrefix, ...options } });
  return {
    tablePrefix,
    openWith,
    open: (tuning?: StoreTuning) => openWith(tuning ?? {}),
    async logRows() {
      const [[row]] = await admin.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) AS n FROM \`${tables.log}\``);
      return Number(row!.n);
    },
    async destroy() {
      await admin.query(`DROP TABLE IF EXISTS \`${tables.log}\`, \`${tables.current}\`, \`${tables.revision}\``);
      await admin.end();
    },
  };
}

describe('federation store: MySQL', function () {
  describe('with a server', function () {
    before(async function () {
      const reason = await mysqlUnreachable();
      if (reason === null) return;
      if (process.env.CI) throw new Error(`MySQL at FEDTUNNEL_MYSQL_URL is unreachable (${reason}) and CI requires these tests`);
      console.log(`      skipping the MySQL store tests: server unreachable (${reason}); set FEDTUNNEL_MYSQL_URL`);
      this.skip();
    });

    describeStore('Store contract', mysqlFixture);

    describe('shared database', function () {
      let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
      let fixture: Awaited<ReturnType<typeof mysqlFixture>>;
      let stores: Store[] = [];
      const open = async (options: object = {}) => {
        const store = await fixture.openWith(options);
        stores.push(store);
        return store;
      };

      before(async () => {
        baseline = await resourceBaseline();
      });
      beforeEach(async () => {
        fixture = await mysqlFixture();
      });
      afterEach(async () => {
        await Promise.all(stores.map((store) => store.close()));
        stores = [];
        await fixture.destroy();
      });
      after(async () => {
        await assertNoLeakedResources(baseline);
      });

      async function createKeys(store: Store, keys: string[]): Promise<number> {
        for (const key of keys) await store.create(key, text('initial'));
        return store.currentRevision();
      }

      it('two Store instances writing concurrently both see every write, in the same order', async () => {
        const a = await open();
        const b = await open();
        const keys = ['/peer/a', '/peer/b', '/peer/c', '/peer/d'];
        const start = await createKeys(a, keys);
        const watchA = new WatchRecorder(a, '/peer/', start);
        const watchB = new WatchRecorder(b, '/peer/', start);

        const acked = await runConcurrentUpdates([a, b], keys, 8, 40);

        assertStreamMatches(await watchA.waitFor(acked.length), acked);
        assertStreamMatches(await watchB.waitFor(acked.length), acked);
        watchA.cancel();
        watchB.cancel();
      });

      it('revisions and watches are unaffected by auto_increment_increment = 3 / offset = 2 (Galera-style)', async () => {
        const galera = { sessionVariables: { auto_increment_increment: 3, auto_increment_offset: 2 } };
        const a = await open(galera);
        const b = await open(galera);
        const keys = ['/peer/x', '/peer/y', '/peer/z'];
        const start = await createKeys(a, keys);
        // One watcher replays from the start while the writes run, one follows live.
        const replaying = new WatchRecorder(b, '/peer/', 0);
        const live = new WatchRecorder(a, '/peer/', start);

        const acked = await runConcurrentUpdates([a, b], keys, 6, 40);

        assertStreamMatches(await live.waitFor(acked.length), acked);
        const replayed = await replaying.waitFor(keys.length + acked.length);
        assertStreamMatches(replayed.slice(keys.length), acked);
        assert.deepEqual(
          replayed.slice(0, keys.length).map((e) => e.revision),
          [1, 2, 3],
        );
        replaying.cancel();
        live.cancel();
      });

      it('a write that commits late is never skipped: later writers wait for it and get higher revisions', async () => {
        const store = await open();
        const watcher = new WatchRecorder(store, '/peer/', 0);
        const tables = mysqlTableNames(fixture.tablePrefix);
        // A writer that took its revision and stalls before COMMIT (what a slow client would do).
        const slow = await mysql.createConnection(MYSQL_URL);
        try {
          await slow.query('START TRANSACTION');
          const [bump] = await slow.query<mysql.ResultSetHeader>(
            `UPDATE \`${tables.revision}\` SET current_revision = LAST_INSERT_ID(current_revision + 1) WHERE id = 1`,
          );
          const slowRevision = bump.insertId;
          let fastDone = false;
          const fast = store.create('/peer/fast', text('fast')).finally(() => (fastDone = true));
          await new Promise((resolve) => setTimeout(resolve, 300));
          assert.equal(fastDone, false, 'a later write must wait for the uncommitted one');
          assert.deepEqual(watcher.events, []);

          await slow.query(`INSERT INTO \`${tables.log}\` VALUES (?, '/peer/slow', 1, 0, ?, 0, 'slow', NULL)`, [slowRevision, slowRevision]);
          await slow.query(`INSERT INTO \`${tables.current}\` VALUES ('/peer/slow', ?, 0)`, [slowRevision]);
          await slow.query('COMMIT');

          const fastKv = await fast;
          assert.equal(fastKv.modRevision, slowRevision + 1);
          assert.deepEqual(
            (await watcher.waitFor(2)).map((e) => [e.revision, e.kv.key]),
            [
              [slowRevision, '/peer/slow'],
              [slowRevision + 1, '/peer/fast'],
            ],
          );
        } finally {
          watcher.cancel();
          await slow.end();
        }
      });

      it('the session variables reach the server (an unknown one makes open fail)', async () => {
        await assert.rejects(
          fixture.openWith({ sessionVariables: { no_such_variable_here: 1 } }),
          (err: unknown) => err instanceof StoreError && err.code === 'UNAVAILABLE' && /no_such_variable_here/.test(err.message),
        );
      });

      it('a second process sees every write in the same order as this one', async function () {
        const store = await open();
        const keys = ['/peer/p', '/peer/q', '/peer/r'];
        const start = await createKeys(store, keys);
        const watcher = new WatchRecorder(store, '/peer/', start);
        const [workers, updatesPerWorker] = [4, 30];
        const total = 2 * workers * updatesPerWorker;
        const child = spawn(
          process.execPath,
          [
            path.join(DIST, 'test/federation/store/children/mysql-peer.js'),
            MYSQL_URL,
            fixture.tablePrefix,
            String(start),
            keys.join(','),
            String(workers),
            String(updatesPerWorker),
            String(total),
          ],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        );
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        const exited = once(child, 'exit');
        try {
          const ours = await runConcurrentUpdates([store], keys, workers, updatesPerWorker);
          const [code] = await exited;
          assert.equal(code, 0, `peer process failed: ${stderr}`);
          const lines = stdout
            .trim()
            .split('\n')
            .map((line) => JSON.parse(line) as { acked?: AckedWrite[]; event?: AckedWrite });
          const theirs = lines.flatMap((line) => line.acked ?? []);
          const theirEvents = lines.flatMap((line) => (line.event ? [line.event] : []));
          assert.equal(theirs.length, workers * updatesPerWorker);

          const acked = [...ours, ...theirs];
          const events = await watcher.waitFor(total);
          assertStreamMatches(events, acked);
          assert.deepEqual(
            theirEvents,
            events.map((e) => ({ revision: e.revision, key: e.kv.key, value: e.kv.value.toString() })),
          );
        } finally {
          watcher.cancel();
          if (child.exitCode === null && child.signalCode === null) {
            child.kill('SIGKILL');
            await exited;
          }
        }
      });
    });
  });

  describe('errors', function () {
    it('never put the password into an error message', async () => {
      const secret = 'pa55-s3cret';
      await assert.rejects(openStore(`mysql://root:${secret}@127.0.0.1:1/test`), (err: unknown) => {
        assert.ok(err instanceof StoreError && err.code === 'UNAVAILABLE', String(err));
        assert.ok(!err.message.includes(secret), err.message);
        return true;
      });
      await assert.rejects(openStore(`mysql://root:${secret}@[nonsense/test`), (err: unknown) => !String(err).includes(secret));
      await assert.rejects(openStore(`postgres://root:${secret}@host/db`), (err: unknown) => !String(err).includes(secret));
    });
  });
});
