// Durability of the API server binary: watch order with two processes writing to one MySQL
// database, kill -9 during a write burst (SQLite file and MySQL), and bad input that must never
// change the store. MySQL tests are skipped when the server at FEDTUNNEL_MYSQL_URL is unreachable,
// except under CI, where they must run.
import { strict as assert } from 'node:assert';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { mysqlTableNames } from '../../../federation/store/mysql.js';
import { assertNoLeakedResources, resourceBaseline } from '../../support/leaks.js';
import { scratchDir } from '../../support/paths.js';
import { openWatch, request, startApiServer, type ApiServerProcess } from './harness.js';
import { MYSQL_URL, mysqlUnreachable } from '../../support/mysql.js';

const JSON_TYPE = 'application/json';
const CM = '/api/v1/namespaces/default/configmaps';


/** Skips the test (with a printed reason) when MySQL is unreachable, fails under CI. */
async function requireMysql(ctx: Mocha.Context, what: string): Promise<void> {
  const reason = await mysqlUnreachable();
  if (reason === null) return;
  if (process.env.CI) throw new Error(`MySQL at FEDTUNNEL_MYSQL_URL is unreachable (${reason}) and CI requires these tests`);
  console.log(`      skipping ${what}: MySQL unreachable (${reason}); set FEDTUNNEL_MYSQL_URL`);
  ctx.skip();
}

async function dropTables(prefix: string): Promise<void> {
  const admin = await mysql.createConnection(MYSQL_URL);
  try {
    const t = mysqlTableNames(prefix);
    await admin.query(`DROP TABLE IF EXISTS \`${t.log}\`, \`${t.current}\`, \`${t.revision}\``);
  } finally {
    await admin.end();
  }
}

const uniquePrefix = (tag: string): string => `kv_${tag}${randomBytes(4).toString('hex')}_`;

/** Data of a configmap derived from its name: a sha256 chain, 4..32 KiB. */
function dataFor(name: string): Record<string, string> {
  let h = createHash('sha256').update(name).digest();
  const size = 4096 + (h.readUInt32BE(0) % (28 * 1024));
  const parts: string[] = [];
  let len = 0;
  while (len < size) {
    const hex = h.toString('hex');
    parts.push(hex);
    len += hex.length;
    h = createHash('sha256').update(h).digest();
  }
  const blob = parts.join('').slice(0, size);
  return { blob, digest: createHash('sha256').update(blob).digest('hex') };
}

describe('apiserver: durability', function () {
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;

  beforeEach(async function () {
    baseline = await resourceBaseline();
  });

  afterEach(async function () {
    await assertNoLeakedResources(baseline);
  });

  it('watch ordering with concurrent writers in two API server processes on one MySQL', async function () {
    await requireMysql(this, 'the two-process watch ordering test');
    const prefix = uniquePrefix('dur');
    const servers: ApiServerProcess[] = [];
    const watches: Array<Awaited<ReturnType<typeof openWatch>>> = [];
    try {
      // Started one after the other so the second sees the first's bootstrap.
      servers.push(await startApiServer('dur-a', ['--mysql-table-prefix', prefix], MYSQL_URL));
      servers.push(await startApiServer('dur-b', ['--mysql-table-prefix', prefix], MYSQL_URL));
      const list = await request(servers[0]!, 'GET', CM);
      assert.equal(list.status, 200, list.body);
      const from = list.json().metadata.resourceVersion as string;
      for (const s of servers) {
        const w = await openWatch(s, `${CM}?watch=true&resourceVersion=${from}`);
        assert.equal(w.status, 200);
        watches.push(w);
      }

      const WRITERS = 4;
      const OPS = 25;
      const acked: Array<{ type: string; name: string; rv: string }> = [];
      let op = 0;
      const writer = async (i: number): Promise<void> => {
        let current: any; // eslint-disable-line @typescript-eslint/no-explicit-any
        for (let j = 0; j < OPS; j++) {
          const server = servers[op++ % 2]!;
          if (j % 5 === 0) {
            const name = `w${i}-${j}`;
            const r = await request(server, 'POST', CM, { body: JSON.stringify({ metadata: { name }, data: { n: '0' } }), contentType: JSON_TYPE });
            assert.equal(r.status, 201, r.body);
            current = r.json();
            acked.push({ type: 'ADDED', name, rv: current.metadata.resourceVersion });
          } else {
            const name = current.metadata.name as string;
            const r = await request(server, 'PUT', `${CM}/${name}`, { body: JSON.stringify({ ...current, data: { n: String(j) } }), contentType: JSON_TYPE });
            assert.equal(r.status, 200, r.body);
            current = r.json();
            acked.push({ type: 'MODIFIED', name, rv: current.metadata.resourceVersion });
          }
        }
      };
      await Promise.all(Array.from({ length: WRITERS }, (_, i) => writer(i)));
      assert.equal(acked.length, WRITERS * OPS);

      const seqs: Array<Array<{ type: string; name: string; rv: string }>> = [];
      for (const w of watches) {
        await w.waitFor(acked.length, 30_000);
        const seq = w.events.filter((e) => e.type !== 'BOOKMARK').map((e) => ({ type: e.type, name: e.object.metadata.name as string, rv: e.object.metadata.resourceVersion as string }));
        seqs.push(seq);
      }
      assert.deepEqual(seqs[1], seqs[0], 'both watch streams list the same sequence');
      const seq = seqs[0]!;
      assert.equal(seq.length, acked.length, JSON.stringify(seq.map((e) => e.type)));
      for (let k = 1; k < seq.length; k++) assert.ok(Number(seq[k]!.rv) > Number(seq[k - 1]!.rv), `resourceVersions not strictly increasing at ${k}: ${seq[k - 1]!.rv} then ${seq[k]!.rv}`);
      const key = (e: { type: string; name: string; rv: string }): string => `${e.type} ${e.name} ${e.rv}`;
      const seen = new Map<string, number>();
      for (const e of seq) seen.set(key(e), (seen.get(key(e)) ?? 0) + 1);
      for (const a of acked) assert.equal(seen.get(key(a)), 1, `acknowledged write ${key(a)} seen ${seen.get(key(a)) ?? 0} times`);
      assert.equal(seen.size, acked.length);
    } finally {
      for (const w of watches) w.stop();
      for (const s of servers) await s.kill();
      await dropTables(prefix);
    }
  });

  /** Burst of creates, SIGKILL after `killAfter` acks, restart, verify. */
  async function killDuringBurst(name: string, args: string[], store: string): Promise<void> {
    let server = await startApiServer(name, args, store);
    const acked = new Set<string>();
    const KILL_AFTER = 30;
    const IN_FLIGHT = 6;
    let next = 0;
    let killed: Promise<unknown> | undefined;
    try {
      const worker = async (): Promise<void> => {
        while (!killed && next < 500) {
          const n = `k-${String(next++).padStart(4, '0')}`;
          let status: number;
          try {
            status = (await request(server, 'POST', CM, { body: JSON.stringify({ metadata: { name: n }, data: dataFor(n) }), contentType: JSON_TYPE })).status;
          } catch {
            continue; // connection reset by the kill: unacknowledged
          }
          if (status !== 201) {
            if (killed) continue;
            assert.fail(`create ${n}: ${status}`);
          }
          acked.add(n);
          if (acked.size >= KILL_AFTER && !killed) killed = server.kill('SIGKILL');
        }
      };
      await Promise.all(Array.from({ length: IN_FLIGHT }, () => worker()));
      assert.ok(killed, 'the burst ended before the kill');
      const exit = (await killed) as { signal: string | null };
      assert.equal(exit.signal, 'SIGKILL');
      assert.ok(acked.size >= KILL_AFTER);

      server = await startApiServer(`${name}-again`, args, store);
      const list = await request(server, 'GET', CM);
      assert.equal(list.status, 200, list.body);
      const present = new Map<string, Record<string, string>>();
      for (const item of list.json().items) present.set(item.metadata.name, item.data);
      for (const n of acked) {
        assert.ok(present.has(n), `acknowledged ${n} lost after kill -9`);
        assert.deepEqual(present.get(n), dataFor(n), `acknowledged ${n} torn`);
      }
      for (const [n, data] of present) {
        assert.match(n, /^k-\d{4}$/);
        assert.deepEqual(data, dataFor(n), `unacknowledged ${n} half-present`);
        const single = await request(server, 'GET', `${CM}/${n}`);
        assert.equal(single.status, 200);
        assert.deepEqual(single.json().data, dataFor(n));
      }
    } finally {
      await server.kill();
    }
  }

  it('kill -9 of the server during a write burst: SQLite file', async function () {
    const db = path.join(scratchDir('apiserver-durability'), `${randomBytes(4).toString('hex')}.db`);
    try {
      await killDuringBurst('kill-sqlite', [], `sqlite://${db}`);
    } finally {
      for (const suffix of ['', '-wal', '-shm', '-journal']) fs.rmSync(`${db}${suffix}`, { force: true });
    }
  });

  it('kill -9 of the server during a write burst: MySQL', async function () {
    await requireMysql(this, 'the MySQL kill -9 test');
    const prefix = uniquePrefix('kill');
    try {
      await killDuringBurst('kill-mysql', ['--mysql-table-prefix', prefix], MYSQL_URL);
    } finally {
      await dropTables(prefix);
    }
  });

  describe('bad input never changes the store', function () {
    let server: ApiServerProcess;
    const storeRevision = async (): Promise<string> => (await request(server, 'GET', CM)).json().metadata.resourceVersion;
    const assertStatus = (r: { status: number; json: () => any }, code: number, reason: string): void => { // eslint-disable-line @typescript-eslint/no-explicit-any
      assert.equal(r.status, code, JSON.stringify(r.json()));
      const s = r.json();
      assert.equal(s.kind, 'Status');
      assert.equal(s.status, 'Failure');
      assert.equal(s.code, code);
      assert.equal(s.reason, reason);
      assert.equal(typeof s.message, 'string');
    };
    const create = async (name: string): Promise<void> => {
      const r = await request(server, 'POST', CM, { body: JSON.stringify({ metadata: { name }, data: { a: '1' } }), contentType: JSON_TYPE });
      assert.equal(r.status, 201, r.body);
    };

    beforeEach(async function () {
      server = await startApiServer('bad-input');
      await create('keep');
    });

    afterEach(async function () {
      await server?.kill();
    });

    it('wrong kind, bad selectors (list and watch), bad propagationPolicy: 400 and no revision change', async function () {
      const before = await storeRevision();
      assertStatus(await request(server, 'POST', CM, { body: JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, data: {} }), contentType: JSON_TYPE }), 400, 'BadRequest');
      assert.equal(await storeRevision(), before);
      assertStatus(await request(server, 'PUT', `${CM}/keep`, { body: JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'keep' } }), contentType: JSON_TYPE }), 400, 'BadRequest');
      assert.equal(await storeRevision(), before);
      assertStatus(await request(server, 'GET', `${CM}?labelSelector=a%20in%20(`), 400, 'BadRequest');
      assertStatus(await request(server, 'GET', `${CM}?watch=true&labelSelector=a%20in%20(`), 400, 'BadRequest');
      assertStatus(await request(server, 'DELETE', `${CM}/keep?propagationPolicy=Sideways`), 400, 'BadRequest');
      assertStatus(await request(server, 'DELETE', `${CM}/keep`, { body: JSON.stringify({ kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Sideways' }), contentType: JSON_TYPE }), 400, 'BadRequest');
      assert.equal(await storeRevision(), before);
      assert.deepEqual((await request(server, 'GET', `${CM}/keep`)).json().data, { a: '1' });
    });

    it('propagationPolicy Foreground, Orphan and Background are accepted on delete (query and body)', async function () {
      for (const policy of ['Foreground', 'Orphan', 'Background']) {
        await create(`q-${policy.toLowerCase()}`);
        const q = await request(server, 'DELETE', `${CM}/q-${policy.toLowerCase()}?propagationPolicy=${policy}`);
        assert.equal(q.status, 200, q.body);
        assert.equal((await request(server, 'GET', `${CM}/q-${policy.toLowerCase()}`)).status, 404);
        await create(`b-${policy.toLowerCase()}`);
        const b = await request(server, 'DELETE', `${CM}/b-${policy.toLowerCase()}`, { body: JSON.stringify({ kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: policy }), contentType: JSON_TYPE });
        assert.equal(b.status, 200, b.body);
        assert.equal((await request(server, 'GET', `${CM}/b-${policy.toLowerCase()}`)).status, 404);
      }
    });
  });
});
