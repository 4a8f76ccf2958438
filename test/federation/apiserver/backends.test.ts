// Store backends behind the binary: a SQLite file survives a restart; MySQL smoke test (skipped
// when the server at FEDTUNNEL_MYSQL_URL is unreachable, except under CI). Plus the in-process
// server: a watch from a compacted revision ends with an ERROR event carrying 410 Expired.
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { createApiServer, type ApiServer } from '../../../federation/apiserver/server.js';
import { memberRegistry } from '../../../federation/apiserver/types.js';
import { mysqlTableNames } from '../../../federation/store/mysql.js';
import { openStore } from '../../../federation/store/open.js';
import type { Store } from '../../../federation/store/types.js';
import { createLogger } from '../../../common/log.js';
import { assertNoLeakedResources, resourceBaseline } from '../../support/leaks.js';
import { scratchDir } from '../../support/paths.js';
import { testPki } from '../../support/pki.js';
import { kubectl, mastersCert, request, startApiServer } from './harness.js';

const MYSQL_URL = process.env.FEDTUNNEL_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

describe('apiserver: store backends', function () {
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;

  beforeEach(async function () {
    baseline = await resourceBaseline();
  });

  afterEach(async function () {
    await assertNoLeakedResources(baseline);
  });

  it('SQLite file: objects survive a restart of the binary', async function () {
    const db = path.join(scratchDir('apiserver-sqlite'), `${randomBytes(4).toString('hex')}.db`);
    let server = await startApiServer('sqlite-file', [], `sqlite://${db}`);
    try {
      const r = await kubectl(server, ['create', 'configmap', 'kept', '--from-literal=k=v']);
      assert.equal(r.code, 0, r.stderr);
    } finally {
      await server.kill();
    }
    server = await startApiServer('sqlite-file', [], `sqlite://${db}`);
    try {
      const r = await kubectl(server, ['get', 'configmap', 'kept', '-o', 'jsonpath={.data.k}']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'v');
    } finally {
      await server.kill();
      for (const suffix of ['', '-wal', '-shm']) fs.rmSync(`${db}${suffix}`, { force: true });
    }
  });

  it('MySQL: create, get, update conflict and delete through the binary', async function () {
    try {
      const c = await mysql.createConnection({ uri: MYSQL_URL, connectTimeout: 3000 });
      await c.end();
    } catch (err) {
      if (process.env.CI) throw err;
      this.skip();
    }
    const prefix = `kv_api${randomBytes(4).toString('hex')}_`;
    const server = await startApiServer('mysql', ['--mysql-table-prefix', prefix], MYSQL_URL);
    try {
      let r = await kubectl(server, ['create', 'namespace', 'm']);
      assert.equal(r.code, 0, r.stderr);
      r = await kubectl(server, ['create', 'configmap', 'c', '-n', 'm', '--from-literal=a=1']);
      assert.equal(r.code, 0, r.stderr);
      const obj = (await request(server, 'GET', '/api/v1/namespaces/m/configmaps/c')).json();
      const ok = await request(server, 'PUT', '/api/v1/namespaces/m/configmaps/c', { body: JSON.stringify({ ...obj, data: { a: '2' } }), contentType: 'application/json' });
      assert.equal(ok.status, 200);
      const stale = await request(server, 'PUT', '/api/v1/namespaces/m/configmaps/c', { body: JSON.stringify({ ...obj, data: { a: '3' } }), contentType: 'application/json' });
      assert.equal(stale.status, 409);
      r = await kubectl(server, ['delete', 'configmap', 'c', '-n', 'm']);
      assert.equal(r.code, 0, r.stderr);
    } finally {
      await server.kill();
      const admin = await mysql.createConnection(MYSQL_URL);
      const t = mysqlTableNames(prefix);
      await admin.query(`DROP TABLE IF EXISTS \`${t.log}\`, \`${t.current}\`, \`${t.revision}\``);
      await admin.end();
    }
  });

  describe('in process', function () {
    let store: Store;
    let api: ApiServer;
    let port: number;

    beforeEach(async function () {
      const pki = testPki();
      store = await openStore('sqlite::memory:');
      api = await createApiServer({
        store,
        registry: memberRegistry(),
        log: createLogger('apiserver-test', 'silent'),
        tls: { ca: fs.readFileSync(pki.ca.cert), cert: fs.readFileSync(pki.server.cert), key: fs.readFileSync(pki.server.key) },
      });
      port = await api.listen('127.0.0.1', 0);
    });

    afterEach(async function () {
      await api.close();
      await store.close();
    });

    it('a watch from a compacted revision gets an ERROR event with 410 Expired', async function () {
      const fake = { port } as Parameters<typeof request>[0];
      for (const n of ['a', 'b', 'c']) {
        const r = await request(fake, 'POST', '/api/v1/namespaces/default/configmaps', { body: JSON.stringify({ metadata: { name: n } }), contentType: 'application/json' });
        assert.equal(r.status, 201);
      }
      await request(fake, 'PUT', '/api/v1/namespaces/default/configmaps/a', { body: JSON.stringify({ metadata: { name: 'a' }, data: { x: '1' } }), contentType: 'application/json' });
      const current = await store.currentRevision();
      await store.compact(current);
      const admin = mastersCert();
      const body = await new Promise<string>((resolve, reject) => {
        https
          .get(
            { host: '127.0.0.1', port, path: '/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=1', agent: false, ca: fs.readFileSync(testPki().ca.cert), cert: fs.readFileSync(admin.cert), key: fs.readFileSync(admin.key) },
            (res) => {
              let text = '';
              res.setEncoding('utf8');
              res.on('data', (c: string) => (text += c));
              res.on('end', () => resolve(text));
            },
          )
          .on('error', reject);
      });
      const events = body.trim().split('\n').map((l) => JSON.parse(l));
      assert.equal(events.length, 1);
      assert.equal(events[0].type, 'ERROR');
      assert.equal(events[0].object.kind, 'Status');
      assert.equal(events[0].object.code, 410);
      assert.equal(events[0].object.reason, 'Expired');
    });
  });
});
