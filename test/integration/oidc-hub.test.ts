// The hub's embedded federation API server with OIDC (--oidc-* passed through the proxy-server's
// flags): a valid ID token's prefixed user and groups reach RBAC, a group binding takes effect, an
// expired token is a 401 Status, and the attempts are counted on the hub's admin /metrics.
import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import https from 'node:https';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';
import { metric } from '../support/metrics.js';
import { OidcIssuer } from '../support/oidc-issuer.js';
import { testPki } from '../support/pki.js';
import { startServer, type ServerProcess } from '../support/processes.js';
import { mastersCert } from '../federation/apiserver/harness.js';

function call(port: number, method: string, urlPath: string, auth: { token: string } | 'admin', body?: string): Promise<{ status: number; body: string }> {
  const admin = auth === 'admin' ? mastersCert() : null;
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    if (auth !== 'admin') headers.Authorization = `Bearer ${auth.token}`;
    const req = https.request(
      { host: '127.0.0.1', port, method, path: urlPath, agent: false, headers, ca: fs.readFileSync(testPki().ca.cert), ...(admin ? { cert: fs.readFileSync(admin.cert), key: fs.readFileSync(admin.key) } : {}) },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', reject);
    req.end(body);
  });
}

describe('hub: OIDC on the embedded federation API server (processes)', function () {
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let issuer: OidcIssuer;
  let server: ServerProcess;
  let port: number;

  before(async function () {
    baseline = await resourceBaseline();
    issuer = await OidcIssuer.create('hub');
    await issuer.start();
    server = await startServer({
      extraArgs: [
        '--federation-listen', '127.0.0.1:0', '--federation-store', 'sqlite::memory:', '--federation-controller', 'off',
        '--oidc-issuer-url', issuer.url, '--oidc-client-id', 'hub', '--oidc-username-prefix', 'oidc:',
        '--oidc-groups-claim', 'groups', '--oidc-groups-prefix', 'oidc:', '--oidc-ca-file', testPki().ca.cert,
      ],
    });
    port = (await server.waitForLog((l) => l.msg === 'proxy-server ready')).federationPort as number;
  });

  after(async function () {
    await server?.kill();
    await issuer?.stop();
    await assertNoLeakedResources(baseline);
  });

  it('a valid token is the prefixed user (discovery yes, namespaces no) until a binding to its group allows the list; an expired one is 401', async function () {
    const token = await issuer.token({ sub: 'erin', groups: ['platform'] });
    assert.equal((await call(port, 'GET', '/version', { token })).status, 200);
    const denied = await call(port, 'GET', '/api/v1/namespaces', { token });
    assert.equal(denied.status, 403);
    assert.match(JSON.parse(denied.body).message, /User "oidc:erin" cannot list resource "namespaces"/);

    const binding = {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: 'oidc-platform-view' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'oidc:platform' }],
    };
    assert.equal((await call(port, 'POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', 'admin', JSON.stringify(binding))).status, 201);
    // The RBAC cache is watch-fed: bounded wait until the binding is in force.
    const deadline = Date.now() + 10_000;
    let listed = await call(port, 'GET', '/api/v1/namespaces', { token });
    while (listed.status !== 200 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      listed = await call(port, 'GET', '/api/v1/namespaces', { token });
    }
    assert.equal(listed.status, 200, listed.body);
    assert.ok(JSON.parse(listed.body).items.some((n: { metadata: { name: string } }) => n.metadata.name === 'default'));

    const now = Math.floor(Date.now() / 1000);
    const expired = await call(port, 'GET', '/api/v1/namespaces', { token: await issuer.token({ sub: 'erin', groups: ['platform'], iat: now - 3600, exp: now - 600 }) });
    assert.equal(expired.status, 401);
    assert.equal(JSON.parse(expired.body).reason, 'Unauthorized');
    await server.waitForLog((l) => l.msg === 'oidc token refused' && l.reason === 'expired');

    const metrics = await server.metrics();
    assert.ok(metric(metrics, 'fedtunnel_apiserver_authentication_attempts_total{method="oidc",result="success"}') >= 3);
    assert.equal(metric(metrics, 'fedtunnel_apiserver_authentication_attempts_total{method="oidc",result="expired"}'), 1);
  });
});
