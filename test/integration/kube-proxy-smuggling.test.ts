// Nothing a client sends to /clusters/<name>/ reaches another identity or another cluster: raw
// requests (no kubectl, so nothing is cleaned up on the way) with inbound Impersonate-* headers in
// every case and duplicated, `Connection: Impersonate-User` (hop-by-hop stripping must not remove
// the hub's own headers), another user's Authorization, and path tricks. The proof is the member's
// own account: its SelfSubjectReview answer and its --log-identities lines (user, impersonatedBy).
// Also OIDC at /clusters with a local issuer: only a valid ID token passes.
import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';
import { OidcIssuer, newSigningKey } from '../support/oidc-issuer.js';
import { testPki } from '../support/pki.js';
import { HUB_USER, startKubeThroughHub, type KubeThroughHub } from '../support/kube-through-hub.js';
import { scratchDir } from '../support/paths.js';
import type { LogLine } from '../support/processes.js';

const SSR_PATH = '/apis/authentication.k8s.io/v1/selfsubjectreviews';
const SSR_BODY = JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' });
const TOM_TOKEN = 'tom-token-0123456789';

async function answer(res: http.IncomingMessage): Promise<{ status: number; body: string }> {
  let body = '';
  res.setEncoding('utf8');
  for await (const chunk of res) body += chunk;
  return { status: res.statusCode ?? 0, body };
}

/** base64url of JSON, for a hand-made token. */
const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('/clusters: no smuggled identity or cluster; OIDC (processes)', function () {
  this.timeout(120_000);
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let env: KubeThroughHub;
  let issuer: OidcIssuer;

  before(async function () {
    baseline = await resourceBaseline();
    issuer = await OidcIssuer.create('hub');
    await issuer.start();
    const tokens = path.join(scratchDir('kube-proxy-smuggling'), 'tokens.csv');
    fs.writeFileSync(tokens, `${TOM_TOKEN},tom,1001\n`, { mode: 0o600 });
    env = await startKubeThroughHub({
      members: { east: {}, west: {} },
      users: [{ user: 'ann', groups: ['devs'] }],
      hubArgs: [
        '--token-auth-file', tokens,
        '--oidc-issuer-url', issuer.url, '--oidc-client-id', 'hub', '--oidc-username-prefix', 'oidc:',
        '--oidc-groups-claim', 'groups', '--oidc-groups-prefix', 'oidc:', '--oidc-ca-file', testPki().ca.cert,
      ],
      memberArgs: ['--log-identities'],
    });
    // ann, tom and the OIDC user erin may proxy east only.
    const grant = `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: proxy-east}
rules:
- {apiGroups: [core.kubefed.io], resources: [clusters], resourceNames: [east], verbs: [proxy]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: proxy-east}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: proxy-east}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: ann}
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: tom}
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "oidc:erin"}
`;
    const r = await env.fed.kubectl('federation', ['apply', '-f', '-'], grant);
    assert.equal(r.code, 0, r.stderr);
    // Bounded wait until the watch-fed RBAC cache lets ann through.
    const deadline = Date.now() + 10_000;
    for (let seen = await answer(await env.request('clusters', 'east', '/version', { user: 'ann' })); seen.status !== 200; seen = await answer(await env.request('clusters', 'east', '/version', { user: 'ann' }))) {
      if (Date.now() > deadline) throw new Error(`ann never got proxy on east: ${seen.status} ${seen.body}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });

  after(async function () {
    await env?.stop();
    await issuer?.stop();
    await assertNoLeakedResources(baseline);
  });

  let markers = 0;
  /**
   * The member's identity lines since `since`, up to a marker request sent now (as admin, through
   * /clusters): log lines arrive on a pipe, so a response can come before its line; the marker's
   * line coming back proves every earlier line is in.
   */
  async function identities(member: string, since: number): Promise<LogLine[]> {
    const marker = `/api/v1/namespaces/marker-${++markers}`;
    (await env.request('clusters', member, marker)).resume();
    const proc = env.fed.members[member]!.apiserver;
    await proc.waitForLog((l) => l.msg === 'identity' && l.path === marker, { since });
    const lines = proc.lines.slice(since);
    return lines.slice(0, lines.findIndex((l) => l.msg === 'identity' && l.path === marker)).filter((l) => l.msg === 'identity');
  }

  /** POSTs a SelfSubjectReview to east as ann with `headers`; returns the status, who east says it saw, and its identity lines. */
  async function reviewAsAnn(headers: Array<[string, string]>): Promise<{ status: number; username?: string; groups?: string[]; seen: LogLine[] }> {
    const since = env.fed.members.east!.apiserver.mark;
    const res = await answer(await env.request('clusters', 'east', SSR_PATH, { user: 'ann', method: 'POST', headers: [['Content-Type', 'application/json'], ...headers], body: SSR_BODY }));
    const parsed = res.status === 201 ? JSON.parse(res.body).status.userInfo : undefined;
    return { status: res.status, username: parsed?.username, groups: parsed?.groups, seen: (await identities('east', since)).filter((l) => l.path === SSR_PATH) };
  }

  it('plain: the member sees ann (impersonated by the hub\'s credential), with her groups', async function () {
    const r = await reviewAsAnn([]);
    assert.equal(r.status, 201);
    assert.equal(r.username, 'ann');
    assert.ok(r.groups?.includes('devs'), JSON.stringify(r.groups));
    assert.ok(!r.groups?.includes('system:masters'));
    assert.equal(r.seen.length, 1);
    assert.equal(r.seen[0]!.user, 'ann');
    assert.equal(r.seen[0]!.impersonatedBy, HUB_USER);
  });

  const SMUGGLED: Array<{ what: string; headers: Array<[string, string]> }> = [
    { what: 'Impersonate-User', headers: [['Impersonate-User', 'admin']] },
    { what: 'impersonate-user (lower case)', headers: [['impersonate-user', 'admin']] },
    { what: 'IMPERSONATE-USER (upper case)', headers: [['IMPERSONATE-USER', 'admin']] },
    { what: 'Impersonate-User twice', headers: [['Impersonate-User', 'admin'], ['impersonate-user', 'root']] },
    { what: 'Impersonate-Group system:masters in three cases', headers: [['Impersonate-Group', 'system:masters'], ['impersonate-group', 'system:masters'], ['IMPERSONATE-GROUP', 'system:masters']] },
    { what: 'Impersonate-User with Impersonate-Group', headers: [['Impersonate-User', 'admin'], ['Impersonate-Group', 'system:masters']] },
    { what: 'Impersonate-Uid', headers: [['Impersonate-Uid', '0']] },
    { what: 'Impersonate-Extra-*', headers: [['Impersonate-Extra-Scopes', 'all'], ['impersonate-extra-reason', 'x']] },
    { what: 'Connection: Impersonate-User', headers: [['Connection', 'Impersonate-User'], ['Impersonate-User', 'admin']] },
    { what: 'Connection naming every Impersonate-* header', headers: [['Connection', 'keep-alive, Impersonate-User, Impersonate-Group, Impersonate-Uid, Authorization'], ['Impersonate-Group', 'system:masters']] },
    { what: 'Authorization of another user (tom\'s token beside ann\'s certificate)', headers: [['Authorization', `Bearer ${TOM_TOKEN}`]] },
  ];

  for (const { what, headers } of SMUGGLED) {
    it(`smuggled ${what}: refused, or the member sees exactly the hub-authenticated caller`, async function () {
      const r = await reviewAsAnn(headers);
      // ann has no impersonate grant on the hub: refused (400/401/403), or the headers are dropped.
      assert.ok([201, 400, 401, 403].includes(r.status), `status ${r.status}`);
      for (const line of r.seen) {
        assert.ok(line.user === 'ann' || line.user === 'tom', `the member saw ${String(line.user)}`);
        assert.equal(line.impersonatedBy, HUB_USER, 'every request reaches the member as the hub impersonating the caller');
        assert.ok(!(line.groups as string[]).includes('system:masters'), `groups ${JSON.stringify(line.groups)}`);
      }
      if (r.status === 201) {
        assert.ok(r.username === 'ann' || r.username === 'tom', `the member answered for ${String(r.username)}`);
        assert.ok(!r.groups?.includes('system:masters'));
      } else {
        assert.equal(r.seen.length, 0, 'a refused request never reaches the member');
      }
    });
  }

  const TRICKS = [
    '/clusters/east/../west/api/v1/namespaces/default/configmaps',
    '/clusters/east/%2e%2e/west/api/v1/namespaces/default/configmaps',
    '/clusters/east/%2E%2E/west/api/v1/namespaces/default/configmaps',
    '/clusters/east%2F..%2Fwest/api/v1/namespaces/default/configmaps',
    '/clusters/east/api/v1/namespaces/default/configmaps/..%2F..%2F..%2F..%2Fwest',
    '/clusters//west/api/v1/namespaces/default/configmaps',
    '/clusters/east//api/v1/namespaces/default/configmaps',
    '/clusters/west.east/api/v1/namespaces/default/configmaps',
    '/clusters/w%65st/api/v1/namespaces/default/configmaps',
    '/clusters/east%00/api/v1/namespaces/default/configmaps',
    '/clusters/west/api/v1/namespaces/default/configmaps',
  ];

  it('path tricks never reach west for a user who may proxy east only (and a bad path is a Status, not a guess)', async function () {
    const since = { east: env.fed.members.east!.apiserver.mark, west: env.fed.members.west!.apiserver.mark };
    const results = await Promise.all(TRICKS.map(async (p) => ({ p, ...(await answer(await env.request('clusters', 'east', p, { user: 'ann', asIs: true }))) })));
    for (const r of results) {
      assert.ok([400, 403, 404].includes(r.status), `${r.p} → ${r.status} ${r.body}`);
      const status = JSON.parse(r.body);
      assert.equal(status.kind, 'Status', `${r.p}: a Kubernetes Status`);
    }
    // The controller's own member requests (the hub's credential, not impersonating) are not ann's.
    const onBehalf = async (member: string, from: number): Promise<LogLine[]> => (await identities(member, from)).filter((l) => typeof l.impersonatedBy === 'string');
    assert.deepEqual(await onBehalf('west', since.west), [], 'nothing of ann reached west');
    for (const line of await onBehalf('east', since.east)) assert.doesNotMatch(String(line.path), /west|\.\./, `east got ${String(line.path)}`);
  });

  describe('OIDC ID tokens at /clusters (local issuer)', function () {
    const withToken = async (token: string): Promise<{ status: number; body: string }> =>
      answer(await env.request('clusters', 'east', SSR_PATH, { user: null, method: 'POST', headers: [['Content-Type', 'application/json'], ['Authorization', `Bearer ${token}`]], body: SSR_BODY }));

    it('a valid token is the prefixed user on the member', async function () {
      const since = env.fed.members.east!.apiserver.mark;
      const r = await withToken(await issuer.token({ sub: 'erin', groups: ['platform'] }));
      assert.equal(r.status, 201, r.body);
      const user = JSON.parse(r.body).status.userInfo;
      assert.equal(user.username, 'oidc:erin');
      assert.ok(user.groups.includes('oidc:platform'), JSON.stringify(user.groups));
      assert.ok((await identities('east', since)).some((l) => l.user === 'oidc:erin' && l.impersonatedBy === HUB_USER));
    });

    it('expired, wrong audience, wrong key and alg none are 401 Status, and nothing reaches the member', async function () {
      const since = env.fed.members.east!.apiserver.mark;
      const now = Math.floor(Date.now() / 1000);
      const stranger = await newSigningKey(issuer.keys[0]!.kid);
      const bad = {
        expired: await issuer.token({ sub: 'erin', iat: now - 3600, exp: now - 600 }),
        'wrong audience': await issuer.token({ sub: 'erin', aud: 'someone-else' }),
        'wrong key': await issuer.token({ sub: 'erin' }, stranger),
        'alg none': `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ iss: issuer.url, aud: 'hub', sub: 'erin', iat: now, exp: now + 600 })}.`,
      };
      for (const [what, token] of Object.entries(bad)) {
        const r = await withToken(token);
        assert.equal(r.status, 401, `${what}: ${r.body}`);
        assert.equal(JSON.parse(r.body).reason, 'Unauthorized', what);
      }
      assert.deepEqual((await identities('east', since)).filter((l) => String(l.user).startsWith('oidc:')), []);
    });
  });
});
