// Impersonation end to end against the member-mode API server binary with real kubectl (1.32, on
// PATH): `--as`/`--as-group` send the same Impersonate-* headers the hub's /clusters proxy sends.
// alice may impersonate carol and the group dev only; the request then runs as carol (whoami, the
// member's RBAC for carol, access reviews, exec upgrades), and --log-identities proves which
// identity arrived. Anything else is kube's 403 naming what was denied; malformed headers are 400.
import { strict as assert } from 'node:assert';
import type { LogLine } from '../../../common/spawn.js';
import { assertNoLeakedResources, resourceBaseline } from '../../support/leaks.js';
import { kubectl, request, startApiServer, waitForAccess, type ApiServerProcess, type KubectlResult } from './harness.js';

const IMPERSONATOR = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: impersonate-carol
rules:
- apiGroups: [""]
  resources: ["users"]
  resourceNames: ["carol"]
  verbs: ["impersonate"]
- apiGroups: [""]
  resources: ["groups"]
  resourceNames: ["dev"]
  verbs: ["impersonate"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: alice-impersonates-carol
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: impersonate-carol
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: alice
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: dev-edit
  namespace: retail
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: edit
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: Group
  name: dev
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: carol-view
  namespace: retail
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: view
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: carol
`;

const EXTRAS_IMPERSONATOR = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: extras-impersonator
rules:
- apiGroups: ["authentication.k8s.io"]
  resources: ["uids", "userextras/scopes"]
  verbs: ["impersonate"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: alice-extras
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: extras-impersonator
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: alice
`;

const POD = JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'box', namespace: 'retail' }, spec: { containers: [{ name: 'main', image: 'none', command: ['sh', '-c', 'echo started; while true; do sleep 3600; done'] }] } });

describe('apiserver: impersonation with kubectl --as (member mode, --log-identities)', function () {
  this.timeout(120_000);
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let server: ApiServerProcess;

  const ok = (r: KubectlResult): string => {
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  };
  const alice = (...args: string[]): Promise<KubectlResult> => kubectl(server, ['--context', 'alice', ...args]);
  /** The identity line the server logged for a request to `path` after line `since`. */
  const identity = (since: number, path: RegExp): Promise<LogLine> => server.waitForLog((l) => l.msg === 'identity' && typeof l.path === 'string' && path.test(l.path), { since, timeoutMs: 10_000 });

  before(async function () {
    baseline = await resourceBaseline();
    server = await startApiServer('impersonation', ['--enable-pod-exec', '--log-identities']);
    ok(await kubectl(server, ['create', 'namespace', 'retail']));
    ok(await kubectl(server, ['apply', '-f', '-'], IMPERSONATOR));
    ok(await kubectl(server, ['apply', '-f', '-'], POD));
    await waitForAccess(server, { user: 'alice', verb: 'impersonate', resource: 'users', name: 'carol' });
    await waitForAccess(server, { user: 'carol', groups: ['dev'], verb: 'create', resource: 'configmaps', namespace: 'retail' });
  });

  after(async function () {
    await server?.kill();
    await assertNoLeakedResources(baseline);
  });

  it('allowed: kubectl auth whoami shows the impersonated identity; the identity log names the impersonator', async function () {
    const since = server.mark;
    const table = ok(await alice('--as', 'carol', '--as-group', 'dev', 'auth', 'whoami'));
    assert.match(table, /^Username\s+carol$/m);
    assert.match(table, /^Groups\s+\[dev system:authenticated\]$/m);
    const line = await identity(since, /selfsubjectreviews$/);
    assert.equal(line.user, 'carol');
    assert.deepEqual(line.groups, ['dev', 'system:authenticated']);
    assert.equal(line.impersonatedBy, 'alice');
    assert.equal(line.method, 'POST');
    const before = server.mark;
    const self = JSON.parse(ok(await alice('auth', 'whoami', '-o', 'json')));
    const own = await identity(before, /selfsubjectreviews$/);
    assert.deepEqual([own.user, own.impersonatedBy], ['alice', null]);
    assert.deepEqual(self.status.userInfo, { username: 'alice', groups: ['ops', 'system:authenticated'] }, 'without --as alice is herself (her certificate says O=ops)');
  });

  it('the member\'s RBAC applies to the impersonated user: carol with dev edits retail, carol alone (view) is Forbidden to write, as carol', async function () {
    ok(await alice('--as', 'carol', '--as-group', 'dev', 'create', 'configmap', 'by-carol', '-n', 'retail', '--from-literal=k=v'));
    assert.match(ok(await alice('--as', 'carol', 'get', 'configmaps', '-n', 'retail')), /^by-carol\s/m);
    const since = server.mark;
    const r = await alice('--as', 'carol', 'create', 'configmap', 'by-carol-alone', '-n', 'retail');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /configmaps is forbidden: User "carol" cannot create resource "configmaps" in API group "" in the namespace "retail"/);
    assert.equal((await identity(since, /\/namespaces\/retail\/configmaps$/)).user, 'carol');
    // alice herself has no rights in retail: the write above was carol's (dev's edit).
    assert.match((await alice('get', 'configmaps', '-n', 'retail')).stderr, /User "alice" cannot list resource "configmaps"/);
    assert.equal(ok(await alice('--as', 'carol', '--as-group', 'dev', 'auth', 'can-i', 'create', 'configmaps', '-n', 'retail')).trim(), 'yes');
    const no = await alice('--as', 'carol', 'auth', 'can-i', 'create', 'configmaps', '-n', 'retail');
    assert.equal(no.stdout.trim(), 'no', 'SelfSubjectAccessReview answers for carol, not alice');
  });

  it('exec (an upgrade) runs as the impersonated identity and is authorized for it', async function () {
    const since = server.mark;
    assert.equal(ok(await alice('--as', 'carol', '--as-group', 'dev', 'exec', '-n', 'retail', 'box', '--', 'sh', '-c', 'echo from-$((6*7))')).trim(), 'from-42');
    const line = await identity(since, /\/pods\/box\/exec$/);
    assert.equal(line.user, 'carol');
    assert.equal(line.impersonatedBy, 'alice');
    const r = await alice('--as', 'carol', 'exec', '-n', 'retail', 'box', '--', 'true');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /User "carol" cannot create resource "pods\/exec" in API group "" in the namespace "retail"/);
  });

  it('denied: 403 naming the user, group or service account alice may not impersonate; bob may impersonate no one', async function () {
    let r = await alice('--as', 'admin', 'get', 'configmaps', '-n', 'retail');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Error from server \(Forbidden\): users "admin" is forbidden: User "alice" cannot impersonate resource "users" in API group "" at the cluster scope/);
    r = await alice('--as', 'carol', '--as-group', 'dev', '--as-group', 'system:masters', 'get', 'namespaces');
    assert.match(r.stderr, /groups "system:masters" is forbidden: User "alice" cannot impersonate resource "groups" in API group "" at the cluster scope/);
    r = await alice('--as', 'system:serviceaccount:kube-system:default', 'get', 'namespaces');
    assert.match(r.stderr, /serviceaccounts "default" is forbidden: User "alice" cannot impersonate resource "serviceaccounts" in API group "" in the namespace "kube-system"/);
    r = await alice('--as', 'carol', '--as-uid', 'u-1', 'get', 'configmaps', '-n', 'retail');
    assert.match(r.stderr, /uids.authentication.k8s.io "u-1" is forbidden: User "alice" cannot impersonate resource "uids" in API group "authentication.k8s.io"/);
    r = await kubectl(server, ['--context', 'bob', '--as', 'carol', 'get', 'configmaps', '-n', 'retail']);
    assert.match(r.stderr, /users "carol" is forbidden: User "bob" cannot impersonate resource "users"/);
  });

  it('granting impersonate on userextras and uids lets them through (whoami shows them); malformed headers are 400; counted in metrics', async function () {
    ok(await kubectl(server, ['apply', '-f', '-'], EXTRAS_IMPERSONATOR));
    await waitForAccess(server, { user: 'alice', verb: 'impersonate', group: 'authentication.k8s.io', resource: 'uids', name: 'u-1' });
    const self = JSON.parse(ok(await alice('--as', 'carol', '--as-uid', 'u-1', 'auth', 'whoami', '-o', 'json')));
    assert.deepEqual(self.status.userInfo, { username: 'carol', uid: 'u-1', groups: ['system:authenticated'] });
    // kubectl has no flag for extras: raw HTTP sends them, any case, one value a line.
    const review = JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' });
    const withExtras = await request(server, 'POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', { as: 'alice', body: review, contentType: 'application/json', headers: { 'impersonate-user': 'carol', 'IMPERSONATE-EXTRA-SCOPES': ['read', 'write'] } });
    assert.equal(withExtras.status, 201, withExtras.body);
    assert.deepEqual(withExtras.json().status.userInfo, { username: 'carol', groups: ['system:authenticated'], extra: { scopes: ['read', 'write'] } });
    const otherKey = await request(server, 'POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', { as: 'alice', body: review, contentType: 'application/json', headers: { 'Impersonate-User': 'carol', 'Impersonate-Extra-Team': 'blue' } });
    assert.equal(otherKey.status, 403);
    assert.match(otherKey.json().message, /cannot impersonate resource "userextras\/team" in API group "authentication.k8s.io"/);
    const twoUsers = await request(server, 'GET', '/api/v1/namespaces/retail/configmaps', { as: 'alice', headers: { 'Impersonate-User': ['carol', 'admin'] } });
    assert.equal(twoUsers.status, 400);

    const bad = await request(server, 'GET', '/api/v1/namespaces/retail/configmaps', { as: 'alice', headers: { 'Impersonate-Group': 'dev' } });
    assert.equal(bad.status, 400);
    assert.equal(bad.json().reason, 'BadRequest');
    assert.match(bad.json().message, /without impersonating a user/);

    const metrics = (await request(server, 'GET', '/metrics')).body;
    const count = (result: string): number => Number(new RegExp(`^fedtunnel_apiserver_impersonation_total\\{result="${result}"\\} (\\d+)$`, 'm').exec(metrics)?.[1] ?? 0);
    assert.ok(count('allowed') >= 6, metrics);
    assert.ok(count('denied') >= 6);
    assert.ok(count('invalid') >= 2);
    assert.match(metrics, /^fedtunnel_apiserver_authorization_decisions_total\{decision="denied",verb="impersonate"\} [1-9]/m, 'each check is an RBAC decision too');
  });
});
