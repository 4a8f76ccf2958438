// RBAC end to end against the API server binary: a user bound to `edit` in namespace retail works
// there and is refused (kube's 403 Status) in payments and at the cluster scope — through real
// kubectl (the one on PATH, 1.27 and 1.33), `kubectl auth can-i`, raw HTTP and client-node; bindings
// change what is allowed without a restart (the watch-fed cache); RBAC objects are validated (422)
// and listed with kube's columns.
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { AuthorizationV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { assertNoLeakedResources, resourceBaseline } from '../../support/leaks.js';
import { kubectl, request, startApiServer, subjectCan, waitForAccess, type ApiServerProcess, type KubectlResult } from './harness.js';

const RETAIL_EDIT = `apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: alice-edit
  namespace: retail
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: edit
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: alice
`;

/** kubectl on PATH (1.32) and the two ends of the supported range, each with its own HOME (discovery cache). */
const KUBECTLS = ['kubectl', 'kubectl.1.27', 'kubectl.1.33'];

function kubectlBin(name: string): string {
  if (name === 'kubectl') return name;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, 'kubectl');
    if (dir && fs.existsSync(candidate)) return path.join(path.dirname(fs.realpathSync(candidate)), name);
  }
  return name;
}

describe('apiserver: RBAC with kubectl, raw HTTP and client-node', function () {
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let server: ApiServerProcess;
  const asAlice = { user: 'alice', groups: ['ops'] };

  const run = (bin: string, args: string[], input?: string): Promise<KubectlResult> =>
    new Promise((resolve) => {
      const home = path.join(server.home, bin);
      fs.mkdirSync(home, { recursive: true });
      const env = { ...process.env, KUBECONFIG: server.kubeconfig, HOME: home, KUBECACHEDIR: path.join(home, 'cache') };
      const child = execFile(kubectlBin(bin), args, { env, timeout: 30_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0, stdout, stderr });
      });
      child.stdin!.end(input);
    });
  const ok = (r: KubectlResult): string => {
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  };

  before(async function () {
    baseline = await resourceBaseline();
    server = await startApiServer('rbac');
    for (const ns of ['retail', 'payments']) ok(await kubectl(server, ['create', 'namespace', ns]));
    ok(await kubectl(server, ['create', 'configmap', 'ledger', '-n', 'payments', '--from-literal=k=v']));
    ok(await kubectl(server, ['apply', '-f', '-'], RETAIL_EDIT));
    await waitForAccess(server, { ...asAlice, verb: 'create', resource: 'configmaps', namespace: 'retail' });
  });

  after(async function () {
    await server?.kill();
    await assertNoLeakedResources(baseline);
  });

  for (const bin of KUBECTLS) {
    it(`${bin}: alice (edit in retail) creates and reads configmaps in retail, is Forbidden in payments and at the cluster scope; auth can-i agrees`, async function () {
      const cm = `made-by-${bin.replace(/\./g, '-')}`;
      ok(await run(bin, ['--context', 'alice', 'create', 'configmap', cm, '-n', 'retail', '--from-literal=a=1']));
      assert.equal(ok(await run(bin, ['--context', 'alice', 'get', 'configmap', cm, '-n', 'retail', '-o', 'jsonpath={.data.a}'])), '1');
      assert.match(ok(await run(bin, ['--context', 'alice', 'get', 'configmaps', '-n', 'retail'])), new RegExp(`^${cm}\\s+1\\s`, 'm'));

      let r = await run(bin, ['--context', 'alice', 'get', 'configmap', 'ledger', '-n', 'payments']);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /Error from server \(Forbidden\): configmaps "ledger" is forbidden: User "alice" cannot get resource "configmaps" in API group "" in the namespace "payments"/);
      r = await run(bin, ['--context', 'alice', 'create', 'configmap', 'intruder', '-n', 'payments']);
      assert.match(r.stderr, /forbidden: User "alice" cannot create resource "configmaps" in API group "" in the namespace "payments"/);
      r = await run(bin, ['--context', 'alice', 'get', 'namespaces']);
      assert.match(r.stderr, /namespaces is forbidden: User "alice" cannot list resource "namespaces" in API group "" at the cluster scope/);
      r = await run(bin, ['--context', 'alice', 'create', 'rolebinding', 'escalate', '-n', 'retail', '--clusterrole=admin', '--user=alice']);
      assert.match(r.stderr, /rolebindings.rbac.authorization.k8s.io is forbidden: User "alice" cannot create resource "rolebindings"/, 'edit does not manage RBAC');

      const canI = async (...args: string[]): Promise<string> => {
        const out = await run(bin, ['--context', 'alice', 'auth', 'can-i', ...args]);
        assert.ok(out.code === 0 || out.code === 1, out.stderr);
        return out.stdout.trim();
      };
      assert.equal(await canI('create', 'configmaps', '-n', 'retail'), 'yes');
      assert.equal(await canI('get', 'secrets', '-n', 'retail'), 'yes');
      assert.equal(await canI('create', 'configmaps', '-n', 'payments'), 'no');
      assert.equal(await canI('list', 'namespaces'), 'no');
      assert.equal(await canI('delete', 'rolebindings', '-n', 'retail'), 'no');
      assert.equal(await canI('get', '/api'), 'yes');
      assert.equal(await canI('get', '/metrics'), 'no');
      assert.equal((await run(bin, ['auth', 'can-i', 'delete', 'namespaces'])).stdout.trim(), 'yes', 'admin (system:masters)');
    });
  }

  it('kubectl auth can-i --list shows the rules of retail (SelfSubjectRulesReview)', async function () {
    const out = ok(await kubectl(server, ['--context', 'alice', 'auth', 'can-i', '--list', '-n', 'retail']));
    assert.match(out, /^configmaps\s+\[\]\s+\[\]\s+\[.*create.*\]/m);
    assert.match(out, /^\s*\[\/api\/\*\]\s+\[\]\s+\[get\]/m);
    const elsewhere = ok(await kubectl(server, ['--context', 'alice', 'auth', 'can-i', '--list', '-n', 'payments']));
    assert.doesNotMatch(elsewhere, /^configmaps\s/m);
  });

  it('raw HTTP: 200 in retail, kube 403 Status in payments and for namespaces; SubjectAccessReview needs create on it', async function () {
    assert.equal((await request(server, 'GET', '/api/v1/namespaces/retail/configmaps', { as: 'alice' })).status, 200);
    const denied = await request(server, 'GET', '/api/v1/namespaces/payments/configmaps/ledger', { as: 'alice' });
    assert.equal(denied.status, 403);
    assert.deepEqual(denied.json(), {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'configmaps "ledger" is forbidden: User "alice" cannot get resource "configmaps" in API group "" in the namespace "payments"',
      reason: 'Forbidden',
      details: { name: 'ledger', group: '', kind: 'configmaps' },
      code: 403,
    });
    assert.equal((await request(server, 'GET', '/api/v1/namespaces', { as: 'alice' })).status, 403);
    const watch = await request(server, 'GET', '/api/v1/namespaces/payments/configmaps?watch=true', { as: 'alice' });
    assert.equal(watch.status, 403);
    assert.match(watch.json().message, /cannot watch resource "configmaps"/);

    const sar = JSON.stringify({ apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec: { user: 'alice', resourceAttributes: { verb: 'get', resource: 'configmaps', namespace: 'retail' } } });
    const byAlice = await request(server, 'POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', { as: 'alice', body: sar, contentType: 'application/json' });
    assert.equal(byAlice.status, 403);
    const byAdmin = await request(server, 'POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', { body: sar, contentType: 'application/json' });
    assert.equal(byAdmin.status, 201);
    assert.equal(byAdmin.json().status.allowed, true);
    assert.match(byAdmin.json().status.reason, /RoleBinding "alice-edit\/retail" of ClusterRole "edit" to User "alice"/);
    assert.equal((await request(server, 'GET', '/apis/authorization.k8s.io/v1/subjectaccessreviews')).status, 405, 'create-only');
  });

  it('client-node: typed calls as alice succeed in retail and reject with 403 in payments; SelfSubjectAccessReview', async function () {
    const kc = new KubeConfig();
    kc.loadFromFile(server.kubeconfig);
    kc.setCurrentContext('alice');
    const core = kc.makeApiClient(CoreV1Api);
    const list = await core.listNamespacedConfigMap({ namespace: 'retail' });
    assert.ok(list.items.length >= 1);
    await assert.rejects(core.listNamespacedConfigMap({ namespace: 'payments' }), (err: { code?: number; body?: string }) => {
      assert.equal(err.code, 403);
      assert.match(String(err.body), /"reason":"Forbidden"/);
      return true;
    });
    const authz = kc.makeApiClient(AuthorizationV1Api);
    const review = await authz.createSelfSubjectAccessReview({ body: { spec: { resourceAttributes: { verb: 'delete', resource: 'configmaps', namespace: 'retail' } } } });
    assert.equal(review.status?.allowed, true);
    const other = await authz.createSelfSubjectAccessReview({ body: { spec: { resourceAttributes: { verb: 'delete', resource: 'configmaps', namespace: 'payments' } } } });
    assert.equal(other.status?.allowed, false);
  });

  it('bindings take effect without a restart: delete, group binding, Role with resourceNames', async function () {
    ok(await kubectl(server, ['delete', 'rolebinding', 'alice-edit', '-n', 'retail']));
    await waitForAccess(server, { ...asAlice, verb: 'list', resource: 'configmaps', namespace: 'retail' }, false);
    assert.equal((await request(server, 'GET', '/api/v1/namespaces/retail/configmaps', { as: 'alice' })).status, 403);

    // alice's certificate says group ops: a binding of the group reaches her.
    ok(await kubectl(server, ['create', 'rolebinding', 'ops-view', '-n', 'payments', '--clusterrole=view', '--group=ops']));
    await waitForAccess(server, { ...asAlice, verb: 'get', resource: 'configmaps', namespace: 'payments' });
    assert.equal((await request(server, 'GET', '/api/v1/namespaces/payments/configmaps/ledger', { as: 'alice' })).status, 200);
    assert.equal((await request(server, 'GET', '/api/v1/namespaces/payments/configmaps/ledger', { as: 'bob' })).status, 403, 'bob is not in ops');
    assert.equal((await request(server, 'GET', '/api/v1/namespaces/payments/secrets', { as: 'alice' })).status, 403, 'view excludes secrets');

    ok(await kubectl(server, ['create', 'role', 'one-cm', '-n', 'retail', '--verb=get,update', '--resource=configmaps', '--resource-name=shared']));
    ok(await kubectl(server, ['create', 'configmap', 'shared', '-n', 'retail']));
    ok(await kubectl(server, ['create', 'rolebinding', 'bob-one-cm', '-n', 'retail', '--role=one-cm', '--user=bob']));
    await waitForAccess(server, { user: 'bob', verb: 'get', resource: 'configmaps', namespace: 'retail', name: 'shared' });
    assert.equal((await request(server, 'GET', '/api/v1/namespaces/retail/configmaps/shared', { as: 'bob' })).status, 200);
    assert.equal((await request(server, 'GET', '/api/v1/namespaces/retail/configmaps/other', { as: 'bob' })).status, 403);
    assert.equal((await request(server, 'GET', '/api/v1/namespaces/retail/configmaps', { as: 'bob' })).status, 403, 'resourceNames never allow a list');
    assert.equal(await subjectCan(server, { user: 'bob', verb: 'delete', resource: 'configmaps', namespace: 'retail', name: 'shared' }), false);
  });

  it('escalation prevention: a namespace admin grants edit there, but not cluster-admin, and no role it does not hold', async function () {
    ok(await kubectl(server, ['create', 'rolebinding', 'bob-admin', '-n', 'retail', '--clusterrole=admin', '--user=bob']));
    await waitForAccess(server, { user: 'bob', verb: 'create', resource: 'rolebindings', group: 'rbac.authorization.k8s.io', namespace: 'retail' });
    ok(await kubectl(server, ['--context', 'bob', 'create', 'rolebinding', 'alice-edit-again', '-n', 'retail', '--clusterrole=edit', '--user=alice']));
    let r = await kubectl(server, ['--context', 'bob', 'create', 'rolebinding', 'bob-root', '-n', 'retail', '--clusterrole=cluster-admin', '--user=bob']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /rolebindings.rbac.authorization.k8s.io "bob-root" is forbidden: user "bob" .* is attempting to grant RBAC permissions not currently held/);
    r = await kubectl(server, ['--context', 'bob', 'create', 'role', 'crd-reader', '-n', 'retail', '--verb=list', '--resource=customresourcedefinitions']);
    assert.match(r.stderr, /roles.rbac.authorization.k8s.io "crd-reader" is forbidden: .*not currently held:\n\{APIGroups:\["apiextensions.k8s.io"\], Resources:\["customresourcedefinitions"\], Verbs:\["list"\]\}/);
    // A patch that widens a binding's subjects is fine; one that would point it elsewhere is checked as a whole.
    ok(await kubectl(server, ['--context', 'bob', 'create', 'role', 'cm-reader', '-n', 'retail', '--verb=get', '--resource=configmaps']));
    r = await kubectl(server, ['--context', 'bob', 'patch', 'role', 'cm-reader', '-n', 'retail', '--type=json', '-p', '[{"op":"add","path":"/rules/-","value":{"verbs":["*"],"apiGroups":["*"],"resources":["*"]}}]']);
    assert.match(r.stderr, /forbidden: .*not currently held/);
    assert.equal(ok(await kubectl(server, ['get', 'role', 'cm-reader', '-n', 'retail', '-o', 'jsonpath={.rules[*].verbs}'])), '["get"]', 'the refused patch changed nothing');
  });

  it('RBAC objects: 422 for a bad shape, the ROLE column, the default ClusterRoles', async function () {
    const bad = RETAIL_EDIT.replace('kind: ClusterRole', 'kind: Clusterrole').replace('alice-edit', 'bad');
    let r = await kubectl(server, ['apply', '-f', '-'], bad);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /RoleBinding "bad" is invalid: roleRef.kind: Unsupported value: "Clusterrole"/);
    const badRule = 'apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: bad-rule\nrules:\n- verbs: [get]\n  nonResourceURLs: [no-slash]\n';
    r = await kubectl(server, ['apply', '-f', '-'], badRule);
    assert.match(r.stderr, /nonResourceURLs: Invalid value: "no-slash"/);
    assert.match(ok(await kubectl(server, ['get', 'rolebindings', '-n', 'payments'])), /^ops-view\s+ClusterRole\/view\s/m);
    // Same roleRef, keys in another order (as an editor may write them): accepted.
    ok(await kubectl(server, ['patch', 'rolebinding', 'ops-view', '-n', 'payments', '--type=json', '-p', '[{"op":"replace","path":"/roleRef","value":{"name":"view","kind":"ClusterRole","apiGroup":"rbac.authorization.k8s.io"}}]']));
    r = await kubectl(server, ['patch', 'rolebinding', 'ops-view', '-n', 'payments', '--type=merge', '-p', '{"roleRef":{"name":"edit"}}']);
    assert.match(r.stderr, /RoleBinding "ops-view" is invalid: roleRef: Invalid value: .*cannot change roleRef/);
    const defaults = ok(await kubectl(server, ['get', 'clusterroles', '-o', 'name']));
    for (const name of ['cluster-admin', 'admin', 'edit', 'view', 'system:discovery', 'system:basic-user']) assert.match(defaults, new RegExp(`^clusterrole.rbac.authorization.k8s.io/${name}$`, 'm'));
    assert.match(ok(await kubectl(server, ['api-resources', '--api-group=rbac.authorization.k8s.io', '-o', 'name'])), /^rolebindings.rbac.authorization.k8s.io$/m);
  });
});
