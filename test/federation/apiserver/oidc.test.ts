// OIDC ID tokens against the API server binary (member mode) with a local issuer (HTTPS discovery +
// JWKS): the server starts while the issuer is down and refuses tokens (401) until it is up; a valid
// token's user and groups (prefixed) reach RBAC — raw HTTP, kubectl --token and a kubeconfig `token:`;
// expired, wrong audience, wrong issuer, unknown key, alg none and HS256-with-the-public-key are
// 401 Status each, warned with their reason and counted, the token never logged; a key rotation is
// picked up when the JWKS cache refreshes; random bearer strings never get a 5xx.
import { strict as assert } from 'node:assert';
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import fc from 'fast-check';
import { SignJWT } from 'jose';
import { assertNoLeakedResources, resourceBaseline } from '../../support/leaks.js';
import { metric } from '../../support/metrics.js';
import { newSigningKey, OidcIssuer } from '../../support/oidc-issuer.js';
import { testPki } from '../../support/pki.js';
import { kubectl, mastersCert, request, startApiServer, waitForAccess, type ApiServerProcess, type KubectlResult } from './harness.js';

const READERS_BINDING = `apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: oidc-readers-view
  namespace: oidc-team
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: view
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: Group
  name: oidc:readers
`;

/** GET with only a bearer token (no client certificate). */
function bearerGet(server: ApiServerProcess, urlPath: string, token: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port: server.port, path: urlPath, agent: false, ca: fs.readFileSync(testPki().ca.cert), headers: { Authorization: `Bearer ${token}` } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', reject);
    req.end();
  });
}

/** Repeats the GET (bounded) until it answers `status`: for caches that refresh on their own schedule. */
async function untilStatus(server: ApiServerProcess, urlPath: string, token: () => string, status: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 0;
  while ((last = (await bearerGet(server, urlPath, token())).status) !== status) {
    if (Date.now() > deadline) throw new Error(`GET ${urlPath} answered ${last}, never ${status}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('apiserver: OIDC ID tokens (local issuer, real kubectl)', function () {
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let issuer: OidcIssuer;
  let server: ApiServerProcess;
  const CM = '/api/v1/namespaces/oidc-team/configmaps/settings';
  const ok = (r: KubectlResult): string => {
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  };

  before(async function () {
    baseline = await resourceBaseline();
    issuer = await OidcIssuer.create('fedtunnel');
    // The issuer is not listening yet: the server must start anyway.
    server = await startApiServer('oidc', [
      '--oidc-issuer-url', issuer.url,
      '--oidc-client-id', 'fedtunnel',
      '--oidc-username-prefix', 'oidc:',
      '--oidc-groups-claim', 'groups',
      '--oidc-groups-prefix', 'oidc:',
      '--oidc-ca-file', testPki().ca.cert,
    ]);
    ok(await kubectl(server, ['create', 'namespace', 'oidc-team']));
    ok(await kubectl(server, ['create', 'configmap', 'settings', '-n', 'oidc-team', '--from-literal=color=blue']));
    ok(await kubectl(server, ['apply', '-f', '-'], READERS_BINDING));
    await waitForAccess(server, { user: 'oidc:carol', groups: ['oidc:readers'], verb: 'get', resource: 'configmaps', namespace: 'oidc-team' });
  });

  after(async function () {
    await server?.kill();
    await issuer?.stop();
    await assertNoLeakedResources(baseline);
  });

  it('issuer down at start: the server serves, tokens are 401 until the issuer is up, then they work', async function () {
    const token = await issuer.token({ sub: 'carol', groups: ['readers'] });
    const refused = await bearerGet(server, CM, token);
    assert.equal(refused.status, 401);
    assert.equal(JSON.parse(refused.body).reason, 'Unauthorized');
    await server.waitForLog((l) => l.msg === 'oidc token refused' && l.reason === 'issuer_unavailable');
    await issuer.start();
    await untilStatus(server, CM, () => token, 200);
    const read = await bearerGet(server, CM, token);
    assert.equal(JSON.parse(read.body).data.color, 'blue');
  });

  it('the prefixed user and groups reach RBAC: a group binding allows the read, nothing else is allowed', async function () {
    const reader = await issuer.token({ sub: 'carol', groups: ['readers'] });
    assert.equal((await bearerGet(server, CM, reader)).status, 200);
    const denied = await bearerGet(server, '/api/v1/namespaces/oidc-team/secrets', reader);
    assert.equal(denied.status, 403);
    assert.match(JSON.parse(denied.body).message, /User "oidc:carol" cannot list resource "secrets"/);
    // Same subject, no group: the binding is to the group, so nothing.
    const loner = await issuer.token({ sub: 'carol' });
    const r = await bearerGet(server, CM, loner);
    assert.equal(r.status, 403);
    assert.match(JSON.parse(r.body).message, /User "oidc:carol" cannot get resource "configmaps"/);
    // An unprefixed group name in the token does not match a prefixed binding (nor the reverse).
    assert.equal((await bearerGet(server, CM, await issuer.token({ sub: 'carol', groups: ['oidc:readers'] }))).status, 403);
  });

  it('kubectl 1.27, 1.32 and 1.33 with --token and with a kubeconfig `token:` (no exec plugin) read as the OIDC user', async function () {
    const token = await issuer.token({ sub: 'dave', groups: ['readers'] });
    const kubeconfig = path.join(server.home, 'oidc-kubeconfig');
    fs.writeFileSync(
      kubeconfig,
      `apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: https://127.0.0.1:${server.port}\n    certificate-authority: ${testPki().ca.cert}\n` +
        `users:\n- name: oidc\n  user:\n    token: ${token}\n- name: nobody\n  user: {}\n` +
        `contexts:\n- name: oidc\n  context:\n    cluster: test\n    user: oidc\n- name: nobody\n  context:\n    cluster: test\n    user: nobody\ncurrent-context: oidc\n`,
    );
    // kubectl on PATH (1.32) and the ends of the supported range, which sit beside it.
    const kubectlDir = path.dirname(fs.realpathSync(execFileSync('which', ['kubectl'], { encoding: 'utf8' }).trim()));
    const run = (args: string[], bin = 'kubectl'): Promise<KubectlResult> =>
      new Promise((resolve) => {
        const env = { ...process.env, KUBECONFIG: kubeconfig, HOME: server.home, KUBECACHEDIR: path.join(server.home, `oidc-cache-${bin}`) };
        execFile(bin === 'kubectl' ? bin : path.join(kubectlDir, bin), args, { env, timeout: 30_000 }, (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr }));
      });
    for (const bin of ['kubectl', 'kubectl.1.27', 'kubectl.1.33']) {
      assert.equal(ok(await run(['get', 'configmap', 'settings', '-n', 'oidc-team', '-o', 'jsonpath={.data.color}'], bin)), 'blue', bin);
      assert.equal(ok(await run(['--context', 'nobody', '--token', token, 'get', 'configmap', 'settings', '-n', 'oidc-team', '-o', 'jsonpath={.data.color}'], bin)), 'blue', bin);
    }
    const forbidden = await run(['--token', token, '--context', 'nobody', 'get', 'secrets', '-n', 'oidc-team']);
    assert.match(forbidden.stderr, /User "oidc:dave" cannot list resource "secrets"/);
    const expired = await issuer.token({ sub: 'dave', groups: ['readers'], iat: Math.floor(Date.now() / 1000) - 3600, exp: Math.floor(Date.now() / 1000) - 600 });
    const unauthorized = await run(['--context', 'nobody', '--token', expired, 'get', 'configmap', 'settings', '-n', 'oidc-team']);
    assert.notEqual(unauthorized.code, 0);
    assert.match(unauthorized.stderr, /Unauthorized|must be logged in/);
  });

  it('expired, wrong audience, wrong issuer, unknown key, alg none and HS256 with the public key: 401 Status, warned with the reason, counted, never logged', async function () {
    const now = Math.floor(Date.now() / 1000);
    const key = issuer.keys[0]!;
    const stranger = await newSigningKey(key.kid); // same kid, other key: the signature cannot verify
    const unknownKid = await newSigningKey('not-published');
    const claims = { sub: 'carol', groups: ['readers'] };
    const cases: Array<{ reason: string; token: string }> = [
      { reason: 'expired', token: await issuer.token({ ...claims, iat: now - 3600, exp: now - 600 }) },
      { reason: 'not_yet_valid', token: await issuer.token({ ...claims, nbf: now + 600 }) },
      { reason: 'wrong_audience', token: await issuer.token({ ...claims, aud: 'someone-else' }) },
      { reason: 'wrong_issuer', token: await issuer.token({ ...claims, iss: 'https://evil.example' }) },
      { reason: 'bad_signature', token: await issuer.token(claims, stranger) },
      { reason: 'unknown_key', token: await issuer.token(claims, unknownKid) },
      { reason: 'disallowed_algorithm', token: `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ iss: issuer.url, aud: 'fedtunnel', exp: now + 600, ...claims })}.` },
      {
        reason: 'disallowed_algorithm',
        token: await new SignJWT({ iss: issuer.url, aud: 'fedtunnel', exp: now + 600, ...claims })
          .setProtectedHeader({ alg: 'HS256', kid: key.kid })
          .sign(new TextEncoder().encode(JSON.stringify(key.publicJwk))),
      },
      { reason: 'malformed', token: 'not.a-jwt.at-all' },
    ];
    for (const c of cases) {
      const since = server.lines.length;
      const r = await bearerGet(server, CM, c.token);
      assert.equal(r.status, 401, `${c.reason}: ${r.body}`);
      const status = JSON.parse(r.body);
      assert.deepEqual([status.kind, status.reason, status.code], ['Status', 'Unauthorized', 401]);
      await server.waitForLog((l) => l.msg === 'oidc token refused' && l.reason === c.reason, { since });
    }
    const logs = JSON.stringify(server.lines);
    for (const c of cases) assert.ok(!logs.includes(c.token.split('.')[1]!), 'no token material in the logs');
    const metrics = await request(server, 'GET', '/metrics');
    for (const reason of ['expired', 'wrong_audience', 'wrong_issuer', 'bad_signature', 'unknown_key', 'disallowed_algorithm']) {
      assert.ok(metric(metrics.body, `fedtunnel_apiserver_authentication_attempts_total{method="oidc",result="${reason}"}`) >= 1, reason);
    }
    assert.ok(metric(metrics.body, 'fedtunnel_apiserver_authentication_attempts_total{method="oidc",result="success"}') >= 1);
    assert.ok(metric(metrics.body, 'fedtunnel_apiserver_authentication_attempts_total{method="client_certificate",result="success"}') >= 1);
  });

  it('a client retrying a refused token on one connection is warned about once, and counted every time', async function () {
    const now = Math.floor(Date.now() / 1000);
    const expired = await issuer.token({ sub: 'carol', iat: now - 3600, exp: now - 600 });
    const counted = async (): Promise<number> => metric((await request(server, 'GET', '/metrics')).body, 'fedtunnel_apiserver_authentication_attempts_total{method="oidc",result="expired"}');
    const before = await counted();
    const since = server.lines.length;
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: fs.readFileSync(testPki().ca.cert) });
    try {
      for (let i = 0; i < 5; i++) {
        const status = await new Promise<number>((resolve, reject) => {
          const req = https.request({ host: '127.0.0.1', port: server.port, path: CM, agent, headers: { Authorization: `Bearer ${expired}` } }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          });
          req.on('error', reject);
          req.end();
        });
        assert.equal(status, 401);
      }
    } finally {
      agent.destroy();
    }
    assert.equal(await counted(), before + 5);
    assert.equal(server.lines.slice(since).filter((l) => l.msg === 'oidc token refused').length, 1);
  });

  it('a verified client certificate wins: a bad token beside it is not even tried', async function () {
    const admin = mastersCert();
    const since = server.lines.length;
    const status = await new Promise<number>((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1', port: server.port, path: CM, agent: false, ca: fs.readFileSync(testPki().ca.cert),
          cert: fs.readFileSync(admin.cert), key: fs.readFileSync(admin.key), headers: { Authorization: 'Bearer not-a-valid-token' },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end();
    });
    assert.equal(status, 200);
    // A request after it, so that a refusal logged for the first would already be in the log.
    assert.equal((await request(server, 'GET', '/version')).status, 200);
    assert.equal(server.lines.slice(since).some((l) => l.msg === 'oidc token refused'), false);
  });

  it('key rotation: a token signed with the new key is accepted once the JWKS cache refreshes; the retired key is refused', async function () {
    const oldToken = await issuer.token({ sub: 'carol', groups: ['readers'] });
    assert.equal((await bearerGet(server, CM, oldToken)).status, 200);
    const fetches = issuer.jwksFetches;
    const fresh = await issuer.rotate();
    const newToken = await issuer.token({ sub: 'carol', groups: ['readers'] }, fresh);
    await untilStatus(server, CM, () => newToken, 200);
    assert.ok(issuer.jwksFetches > fetches, 'the server refetched the JWKS');
    const since = server.lines.length;
    assert.equal((await bearerGet(server, CM, oldToken)).status, 401);
    await server.waitForLog((l) => l.msg === 'oidc token refused' && l.reason === 'unknown_key', { since });
  });

  it('property: random strings as bearer tokens never get a 5xx (and never authenticate)', async function () {
    const token = fc.oneof(
      fc.stringMatching(/^[A-Za-z0-9._~+/=-]{1,300}$/),
      fc.tuple(fc.base64String(), fc.base64String(), fc.base64String()).map(([a, b, c]) => `${a}.${b}.${c}`.replace(/=/g, '')),
      fc.tuple(fc.json(), fc.json()).map(([h, p]) => `${Buffer.from(h).toString('base64url')}.${Buffer.from(p).toString('base64url')}.`),
    );
    await fc.assert(
      fc.asyncProperty(token, async (t) => {
        const r = await bearerGet(server, CM, t);
        assert.ok(r.status === 401, `status ${r.status} for a random token`);
      }),
      { numRuns: 60 },
    );
  });
});
