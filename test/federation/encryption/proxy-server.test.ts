// The proxy-server's embedded federation API server: with a SQLite store and no configuration the
// Secrets are encrypted by the generated local key, and the encryption metrics are on /metrics.
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { assertNoLeakedResources, resourceBaseline } from '../../support/leaks.js';
import { scratchDir } from '../../support/paths.js';
import { startServer, type ServerProcess } from '../../support/processes.js';
import { request, type ApiServerProcess } from '../apiserver/harness.js';

describe('encryption: proxy-server embedded federation store', function () {
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;

  before(async function () {
    baseline = await resourceBaseline();
  });

  after(async function () {
    if (baseline) await assertNoLeakedResources(baseline);
  });

  it('encrypts Secrets by default and counts the operations on /metrics', async function () {
    const dir = scratchDir(`encryption-proxy-${randomBytes(3).toString('hex')}`);
    const db = path.join(dir, 'federation.db');
    const plain = `p4ss-${randomBytes(8).toString('hex')}`;
    let server: ServerProcess | undefined;
    try {
      server = await startServer({ extraArgs: ['--federation-listen', '127.0.0.1:0', '--federation-store', `sqlite://${db}`, '--federation-controller', 'off'] });
      const ready = server.lines.find((l) => l.msg === 'proxy-server ready')!;
      const api = { port: ready.federationPort as number } as ApiServerProcess;
      const r = await request(api, 'POST', '/api/v1/namespaces/default/secrets', { body: JSON.stringify({ metadata: { name: 's' }, stringData: { password: plain } }), contentType: 'application/json' });
      assert.equal(r.status, 201, r.body);
      assert.equal(fs.statSync(`${db}.key`).mode & 0o777, 0o600);
      const conn = new Database(db, { readonly: true });
      const values = conn.prepare("SELECT value FROM log WHERE name LIKE '/registry/core/secrets/%'").pluck().all() as Buffer[];
      conn.close();
      assert.ok(values.length > 0);
      for (const v of values) {
        assert.ok(v.toString('latin1').startsWith('k8s:enc:localkey:v1:local1:'));
        assert.ok(!v.includes(Buffer.from(plain)) && !v.includes(Buffer.from(Buffer.from(plain).toString('base64'))));
      }
      assert.match(await server.metrics(), /fedtunnel_encryption_operations_total\{provider="local1",operation="encrypt",result="ok"\} [1-9]/);
    } finally {
      await server?.kill();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
