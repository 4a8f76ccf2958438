// BootstrapTokenStore over real files: the single hub's file ledger, and the replicas' shared
// ledger in a real SQLite file and a real MySQL database (one BootstrapTokenStore per replica).
import { strict as assert } from 'node:assert';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { EnrolmentError, formatTokenRecord, parseToken, publicKeySha256, tokenRecord } from '../../certs/enrolment.js';
import { BootstrapTokenStore } from '../../proxy-server/bootstrap-tokens.js';
import { USED_TOKENS_TABLE, openUsedTokenTable } from '../../proxy-server/replicas/used-tokens-store.js';
import { scratchDatabase } from '../support/ha.js';
import { MYSQL_URL, mysqlUnreachable } from '../support/mysql.js';

function keyHash(): string {
  return publicKeySha256(generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } }).publicKey);
}

/** assert.rejects for an EnrolmentError with this code and status. */
async function refused(promise: Promise<unknown>, code: string, status: number): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof EnrolmentError, String(error));
    assert.equal(error.code, code);
    assert.equal(error.httpStatus, status);
    return true;
  });
}

async function claims(registry: Registry, ledger: string, result: string): Promise<number> {
  const metric = await registry.getSingleMetric('fedtunnel_bootstrap_token_claims_total')!.get();
  return metric.values.find((v) => v.labels.ledger === ledger && v.labels.result === result)?.value ?? 0;
}

describe('proxy-server: BootstrapTokenStore', function () {
  let dir: string;
  let file: string;
  const token = parseToken('abcdef.0123456789abcdef');
  const log = pino({ level: 'silent' });

  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokens-'));
    file = path.join(dir, 'bootstrap-tokens.txt');
    fs.writeFileSync(file, `${formatTokenRecord(tokenRecord(token, 'east', 'retail', new Date(Date.now() + 60_000)))}\n`);
  });

  afterEach(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a consumed token is recorded in the ledger (0600): refused afterwards, also by a restarted hub', async function () {
    const registry = new Registry();
    const store = new BootstrapTokenStore(file, `${file}.used`, log, registry);
    const key = keyHash();
    assert.equal(store.ledger, 'file');
    assert.equal((await store.consume(token, key)).cluster, 'east');
    assert.equal(fs.statSync(`${file}.used`).mode & 0o777, 0o600);
    assert.match(fs.readFileSync(`${file}.used`, 'utf8'), /^abcdef \S+ east\n$/);
    // The file ledger has no retry by key: a single hub behaves as before.
    await refused(store.consume(token, key), 'TOKEN_USED', 403);
    const restarted = new BootstrapTokenStore(file, `${file}.used`, log);
    await refused(restarted.consume(token, key), 'TOKEN_USED', 403);
    assert.equal(await claims(registry, 'file', 'claimed'), 1);
    assert.equal(await claims(registry, 'file', 'used'), 1);
  });

  it('a token file that does not load stops the start; on reload it keeps the old tokens', function () {
    const store = new BootstrapTokenStore(file, `${file}.used`, log);
    fs.writeFileSync(file, 'garbage\n');
    store.reload();
    assert.equal(store.size, 1);
    assert.throws(() => new BootstrapTokenStore(file, `${file}.used`, log), /line 1/);
  });

  it('a ledger that cannot be written refuses with INTERNAL, and the token stays spent in memory', async function () {
    const store = new BootstrapTokenStore(file, path.join(dir, 'missing-dir', 'used'), log);
    await refused(store.consume(token, keyHash()), 'INTERNAL', 500);
    await refused(store.consume(token, keyHash()), 'TOKEN_USED', 403);
  });

  describe('replicas: the ledger shared in the federation store', function () {
    const open: BootstrapTokenStore[] = [];

    afterEach(async function () {
      for (const store of open.splice(0)) await store.close();
    });

    /** One replica's token store on the shared ledger at `url` (each with its own file ledger, as on its own host). */
    async function replica(url: string, id: string, registry = new Registry()): Promise<BootstrapTokenStore> {
      const store = new BootstrapTokenStore(file, path.join(dir, `${id}.used`), log, registry);
      open.push(store);
      await store.shareLedger(await openUsedTokenTable(url), id);
      return store;
    }

    it('SQLite file: a token claimed on one replica is TOKEN_USED on the other; the same key again is issued again; nothing goes to the file ledger', async function () {
      const url = `sqlite://${path.join(dir, 'federation.db')}`;
      const registryA = new Registry();
      const a = await replica(url, 'hub-a', registryA);
      const b = await replica(url, 'hub-b');
      assert.equal(a.ledger, 'store');
      const key = keyHash();
      assert.equal((await a.consume(token, key)).cluster, 'east');
      await refused(b.consume(token, keyHash()), 'TOKEN_USED', 403);
      await refused(a.consume(token, keyHash()), 'TOKEN_USED', 403);
      // The agent whose answer was lost retries, here on the other replica, with the key it keeps.
      assert.equal((await b.consume(token, key)).cluster, 'east');
      assert.equal(fs.existsSync(path.join(dir, 'hub-a.used')), false);
      assert.equal(await claims(registryA, 'store', 'claimed'), 1);
      assert.equal(await claims(registryA, 'store', 'used'), 1);
      // A replica that restarts (a new table connection) still refuses it.
      await a.close();
      const restarted = await replica(url, 'hub-a');
      await refused(restarted.consume(token, keyHash()), 'TOKEN_USED', 403);
      // Unknown, wrong secret and expired are still decided by the token file, before the table.
      await refused(restarted.consume(parseToken('abcdef.0123456789abcdee'), keyHash()), 'TOKEN_UNKNOWN', 401);
    });

    it("tokens in a hub's file ledger from before it ran as replicas are refused by every replica, whatever the key", async function () {
      const url = `sqlite://${path.join(dir, 'federation.db')}`;
      const key = keyHash();
      const single = new BootstrapTokenStore(file, path.join(dir, 'hub-a.used'), log);
      await single.consume(token, key);
      await replica(url, 'hub-a');
      const b = await replica(url, 'hub-b');
      await refused(b.consume(token, key), 'TOKEN_USED', 403);
    });

    it('a store that cannot be reached refuses with LEDGER_UNAVAILABLE (503, the agent retries) and records nothing', async function () {
      const url = `sqlite://${path.join(dir, 'federation.db')}`;
      const registry = new Registry();
      const table = await openUsedTokenTable(url);
      const a = new BootstrapTokenStore(file, path.join(dir, 'hub-a.used'), log, registry);
      await a.shareLedger(table, 'hub-a');
      // The connection is gone (as a store that went away): the claim cannot be made.
      await table.close();
      const key = keyHash();
      await refused(a.consume(token, key), 'LEDGER_UNAVAILABLE', 503);
      assert.equal(await claims(registry, 'store', 'failed'), 1);
      assert.equal(fs.existsSync(path.join(dir, 'hub-a.used')), false, 'no fallback to the file ledger');
      // Nothing was recorded: once the store is back, the token still enrols.
      const b = await replica(url, 'hub-b');
      assert.equal((await b.consume(token, key)).cluster, 'east');
      // A stopping replica (table closed) does not fall back to its file ledger either.
      await b.close();
      await refused(b.consume(parseToken('abcdef.0123456789abcdef'), key), 'LEDGER_UNAVAILABLE', 503);
      assert.equal(fs.existsSync(path.join(dir, 'hub-b.used')), false);
    });

    describe('MySQL', function () {
      let database: Awaited<ReturnType<typeof scratchDatabase>>;

      before(async function () {
        const missing = await mysqlUnreachable();
        if (missing) assert.fail(`MySQL at ${MYSQL_URL} is needed: ${missing}`);
      });

      beforeEach(async function () {
        database = await scratchDatabase();
      });

      afterEach(async function () {
        for (const store of open.splice(0)) await store.close();
        await database.drop();
      });

      it('replicas racing on one token with different keys: exactly one claims it, every other is TOKEN_USED', async function () {
        const replicas = await Promise.all(['hub-a', 'hub-b', 'hub-c'].map((id) => replica(database.url, id)));
        // Two requests per replica, all at once, each with a key of its own.
        const attempts = await Promise.allSettled(replicas.flatMap((r) => [r.consume(token, keyHash()), r.consume(token, keyHash())]));
        const won = attempts.filter((a) => a.status === 'fulfilled');
        assert.equal(won.length, 1, JSON.stringify(attempts.map((a) => (a.status === 'fulfilled' ? 'ok' : (a.reason as EnrolmentError).code))));
        for (const a of attempts) if (a.status === 'rejected') assert.equal((a.reason as EnrolmentError).code, 'TOKEN_USED');
      });

      it('the table holds the id, cluster, time and replica, and no secret', async function () {
        const a = await replica(database.url, 'hub-a');
        const key = keyHash();
        await a.consume(token, key);
        const mysql = (await import('mysql2/promise')).default;
        const c = await mysql.createConnection(database.url);
        try {
          const [rows] = await c.query(`SELECT * FROM ${USED_TOKENS_TABLE}`);
          const list = rows as Array<Record<string, unknown>>;
          assert.equal(list.length, 1);
          assert.deepEqual({ ...list[0], used_at_ms: undefined }, { id: 'abcdef', cluster: 'east', used_at_ms: undefined, used_by: 'hub-a', key_sha256: key });
          assert.ok(Math.abs(Number(list[0]!.used_at_ms) - Date.now()) < 3_600_000, 'used_at_ms is a time in ms');
          assert.equal(JSON.stringify(list).includes('0123456789abcdef'), false);
        } finally {
          await c.end();
        }
      });
    });
  });
});
