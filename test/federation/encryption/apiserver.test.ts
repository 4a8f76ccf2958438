// Secrets at rest through the real API server binary: kubectl/HTTP writes a Secret with a known
// plaintext, then the raw SQLite file (rows and bytes) and the raw MySQL rows must not contain it,
// while the API gives it back. A stopped KMS plugin or a wrong local key is a 500 Status with a
// clear message for Secrets only; rotation with the fedtunnel-encryption command.
import { strict as assert } from 'node:assert';
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as pause } from 'node:timers/promises';
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import { mysqlTableNames } from '../../../federation/store/mysql.js';
import { assertNoLeakedResources, resourceBaseline } from '../../support/leaks.js';
import { MYSQL_URL, mysqlUnreachable } from '../../support/mysql.js';
import { TestKmsPlugin } from '../../support/kms-plugin.js';
import { DIST, scratchDir } from '../../support/paths.js';
import { LoggedProcess } from '../../support/processes.js';
import { testPki } from '../../support/pki.js';
import { APISERVER_BIN, kubectl, openWatch, request, startApiServer, type ApiServerProcess } from '../apiserver/harness.js';

const ROTATE_BIN = path.join(DIST, 'federation', 'encryption', 'main.js');

/** A plaintext and the base64 form a Secret's data holds: neither may be at rest. */
function needles(): { plain: string; b64: string } {
  const plain = `p4ss-${randomBytes(8).toString('hex')}`;
  return { plain, b64: Buffer.from(plain).toString('base64') };
}

/** Every needle found in the SQLite database: in any column of any row, or in the files' bytes. */
function sqliteHits(db: string, search: string[]): string[] {
  const hits: string[] = [];
  const conn = new Database(db, { readonly: true });
  try {
    const tables = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>;
    for (const { name } of tables) {
      for (const row of conn.prepare(`SELECT * FROM "${name}"`).raw().all() as unknown[][]) {
        for (const cell of row) {
          const bytes = Buffer.isBuffer(cell) ? cell : Buffer.from(String(cell));
          for (const s of search) if (bytes.includes(Buffer.from(s))) hits.push(`${name} row: ${s}`);
        }
      }
    }
  } finally {
    conn.close();
  }
  for (const suffix of ['', '-wal']) {
    if (!fs.existsSync(`${db}${suffix}`)) continue;
    const bytes = fs.readFileSync(`${db}${suffix}`);
    for (const s of search) if (bytes.includes(Buffer.from(s))) hits.push(`file${suffix}: ${s}`);
  }
  return hits;
}

function removeDb(db: string): void {
  for (const suffix of ['', '-wal', '-shm', '.key', '.encryption.yaml']) fs.rmSync(`${db}${suffix}`, { force: true });
}

function localKeyConfig(providers: Array<{ name: string; path: string }>, identity = true): string {
  return [
    'apiVersion: apiserver.config.k8s.io/v1',
    'kind: EncryptionConfiguration',
    'resources:',
    '  - resources: [secrets, federatedsecrets.types.kubefed.io]',
    '    providers:',
    ...providers.map((p) => `      - localKey: {name: ${p.name}, path: ${JSON.stringify(p.path)}}`),
    ...(identity ? ['      - identity: {}'] : []),
    '',
  ].join('\n');
}

function writeKey(file: string): void {
  fs.rmSync(file, { force: true });
  fs.writeFileSync(file, randomBytes(32), { mode: 0o600 });
}

async function createSecret(server: ApiServerProcess, name: string, plain: string): Promise<void> {
  const r = await kubectl(server, ['create', 'secret', 'generic', name, `--from-literal=password=${plain}`]);
  assert.equal(r.code, 0, r.stderr);
}

async function secretPassword(server: ApiServerProcess, name: string): Promise<string> {
  const r = await request(server, 'GET', `/api/v1/namespaces/default/secrets/${name}`);
  assert.equal(r.status, 200, r.body);
  return Buffer.from(r.json().data.password, 'base64').toString();
}

/** The Secret read must be a 500 Status whose message matches; the body holds no secret data. */
async function assertSecretReadFails(server: ApiServerProcess, name: string, message: RegExp, forbidden: string[]): Promise<void> {
  const r = await request(server, 'GET', `/api/v1/namespaces/default/secrets/${name}`);
  assert.equal(r.status, 500, r.body);
  const status = r.json();
  assert.equal(status.kind, 'Status');
  assert.equal(status.reason, 'InternalError');
  assert.match(status.message, message);
  for (const s of forbidden) assert.ok(!r.body.includes(s), 'no secret data in the error');
}

/** Other resources are still served (and the process is alive). */
async function assertServesConfigMaps(server: ApiServerProcess): Promise<void> {
  const name = `cm-${randomBytes(3).toString('hex')}`;
  const r = await kubectl(server, ['create', 'configmap', name, '--from-literal=k=v']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await request(server, 'GET', `/api/v1/namespaces/default/configmaps/${name}`)).status, 200);
}

function runRotate(args: string[]): Promise<{ code: number; lines: Array<Record<string, unknown>>; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [ROTATE_BIN, 'rotate', ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      const lines = stdout.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({ code, lines, stderr });
    });
  });
}

describe('encryption: Secrets at rest through the API server', function () {
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  const servers: ApiServerProcess[] = [];
  let dir: string;

  before(async function () {
    baseline = await resourceBaseline();
    dir = scratchDir(`encryption-${randomBytes(3).toString('hex')}`);
  });

  afterEach(async function () {
    for (const s of servers.splice(0)) await s.kill();
  });

  after(async function () {
    fs.rmSync(dir, { recursive: true, force: true });
    await assertNoLeakedResources(baseline);
  });

  async function start(name: string, args: string[], store: string): Promise<ApiServerProcess> {
    const server = await startApiServer(name, args, store);
    servers.push(server);
    return server;
  }

  async function stop(server: ApiServerProcess): Promise<void> {
    servers.splice(servers.indexOf(server), 1);
    await server.kill();
  }

  it('SQLite without a configuration: a generated local key (0600) encrypts Secrets; the raw file has no plaintext', async function () {
    const db = path.join(dir, 'default.db');
    const secret = needles();
    const visible = needles();
    let server = await start('enc-default', [], `sqlite://${db}`);
    try {
      assert.equal(fs.statSync(`${db}.key`).mode & 0o777, 0o600);
      assert.equal(fs.statSync(`${db}.key`).size, 32);
      assert.equal(fs.statSync(`${db}.encryption.yaml`).mode & 0o777, 0o600);
      await createSecret(server, 'db', secret.plain);
      const cm = await kubectl(server, ['create', 'configmap', 'visible', `--from-literal=k=${visible.plain}`]);
      assert.equal(cm.code, 0, cm.stderr);
      assert.equal(await secretPassword(server, 'db'), secret.plain);
      // The scan finds plaintext where there is some (the ConfigMap), so its silence on the Secret means something.
      assert.ok(sqliteHits(db, [visible.plain]).length > 0, 'the scan sees the ConfigMap');
      assert.deepEqual(sqliteHits(db, [secret.plain, secret.b64]), []);
      await stop(server);
      // A restart reuses the generated key and configuration.
      server = await start('enc-default', [], `sqlite://${db}`);
      assert.equal(await secretPassword(server, 'db'), secret.plain);
      const list = await request(server, 'GET', '/api/v1/namespaces/default/secrets');
      assert.equal(list.status, 200);
      assert.equal(list.json().items.length, 1);
    } finally {
      for (const s of servers.splice(0)) await s.kill();
      assert.deepEqual(sqliteHits(db, [secret.plain, secret.b64]), []);
      removeDb(db);
    }
  });

  it('a wrong local key gives a 500 Status naming the key, never plaintext, and other resources keep working', async function () {
    const db = path.join(dir, 'wrongkey.db');
    const secret = needles();
    try {
      let server = await start('enc-wrongkey', [], `sqlite://${db}`);
      await createSecret(server, 'db', secret.plain);
      await stop(server);
      writeKey(`${db}.key`);
      server = await start('enc-wrongkey', [], `sqlite://${db}`);
      await assertSecretReadFails(server, 'db', /wrong or replaced key file/, [secret.plain, secret.b64]);
      const list = await request(server, 'GET', '/api/v1/namespaces/default/secrets');
      assert.equal(list.status, 500);
      const k = await kubectl(server, ['get', 'secret', 'db']);
      assert.notEqual(k.code, 0);
      assert.match(k.stderr, /wrong or replaced key file/);
      await assertServesConfigMaps(server);
    } finally {
      removeDb(db);
    }
  });

  it('KMS v2 plugin: Secrets encrypted through real gRPC; plugin stopped → 500 for Secrets only; plugin back → served again', async function () {
    const plugin = new TestKmsPlugin(path.join(dir, 'kms.sock'));
    await plugin.start();
    const db = path.join(dir, 'kms.db');
    const config = path.join(dir, 'kms.yaml');
    const secret = needles();
    fs.writeFileSync(
      config,
      `apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n      - kms:\n          apiVersion: v2\n          name: testkms\n          endpoint: ${plugin.endpoint}\n          timeout: 1s\n`,
    );
    try {
      let server = await start('enc-kms', ['--encryption-provider-config', config], `sqlite://${db}`);
      await createSecret(server, 'db', secret.plain);
      assert.equal(await secretPassword(server, 'db'), secret.plain);
      assert.deepEqual(sqliteHits(db, [secret.plain, secret.b64]), []);
      const raw = new Database(db, { readonly: true });
      const values = raw.prepare("SELECT value FROM log WHERE name LIKE '/registry/core/secrets/%'").pluck().all() as Buffer[];
      raw.close();
      assert.ok(values.length > 0 && values.every((v) => v.toString('latin1').startsWith('k8s:enc:kms:v2:testkms:')));
      assert.ok(plugin.calls.Encrypt >= 1);

      await plugin.stop();
      const write = await kubectl(server, ['create', 'secret', 'generic', 'other', '--from-literal=a=b']);
      assert.notEqual(write.code, 0);
      assert.match(write.stderr, /KMS provider "testkms" Encrypt failed: UNAVAILABLE/);
      // A restarted server has no cached data keys: reads need the plugin too.
      await stop(server);
      server = await start('enc-kms', ['--encryption-provider-config', config], `sqlite://${db}`);
      assert.ok(server.lines.some((l) => l.msg === 'KMS plugin not reachable; Secrets cannot be read or written until it is'));
      await assertSecretReadFails(server, 'db', /KMS provider "testkms" Decrypt failed: UNAVAILABLE/, [secret.plain, secret.b64]);
      // A watch replaying the Secret's history ends with the same error as an ERROR event.
      const watch = await openWatch(server, '/api/v1/namespaces/default/secrets?watch=true&resourceVersion=1');
      try {
        await watch.waitFor(1);
        assert.equal(watch.events[0]!.type, 'ERROR');
        assert.equal(watch.events[0]!.object.code, 500);
        assert.match(watch.events[0]!.object.message, /Decrypt failed: UNAVAILABLE/);
      } finally {
        watch.stop();
      }
      await assertServesConfigMaps(server);

      await plugin.start();
      let status = 0;
      for (let i = 0; i < 100 && status !== 200; i++) {
        status = (await request(server, 'GET', '/api/v1/namespaces/default/secrets/db')).status;
        if (status !== 200) await pause(100);
      }
      assert.equal(status, 200);
      assert.equal(await secretPassword(server, 'db'), secret.plain);
    } finally {
      for (const s of servers.splice(0)) await s.kill();
      await plugin.stop();
      removeDb(db);
    }
  });

  it('rotation: new key first, the rotate command rewrites every Secret, the old key is removed and data still reads', async function () {
    const db = path.join(dir, 'rotate.db');
    const [key1, key2] = [path.join(dir, 'k1.key'), path.join(dir, 'k2.key')];
    const config = path.join(dir, 'rotate.yaml');
    const store = `sqlite://${db}`;
    const secrets = [needles(), needles(), needles()];
    const prefixes = (): string[] => {
      const raw = new Database(db, { readonly: true });
      try {
        const values = raw.prepare("SELECT l.value FROM current c JOIN log l ON l.id = c.revision WHERE c.name LIKE '/registry/core/secrets/%' AND c.deleted = 0").pluck().all() as Buffer[];
        return values.map((v) => v.toString('latin1').split(':').slice(0, 5).join(':'));
      } finally {
        raw.close();
      }
    };
    try {
      writeKey(key1);
      fs.writeFileSync(config, localKeyConfig([{ name: 'key1', path: key1 }]), { mode: 0o600 });
      let server = await start('enc-rotate', ['--encryption-provider-config', config], store);
      for (const [i, s] of secrets.slice(0, 2).entries()) await createSecret(server, `s${i}`, s.plain);
      await stop(server);

      writeKey(key2);
      fs.writeFileSync(config, localKeyConfig([{ name: 'key2', path: key2 }, { name: 'key1', path: key1 }], false), { mode: 0o600 });
      server = await start('enc-rotate', ['--encryption-provider-config', config], store);
      await createSecret(server, 's2', secrets[2]!.plain);
      for (const [i, s] of secrets.entries()) assert.equal(await secretPassword(server, `s${i}`), s.plain);
      assert.deepEqual(prefixes().sort(), ['k8s:enc:localkey:v1:key1', 'k8s:enc:localkey:v1:key1', 'k8s:enc:localkey:v1:key2']);

      // While the server is serving: every rewrite is a compare-and-swap.
      const rotated = await runRotate(['--store', store, '--encryption-provider-config', config]);
      assert.equal(rotated.code, 0, rotated.stderr + JSON.stringify(rotated.lines));
      const done = rotated.lines.find((l) => l.msg === 'rotation done')!;
      assert.equal(done.rewritten, 3);
      assert.deepEqual(prefixes(), Array(3).fill('k8s:enc:localkey:v1:key2'));
      await stop(server);

      fs.rmSync(key1);
      fs.writeFileSync(config, localKeyConfig([{ name: 'key2', path: key2 }], false), { mode: 0o600 });
      server = await start('enc-rotate', ['--encryption-provider-config', config], store);
      for (const [i, s] of secrets.entries()) assert.equal(await secretPassword(server, `s${i}`), s.plain);
      assert.deepEqual(sqliteHits(db, secrets.flatMap((s) => [s.plain, s.b64])), []);
    } finally {
      for (const s of servers.splice(0)) await s.kill();
      removeDb(db);
    }
  });

  it('the rotate command fails clearly on a bad configuration', async function () {
    const bad = path.join(dir, 'bad.yaml');
    fs.writeFileSync(bad, 'kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\nresources: []\n');
    const r = await runRotate(['--store', `sqlite://${path.join(dir, 'bad.db')}`, '--encryption-provider-config', bad]);
    assert.equal(r.code, 1);
    const failed = r.lines.find((l) => l.msg === 'rotation failed')!;
    assert.equal(failed.code, 'INVALID_CONFIG');
    removeDb(path.join(dir, 'bad.db'));
    const usage = await runRotate(['--store', 'mysql://root@127.0.0.1/test']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--encryption-provider-config is required/);
  });

  it('MySQL: the raw rows hold no plaintext of a Secret', async function () {
    const why = await mysqlUnreachable();
    if (why) {
      if (process.env.CI) throw new Error(`MySQL unreachable: ${why}`);
      this.skip();
    }
    const prefix = `kv_enc${randomBytes(4).toString('hex')}_`;
    const key = path.join(dir, 'mysql.key');
    const config = path.join(dir, 'mysql.yaml');
    writeKey(key);
    fs.writeFileSync(config, localKeyConfig([{ name: 'mysql1', path: key }]), { mode: 0o600 });
    const secret = needles();
    const visible = needles();
    const t = mysqlTableNames(prefix);
    const admin = await mysql.createConnection(MYSQL_URL);
    try {
      const server = await start('enc-mysql', ['--mysql-table-prefix', prefix, '--encryption-provider-config', config], MYSQL_URL);
      await createSecret(server, 'db', secret.plain);
      const cm = await kubectl(server, ['create', 'configmap', 'visible', `--from-literal=k=${visible.plain}`]);
      assert.equal(cm.code, 0, cm.stderr);
      assert.equal(await secretPassword(server, 'db'), secret.plain);
      const found = async (s: string): Promise<number> => {
        let n = 0;
        for (const table of [t.log, t.current, t.revision]) {
          const [rows] = (await admin.query({ sql: `SELECT * FROM \`${table}\``, rowsAsArray: true })) as unknown as [unknown[][]];
          for (const row of rows) for (const cell of row) if ((Buffer.isBuffer(cell) ? cell : Buffer.from(String(cell))).includes(Buffer.from(s))) n++;
        }
        return n;
      };
      assert.ok((await found(visible.plain)) > 0, 'the scan sees the ConfigMap');
      assert.equal(await found(secret.plain), 0);
      assert.equal(await found(secret.b64), 0);
    } finally {
      for (const s of servers.splice(0)) await s.kill();
      await admin.query(`DROP TABLE IF EXISTS \`${t.log}\`, \`${t.current}\`, \`${t.revision}\``);
      await admin.end();
    }
  });

  it('FederatedSecrets are encrypted too (federation control plane mode)', async function () {
    const db = path.join(dir, 'fed.db');
    const pki = testPki();
    const secret = needles();
    const child = spawn(process.execPath, [APISERVER_BIN, '--listen', '127.0.0.1:0', '--store', `sqlite://${db}`, '--ca', pki.ca.cert, '--cert', pki.server.cert, '--key', pki.server.key], { stdio: ['ignore', 'pipe', 'pipe'] });
    const proc = new LoggedProcess('apiserver', child);
    try {
      const ready = await proc.waitForLog((l) => l.msg === 'apiserver ready');
      const server = { port: ready.port as number } as ApiServerProcess;
      const body = {
        apiVersion: 'types.kubefed.io/v1beta1',
        kind: 'FederatedSecret',
        metadata: { name: 'creds', namespace: 'default' },
        spec: { template: { data: { password: secret.b64 } }, placement: { clusters: [] } },
      };
      const r = await request(server, 'POST', '/apis/types.kubefed.io/v1beta1/namespaces/default/federatedsecrets', { body: JSON.stringify(body), contentType: 'application/json' });
      assert.equal(r.status, 201, r.body);
      const back = await request(server, 'GET', '/apis/types.kubefed.io/v1beta1/namespaces/default/federatedsecrets/creds');
      assert.equal(back.json().spec.template.data.password, secret.b64);
      const s = await request(server, 'POST', '/api/v1/namespaces/default/secrets', { body: JSON.stringify({ metadata: { name: 'member-token' }, stringData: { token: secret.plain } }), contentType: 'application/json' });
      assert.equal(s.status, 201, s.body);
      assert.deepEqual(sqliteHits(db, [secret.plain, secret.b64]), []);
    } finally {
      await proc.kill();
      removeDb(db);
    }
  });
});
