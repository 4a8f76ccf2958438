// The hub's /clusters/<name>/ Kubernetes API proxy end to end, with real processes: a hub with its
// embedded federation (RBAC, KubeFedClusters + Secrets), a member-mode API server behind alpha's
// agent (it logs the identity of each request: what the member sees), and a small HTTPS server
// registered as beta's API server that records the exact header lines it receives. curl, raw
// HTTPS clients and kubectl (get, exec) go through https://hub/clusters/<name>/.
import { strict as assert } from 'node:assert';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import path from 'node:path';
import type tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { startMemberApiServer } from '../../common/federation-processes.js';
import { writeKubeconfig } from '../../common/federation-processes.js';
import { ConnectRefused, connectVia, curlStatus } from '../support/clients.js';
import { runCommand } from '../support/federation-harness.js';
import { adminKubeconfig, adminKubectl, proxyGrant } from '../support/reach.js';
import { scratchDir } from '../support/paths.js';
import { testPki } from '../support/pki.js';
import { spawnAgent, startServer, type LoggedProcess, type LogLine, type ServerProcess } from '../support/processes.js';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';
import { assertServerIdle, stopAgent } from '../support/server-state.js';
import { metric } from '../support/metrics.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

describe('kube-proxy: /clusters/<name>/ through the hub (processes)', function () {
  this.timeout(120_000);
  const pki = testPki();
  const ca = fs.readFileSync(pki.ca.cert);
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let server: ServerProcess;
  let member: LoggedProcess;
  let memberPort: number;
  let echo: https.Server;
  let echoPort: number;
  const seen: Array<{ path: string; rawHeaders: string[] }> = [];
  const agents: Record<string, LoggedProcess> = {};
  let kubeconfig: string;
  let dir: string;

  /** One request to the hub's CONNECT TLS listener, as a certificate user and/or with a bearer token. */
  function hub(urlPath: string, o: { user?: string; token?: string; method?: string; headers?: Record<string, string | string[]>; rawHeaders?: string[]; body?: string } = {}): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const identity = o.user ? pki.users[o.user]! : undefined;
      const headers: Record<string, string | string[]> = { ...(o.headers ?? {}) };
      if (o.token) headers.authorization = `Bearer ${o.token}`;
      if (o.body !== undefined) headers['content-type'] = 'application/json';
      const req = https.request({
        host: '127.0.0.1',
        port: server.connectPort,
        servername: 'localhost',
        ca,
        ...(identity ? { cert: fs.readFileSync(identity.cert), key: fs.readFileSync(identity.key) } : {}),
        method: o.method ?? 'GET',
        path: urlPath,
        agent: false,
        // Raw header lines go out exactly as listed (duplicates, case); Node adds no Host to them.
        headers: o.rawHeaders ? ['Host', `localhost:${server.connectPort}`, ...o.rawHeaders] : headers,
      });
      req.once('response', (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c));
        res.once('end', () => {
          let json: unknown;
          try {
            json = JSON.parse(body);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode!, headers: res.headers, body, json });
        });
      });
      req.once('error', reject);
      req.end(o.body);
    });
  }

  /** Asserts a Kubernetes Status answer. */
  function assertStatus(a: Answer, code: number, reason: string, message?: RegExp): void {
    assert.equal(a.status, code, a.body);
    assert.equal(a.headers['content-type'], 'application/json');
    assert.equal(a.json.kind, 'Status');
    assert.equal(a.json.apiVersion, 'v1');
    assert.equal(a.json.status, 'Failure');
    assert.equal(a.json.code, code);
    assert.equal(a.json.reason, reason);
    if (message) assert.match(a.json.message, message);
  }

  /** Bounded polling until `check` passes (watch events reaching the hub's caches). */
  async function eventually(check: () => Promise<void>, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        return await check();
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  const b64 = (file: string): string => fs.readFileSync(file).toString('base64');

  function joinYaml(name: string, port: number, secretData: Record<string, string>, labels: Record<string, string> = {}): string {
    return JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: [
        { apiVersion: 'v1', kind: 'Secret', metadata: { name: `${name}-credential`, namespace: 'kube-federation-system' }, data: secretData },
        {
          apiVersion: 'core.kubefed.io/v1beta1',
          kind: 'KubeFedCluster',
          metadata: { name, namespace: 'kube-federation-system', labels },
          spec: { apiEndpoint: `https://127.0.0.1:${port}`, caBundle: b64(pki.ca.cert), secretRef: { name: `${name}-credential` } },
        },
      ],
    });
  }

  before(async function () {
    baseline = await resourceBaseline();
    dir = scratchDir('kube-proxy');
    for (const file of fs.readdirSync(dir)) fs.rmSync(path.join(dir, file), { recursive: true, force: true });
    const tokens = path.join(dir, 'tokens.csv');
    fs.writeFileSync(tokens, 'carol-token,carol,uid-carol,"devs,qa"\ndave-token,dave,uid-dave,"fedtunnel:tenant:team-b"\n', { mode: 0o600 });
    const revoked = path.join(dir, 'revoked.txt');
    fs.writeFileSync(revoked, `${new X509Certificate(fs.readFileSync(pki.users.rita!.cert)).serialNumber}\n`);
    echo = https.createServer({ ca, cert: fs.readFileSync(pki.server.cert), key: fs.readFileSync(pki.server.key) }, (req, res) => {
      seen.push({ path: req.url!, rawHeaders: req.rawHeaders });
      const body = JSON.stringify({ kind: 'Echo', path: req.url });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
    });
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    echoPort = (echo.address() as AddressInfo).port;
    const api = await startMemberApiServer({ name: 'alpha', pki, extraArgs: ['--log-identities', '--enable-pod-exec', '--log-level', 'debug'] });
    member = api.process;
    memberPort = api.port;
    server = await startServer({
      extraArgs: ['--federation-listen', '127.0.0.1:0', '--federation-store', `sqlite://${path.join(dir, 'federation.db')}`, '--federation-controller', 'off', '--token-auth-file', tokens, '--revoked', revoked],
    });
    const federationPort = server.lines.find((l) => l.msg === 'proxy-server ready')!.federationPort as number;
    kubeconfig = adminKubeconfig(federationPort);
    for (const [cluster, port] of [['alpha', memberPort], ['beta', echoPort]] as const) {
      const since = server.mark;
      // Debug: the agent logs 'stream closed' per stream (the watch test waits for it).
      agents[cluster] = spawnAgent({ cluster, server, allow: [`127.0.0.1:${port}`], extraArgs: ['--log-level', 'debug'] });
      await server.agentRegistered(cluster, since);
    }
    // alpha: the member's API server, the hub authenticates with root's client certificate
    // (system:masters there, so it may impersonate); beta: the recording server, with a bearer token;
    // gamma: joined, but no agent ever connects.
    await adminKubectl(kubeconfig, ['apply', '-f', '-'], joinYaml('alpha', memberPort, { 'tls.crt': b64(pki.users.root!.cert), 'tls.key': b64(pki.users.root!.key) }));
    await adminKubectl(kubeconfig, ['apply', '-f', '-'], joinYaml('beta', echoPort, { token: Buffer.from('hub-token-beta').toString('base64') }));
    await adminKubectl(kubeconfig, ['apply', '-f', '-'], joinYaml('gamma', 1, { token: Buffer.from('x').toString('base64') }));
    for (const c of ['alpha', 'beta', 'gamma']) await eventually(async () => assert.notEqual((await hub(`/clusters/${c}/version`, { user: 'root' })).status, 404));
  });

  after(async function () {
    for (const [cluster, agent] of Object.entries(agents)) if (agent.running) await stopAgent(server, agent, cluster);
    if (server) {
      await assertServerIdle(server);
      await server.kill();
    }
    await member?.kill('SIGTERM');
    echo?.closeAllConnections();
    await new Promise((resolve) => echo?.close(resolve));
    await assertNoLeakedResources(baseline);
  });

  it('serves a member\'s API through /clusters/<name>/ to curl and HTTPS clients; the member sees the caller; one audit line', async function () {
    const since = server.mark;
    const r = await curlStatus(['-sS', '--max-time', '20', '--cacert', pki.ca.cert, '--cert', pki.users.root!.cert, '--key', pki.users.root!.key, '-w', '\\n%{http_code}', `https://localhost:${server.connectPort}/clusters/alpha/api/v1/namespaces?limit=500`]);
    assert.equal(r.exit, 0, r.stderr);
    const [body, code] = [r.stdout.slice(0, r.stdout.lastIndexOf('\n')), r.stdout.slice(r.stdout.lastIndexOf('\n') + 1)];
    assert.equal(code, '200');
    assert.equal(JSON.parse(body).kind, 'NamespaceList');
    const identity = await member.waitForLog((l) => l.msg === 'identity' && l.path === '/api/v1/namespaces');
    assert.equal(identity.user, 'root');
    assert.deepEqual(identity.groups, ['system:masters', 'system:authenticated']);
    const audit = await server.waitForLog((l) => l.msg === 'kube-proxy audit' && l.path === '/api/v1/namespaces', { since });
    assert.equal(audit.user, 'root');
    assert.equal(audit.cluster, 'alpha');
    assert.equal(audit.verb, 'list');
    assert.equal(audit.status, 200);
    assert.ok((audit.bytesOut as number) > body.length, 'bytes out counted');
    assert.equal(typeof audit.sid, 'string');
    assert.ok(!JSON.stringify(audit).includes('limit=500'), 'no query string in the audit line');
    // The stream id is the tunnel stream's: the hub's dial log names the same one.
    await server.waitForLog((l) => l.msg === 'stream open' && l.sid === audit.sid && l.requester === 'kube-proxy');
    const metrics = await server.metrics();
    assert.ok(metric(metrics, 'fedtunnel_kubeproxy_requests_total{cluster="alpha",verb="list",code="200"}') >= 1, metrics);
    assert.match(metrics, /fedtunnel_kubeproxy_request_duration_seconds_count\{cluster="alpha",verb="list"\}/);
  });

  it('answers Status errors: other paths 404, unknown cluster 404, joined without agent 503, no credentials 401', async function () {
    assertStatus(await hub('/api/v1/namespaces', { user: 'root' }), 404, 'NotFound');
    assertStatus(await hub('/clusters/nowhere/api', { user: 'root' }), 404, 'NotFound', /cluster "nowhere" is not joined/);
    assertStatus(await hub('/clusters/gamma/api', { user: 'root' }), 503, 'ServiceUnavailable', /gamma/);
    assertStatus(await hub('/clusters/alpha/api'), 401, 'Unauthorized');
    assertStatus(await hub('/clusters/alpha/api', { token: 'wrong-token' }), 401, 'Unauthorized');
    // A revoked certificate is refused even with a valid bearer token beside it.
    assertStatus(await hub('/clusters/alpha/api', { user: 'rita' }), 403, 'Forbidden', /revoked/);
    assertStatus(await hub('/clusters/alpha/api', { user: 'rita', token: 'carol-token' }), 403, 'Forbidden', /revoked/);
    const metrics = await server.metrics();
    assert.ok(metric(metrics, 'fedtunnel_kubeproxy_refusals_total{reason="Unauthorized",code="401"}') >= 2, metrics);
  });

  it('refuses every path trick with 400 before anything is forwarded', async function () {
    const before = seen.length;
    for (const p of [
      '/clusters/beta/../alpha/api',
      '/clusters/beta/%2e%2e/alpha/api',
      '/clusters/beta/%2E%2e/alpha/api',
      '/clusters/beta/./api',
      '/clusters/beta/..%2falpha/api',
      '/clusters/be%74a/api',
      '/clusters/beta%2falpha/api',
      '/clusters/beta%5calpha/api',
      '/clusters//beta/api',
      '/clusters/beta//api',
      '/clusters/beta.tunnel/api',
    ]) {
      assertStatus(await hub(p, { user: 'root' }), 400, 'BadRequest');
    }
    assert.equal(seen.length, before, 'nothing reached beta');
    // curl too, unnormalised (--path-as-is).
    const r = await curlStatus(['-sS', '--path-as-is', '--max-time', '20', '--cacert', pki.ca.cert, '--cert', pki.users.root!.cert, '--key', pki.users.root!.key, '-o', '/dev/null', '-w', '%{http_code}', `https://localhost:${server.connectPort}/clusters/beta/../alpha/api`]);
    assert.equal(r.stdout, '400');
  });

  it('a user without proxy on a cluster gets 403 on both frontends; a token-file user with a binding works', async function () {
    assertStatus(await hub('/clusters/alpha/api/v1/namespaces', { user: 'bob' }), 403, 'Forbidden', /User "bob" cannot proxy cluster "alpha"/);
    await assert.rejects(connectVia({ tlsPort: server.connectPort, user: 'bob' }, 'alpha', `127.0.0.1:${memberPort}`), (e: unknown) => e instanceof ConnectRefused && e.status === 403);
    assertStatus(await hub('/clusters/beta/api', { token: 'carol-token' }), 403, 'Forbidden');
    await adminKubectl(kubeconfig, ['apply', '-f', '-'], proxyGrant('carol', 'beta'));
    await eventually(async () => assert.equal((await hub('/clusters/beta/api?x=1', { token: 'carol-token' })).status, 200));
    const last = seen[seen.length - 1]!;
    assert.equal(last.path, '/api?x=1');
  });

  it('a tenant-bound user reaches only clusters of their tenant, on both frontends, even with proxy on every cluster', async function () {
    await adminKubectl(kubeconfig, ['apply', '-f', '-'], `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: proxy-all}
rules: [{apiGroups: [core.kubefed.io], resources: [clusters], verbs: [proxy]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: tenants-proxy-all}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: proxy-all}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: tina}
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: dave}
`);
    // beta's agent is of tenant team-b, alpha's of team-a (agent certificates; no label set).
    await eventually(async () => assert.equal((await hub('/clusters/beta/api', { user: 'tina' })).status, 200));
    assertStatus(await hub('/clusters/alpha/api', { user: 'tina' }), 403, 'Forbidden', /belongs to tenant "team-a"/);
    assertStatus(await hub('/clusters/alpha/api', { token: 'dave-token' }), 403, 'Forbidden', /team-a/);
    assert.equal((await hub('/clusters/beta/api', { token: 'dave-token' })).status, 200);
    await assert.rejects(connectVia({ tlsPort: server.connectPort, user: 'tina' }, 'alpha', `127.0.0.1:${memberPort}`), (e: unknown) => e instanceof ConnectRefused && e.status === 403);
    const ok = await connectVia({ tlsPort: server.connectPort, user: 'tina' }, 'beta', `127.0.0.1:${echoPort}`);
    ok.destroy();
  });

  it('smuggling: inbound identity headers never reach the member; Connection cannot strip the hub\'s own', async function () {
    await adminKubectl(kubeconfig, ['apply', '-f', '-'], proxyGrant('alice', 'beta'));
    await eventually(async () => assert.equal((await hub('/clusters/beta/api', { user: 'alice' })).status, 200));
    // Impersonation the caller has no RBAC for, in case variants and duplicates: 403, nothing forwarded.
    const before = seen.length;
    for (const [raw, code] of [
      [['Impersonate-User', 'root'], 403],
      [['IMPERSONATE-USER', 'root'], 403],
      [['Impersonate-User', 'alice', 'Impersonate-Group', 'system:masters'], 403],
      [['impersonate-user', 'alice', 'impersonate-group', 'ops', 'Impersonate-Group', 'system:masters'], 403],
      [['Impersonate-User', 'alice', 'impersonate-extra-scopes', 'admin'], 403],
      [['impersonate-user', 'alice', 'IMPERSONATE-USER', 'root'], 400],
      [['Impersonate-Group', 'system:masters'], 400],
    ] as Array<[string[], number]>) {
      const a = await hub('/clusters/beta/api', { user: 'alice', rawHeaders: raw });
      assertStatus(a, code, code === 403 ? 'Forbidden' : 'BadRequest');
    }
    assert.equal(seen.length, before, 'no refused request was forwarded');
    // Another user's bearer token, X-Remote-*, and a Connection header naming the identity headers:
    // the request runs as alice (her certificate), with the hub's credential.
    const a = await hub('/clusters/beta/api/v1/namespaces', {
      user: 'alice',
      rawHeaders: ['Authorization', 'Bearer carol-token', 'Connection', 'Impersonate-User, Authorization, Impersonate-Group', 'X-Remote-User', 'root', 'x-remote-group', 'system:masters', 'Proxy-Authorization', 'Basic eDp5'],
    });
    assert.equal(a.status, 200, a.body);
    const lines = seen[seen.length - 1]!.rawHeaders;
    const values = (name: string): string[] => lines.flatMap((v, i) => (i % 2 === 0 && v.toLowerCase() === name ? [lines[i + 1]!] : []));
    assert.deepEqual(values('impersonate-user'), ['alice']);
    assert.deepEqual(values('impersonate-group'), ['ops']);
    assert.deepEqual(values('authorization'), ['Bearer hub-token-beta']);
    assert.deepEqual(values('x-remote-user'), []);
    assert.deepEqual(values('x-remote-group'), []);
    assert.deepEqual(values('proxy-authorization'), []);
    // Through alpha, the member's own log shows who it served: alice, impersonated by the hub's
    // credential (root), whatever the client smuggled; alice has no RBAC there, so the member says 403.
    await adminKubectl(kubeconfig, ['apply', '-f', '-'], proxyGrant('alice', 'alpha'));
    const memberMark = member.mark;
    const isSecretsList = (l: LogLine): boolean => l.msg === 'identity' && l.path === '/api/v1/namespaces/default/secrets';
    // Until the binding reaches the hub's RBAC cache the hub refuses (and nothing reaches the member).
    await eventually(async () => {
      await hub('/clusters/alpha/api/v1/namespaces/default/secrets', { user: 'alice', rawHeaders: ['Authorization', 'Bearer carol-token', 'Connection', 'Impersonate-User', 'X-Remote-User', 'root'] });
      await member.waitForLog(isSecretsList, { since: memberMark, timeoutMs: 1000 });
    });
    const seenByMember = await member.waitForLog(isSecretsList, { since: memberMark });
    assert.equal(seenByMember.user, 'alice');
    assert.deepEqual(seenByMember.groups, ['ops', 'system:authenticated']);
    assert.equal(seenByMember.impersonatedBy, 'root');
    const answer = await hub('/clusters/alpha/api/v1/namespaces/default/secrets', { user: 'alice' });
    assertStatus(answer, 403, 'Forbidden', /User "alice" cannot list resource "secrets"/);
    // A token-file user's groups: one Impersonate-Group line each, never comma-joined.
    await hub('/clusters/beta/api', { token: 'carol-token' });
    const carol = seen[seen.length - 1]!.rawHeaders;
    assert.deepEqual(carol.flatMap((v, i) => (i % 2 === 0 && v.toLowerCase() === 'impersonate-group' ? [carol[i + 1]] : [])), ['devs', 'qa']);
  });

  it('impersonation RBAC at the hub: allowed impersonation runs as the impersonated user, authorized as them', async function () {
    await adminKubectl(kubeconfig, ['apply', '-f', '-'], `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: impersonate-carol}
rules: [{apiGroups: [""], resources: [users], resourceNames: [carol, bob], verbs: [impersonate]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: alice-impersonates}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: impersonate-carol}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}]
`);
    const since = server.mark;
    await eventually(async () => assert.equal((await hub('/clusters/beta/api', { user: 'alice', headers: { 'Impersonate-User': 'carol' } })).status, 200));
    const lines = seen[seen.length - 1]!.rawHeaders;
    assert.deepEqual(lines.flatMap((v, i) => (i % 2 === 0 && v.toLowerCase() === 'impersonate-user' ? [lines[i + 1]] : [])), ['carol']);
    assert.equal(lines.filter((v, i) => i % 2 === 0 && v.toLowerCase() === 'impersonate-group').length, 0, 'no groups asked, none sent');
    const audit = await server.waitForLog((l) => l.msg === 'kube-proxy audit' && l.user === 'carol' && l.impersonatedBy === 'alice', { since });
    assert.equal(audit.cluster, 'beta');
    // bob may be impersonated but may not proxy beta: authorization runs as bob.
    assertStatus(await hub('/clusters/beta/api', { user: 'alice', headers: { 'Impersonate-User': 'bob' } }), 403, 'Forbidden', /User "bob"/);
    assertStatus(await hub('/clusters/beta/api', { user: 'alice', headers: { 'Impersonate-Group': 'x' } }), 400, 'BadRequest');
  });

  it('a watch streams events at once; a client that goes away resets its member stream at once (the member ends the watch)', async function () {
    const since = server.mark;
    const memberSince = member.mark;
    const events: LogLine[] = [];
    let buffered = '';
    let gotEvent!: () => void;
    const firstEvent = new Promise<void>((resolve) => (gotEvent = resolve));
    const req = https.request({
      host: '127.0.0.1', port: server.connectPort, servername: 'localhost', ca, agent: false,
      cert: fs.readFileSync(pki.users.root!.cert), key: fs.readFileSync(pki.users.root!.key),
      path: '/clusters/alpha/api/v1/namespaces/default/configmaps?watch=true',
    });
    const response = new Promise<number>((resolve, reject) => {
      req.once('response', (res) => {
        res.setEncoding('utf8').on('data', (c: string) => {
          buffered += c;
          for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
            events.push(JSON.parse(buffered.slice(0, nl)) as LogLine);
            buffered = buffered.slice(nl + 1);
            gotEvent();
          }
        });
        res.on('error', () => undefined);
        resolve(res.statusCode!);
      });
      req.once('error', reject);
    });
    req.end();
    assert.equal(await response, 200, 'the head arrives before any event');
    const created = await hub('/clusters/alpha/api/v1/namespaces/default/configmaps', { user: 'root', method: 'POST', body: JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'through-hub' }, data: { a: 'b' } }) });
    assert.equal(created.status, 201, created.body);
    await firstEvent;
    assert.equal(events[0]!.type, 'ADDED');
    assert.equal((events[0]!.object as { metadata: { name: string } }).metadata.name, 'through-hub');
    req.destroy();
    const audit = await server.waitForLog((l) => l.msg === 'kube-proxy audit' && l.verb === 'watch', { since });
    assert.equal(audit.status, 499, 'the client went away');
    // The member's watch ends (RST_STREAM): its h2 session and tunnel stream stay for other requests.
    await member.waitForLog((l) => l.msg === 'watch ended' && l.reason === 'client closed' && l.resource === 'configmaps', { since: memberSince });
  });

  /** Opens a watch through /clusters over h2 (as kubectl does); resolves once its 200 head is in. */
  function h2Watch(session: http2.ClientHttp2Session, urlPath: string): Promise<http2.ClientHttp2Stream> {
    return new Promise((resolve, reject) => {
      const stream = session.request({ ':path': urlPath });
      stream.once('response', (h) => (h[':status'] === 200 ? resolve(stream) : reject(new Error(`watch: HTTP ${h[':status']}`))));
      stream.on('data', () => undefined);
      stream.once('error', reject);
    });
  }

  it('h2 clients: 8 watches over one client connection are 8 streams of one member session on one tunnel stream; each leaving resets its member stream', async function () {
    const since = server.mark;
    const memberSince = member.mark;
    const root = pki.users.root!;
    const session = http2.connect(`https://127.0.0.1:${server.connectPort}`, { ca, servername: 'localhost', cert: fs.readFileSync(root.cert), key: fs.readFileSync(root.key) });
    try {
      const streamsBefore = (await server.state()).streams;
      const watches = await Promise.all(Array.from({ length: 8 }, (_, i) => h2Watch(session, `/clusters/alpha/api/v1/namespaces/default/configmaps?watch=true&labelSelector=n%3D${i}`)));
      assert.equal(session.alpnProtocol, 'h2', 'the hub offers h2 on its TLS listener');
      // At most the one member session's tunnel stream is new (none if an earlier test's is still open).
      assert.ok((await server.state()).streams <= Math.max(streamsBefore, 1), 'the watches share one tunnel stream');
      for (const w of watches) w.close(http2.constants.NGHTTP2_CANCEL);
      let ended = 0;
      await member.waitForLog((l) => l.msg === 'watch ended' && l.reason === 'client closed' && ++ended >= 8, { since: memberSince });
      const audits: LogLine[] = [];
      await server.waitForLog((l) => {
        if (l.msg === 'kube-proxy audit' && l.verb === 'watch') audits.push(l);
        return audits.length >= 8;
      }, { since });
      assert.deepEqual(new Set(audits.map((a) => a.status)), new Set([499]));
      assert.equal(new Set(audits.map((a) => a.sid)).size, 1, 'one tunnel stream (sid) carries every watch');
    } finally {
      session.destroy();
    }
  });

  it('an h2 client reaches an HTTP/1.1-only member (beta) through its keep-alive pool; the member sees no pseudo-headers', async function () {
    const root = pki.users.root!;
    const session = http2.connect(`https://127.0.0.1:${server.connectPort}`, { ca, servername: 'localhost', cert: fs.readFileSync(root.cert), key: fs.readFileSync(root.key) });
    try {
      const seenBefore = seen.length;
      const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const stream = session.request({ ':path': '/clusters/beta/api/v1/namespaces?h2=1' });
        let body = '';
        let status = 0;
        stream.once('response', (h) => (status = Number(h[':status'])));
        stream.setEncoding('utf8').on('data', (c: string) => (body += c));
        stream.once('end', () => resolve({ status, body }));
        stream.once('error', reject);
      });
      assert.equal(status, 200, body);
      assert.equal(JSON.parse(body).kind, 'Echo');
      const got = seen.slice(seenBefore).find((r) => r.path === '/api/v1/namespaces?h2=1');
      assert.ok(got, 'the member got the request');
      assert.ok(!got.rawHeaders.some((h, i) => i % 2 === 0 && h.startsWith(':')), got.rawHeaders.join(' '));
    } finally {
      session.destroy();
    }
  });

  it('a CONNECT client that chose h2 in ALPN but speaks HTTP/1.1 (Go\'s proxy dialer) is served as HTTP/1.1', async function () {
    const socket = await connectVia({ tlsPort: server.connectPort, user: 'root', alpn: ['h2', 'http/1.1'] }, 'beta', `127.0.0.1:${echoPort}`);
    try {
      assert.equal((socket as tls.TLSSocket).alpnProtocol, 'h2', 'the hub chose h2');
    } finally {
      socket.destroy();
    }
  });

  it('the member link dies under an open watch: the watch ends, and the next request dials a new session', async function () {
    const root = pki.users.root!;
    const session = http2.connect(`https://127.0.0.1:${server.connectPort}`, { ca, servername: 'localhost', cert: fs.readFileSync(root.cert), key: fs.readFileSync(root.key) });
    session.on('error', () => undefined);
    try {
      const watch = await h2Watch(session, '/clusters/alpha/api/v1/namespaces/default/configmaps?watch=true');
      const watchEnded = new Promise<void>((resolve) => watch.once('close', () => resolve()));
      const before = (await hub('/clusters/alpha/version', { user: 'root' })).status;
      assert.equal(before, 200);
      const since = server.mark;
      await stopAgent(server, agents.alpha!, 'alpha', 'SIGKILL');
      await watchEnded;
      agents.alpha = spawnAgent({ cluster: 'alpha', server, allow: [`127.0.0.1:${memberPort}`], extraArgs: ['--log-level', 'debug'] });
      await server.agentRegistered('alpha', since);
      const again = await hub('/clusters/alpha/version', { user: 'root' });
      assert.equal(again.status, 200, again.body);
      await server.waitForLog((l) => l.msg === 'stream open' && l.requester === 'kube-proxy', { since });
    } finally {
      session.destroy();
    }
  });

  it('kubectl (1.32) get and exec (WebSocket) through /clusters/alpha; kubectl 1.27 exec (SPDY)', async function () {
    const file = path.join(dir, 'kubeconfig-clusters');
    writeKubeconfig(file, [{ name: 'alpha', server: `https://localhost:${server.connectPort}/clusters/alpha`, caFile: pki.ca.cert }], { ...pki.users.root!, name: 'root' }, 'alpha');
    const kubectl = (bin: string, args: string[], stdin?: string): ReturnType<typeof runCommand> => runCommand(bin, ['--kubeconfig', file, '--request-timeout', '30s', ...args], stdin);
    const get = await kubectl('kubectl', ['get', 'configmap', 'through-hub', '-o', 'jsonpath={.data.a}']);
    assert.equal(get.code, 0, get.stderr);
    assert.equal(get.stdout, 'b');
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'box', namespace: 'default' }, spec: { containers: [{ name: 'main', image: 'none', command: ['sh', '-c', 'echo started; sleep 3600'] }] } };
    const applied = await kubectl('kubectl', ['apply', '-f', '-'], JSON.stringify(pod));
    assert.equal(applied.code, 0, applied.stderr);
    const since = server.mark;
    const exec = await kubectl('kubectl', ['exec', '-i', 'box', '--', 'sh', '-c', 'cat; echo to-stderr >&2; exit 3'], 'hello through the hub\n');
    assert.equal(exec.code, 3, exec.stderr);
    assert.equal(exec.stdout, 'hello through the hub\n');
    assert.match(exec.stderr, /to-stderr/);
    const audit = await server.waitForLog((l) => l.msg === 'kube-proxy audit' && l.path === '/api/v1/namespaces/default/pods/box/exec', { since });
    assert.equal(audit.verb, 'create');
    assert.equal(audit.status, 101);
    const old = path.join(path.dirname(fs.realpathSync((await runCommand('sh', ['-c', 'command -v kubectl'])).stdout.trim())), 'kubectl.1.27');
    if (fs.existsSync(old)) {
      const spdy = await kubectl(old, ['exec', 'box', '--', 'echo', 'spdy ok']);
      assert.equal(spdy.code, 0, spdy.stderr);
      assert.equal(spdy.stdout, 'spdy ok\n');
    }
    const deleted = await kubectl('kubectl', ['delete', 'pod', 'box', '--wait=false']);
    assert.equal(deleted.code, 0, deleted.stderr);
  });
});

