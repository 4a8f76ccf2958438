// Who reaches which member through the hub, with real kubectl 1.33 on both frontends: a user
// without the RBAC verb proxy on a cluster is refused (403) before anything reaches the member; a
// user of one tenant is refused another tenant's cluster; a user the member lets only read pods is
// refused exec by the member's own RBAC (the identity the member judges is the user's, not the hub's).
import { strict as assert } from 'node:assert';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';
import { startKubeThroughHub, type Frontend, type KubeThroughHub } from '../support/kube-through-hub.js';

const FRONTENDS: Frontend[] = ['connect', 'clusters'];
const TENANT_GROUP = 'fedtunnel:tenant:retail';

/** RBAC on the hub: `user` (or group) may proxy `clusters` (every cluster when empty). */
function proxyGrant(name: string, subject: { kind: 'User' | 'Group'; name: string }, clusters: string[]): string {
  return `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: ${name}}
rules:
- apiGroups: [core.kubefed.io]
  resources: [clusters]
  ${clusters.length > 0 ? `resourceNames: [${clusters.join(', ')}]` : ''}
  verbs: [proxy]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: ${name}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: ${name}}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: ${subject.kind}, name: "${subject.name}"}
`;
}

/** RBAC on a member: `user` may read pods in default, nothing else (no pods/exec). */
const POD_READER = (user: string): string => `
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader, namespace: default}
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: ${user}-pod-reader, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: ${user}}
`;

describe('kubectl through the hub: who reaches which cluster (processes)', function () {
  this.timeout(120_000);
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let env: KubeThroughHub;

  before(async function () {
    baseline = await resourceBaseline();
    env = await startKubeThroughHub({
      members: { east: { tenant: 'retail' }, west: { tenant: 'payments' } },
      users: [
        { user: 'ann', groups: [] },
        { user: 'rita', groups: [TENANT_GROUP] },
        { user: 'vic', groups: [] },
      ],
    });
    const hub = async (yaml: string): Promise<void> => {
      const r = await env.fed.kubectl('federation', ['apply', '-f', '-'], yaml);
      assert.equal(r.code, 0, r.stderr);
    };
    // rita's tenant group may proxy every cluster — of its tenant; vic may proxy east.
    await hub(proxyGrant('retail-proxy', { kind: 'Group', name: TENANT_GROUP }, []));
    await hub(proxyGrant('vic-proxy-east', { kind: 'User', name: 'vic' }, ['east']));
    const member = await env.fed.kubectlMember('east', ['apply', '-f', '-'], POD_READER('vic'));
    assert.equal(member.code, 0, member.stderr);
    const pod = await env.fed.kubectlMember('east', ['run', 'box', '--image=none', '--command', '--', 'sh', '-c', 'echo started; sleep 1000']);
    assert.equal(pod.code, 0, pod.stderr);
    // The hub's RBAC cache is watch-fed: bounded wait until vic's binding is in force at /clusters.
    const deadline = Date.now() + 10_000;
    for (;;) {
      const res = await env.request('clusters', 'east', '/version', { user: 'vic' });
      res.resume();
      if (res.statusCode === 200) break;
      if (Date.now() > deadline) throw new Error(`vic never got proxy on east: ${res.statusCode}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });

  after(async function () {
    await env?.stop();
    await assertNoLeakedResources(baseline);
  });

  for (const frontend of FRONTENDS) {
    describe(`through ${frontend === 'connect' ? 'CONNECT (proxy-url)' : '/clusters/<name>'}`, function () {
      /** A 403 from the hub as kubectl shows it: the CONNECT refused, or a Forbidden Status. */
      const refusedByHub = (stderr: string): boolean => (frontend === 'connect' ? /Forbidden/.test(stderr) : /Error from server \(Forbidden\)/.test(stderr));

      it('a user without proxy on the cluster gets 403 (kubectl and a raw request)', async function () {
        const r = await env.kubectl(33, frontend, 'east', 'ann').run(['get', 'pods']);
        assert.notEqual(r.code, 0);
        assert.ok(refusedByHub(r.stderr), r.stderr);
        const raw = await env.request(frontend, 'east', '/api/v1/namespaces/default/pods', { user: 'ann' }).then(
          (res) => {
            res.resume();
            return res.statusCode;
          },
          (error: { status?: number }) => error.status,
        );
        assert.equal(raw, 403);
      });

      it('a tenant group reaches its tenant\'s cluster, and another tenant\'s cluster is 403', async function () {
        const own = await env.kubectl(33, frontend, 'east', 'rita').run(['version', '-o', 'json']);
        assert.equal(own.code, 0, own.stderr);
        const other = await env.kubectl(33, frontend, 'west', 'rita').run(['version', '-o', 'json']);
        assert.notEqual(other.code, 0, `rita (tenant retail) reached west (tenant payments): ${other.stdout.toString()}`);
        assert.ok(refusedByHub(other.stderr), other.stderr);
      });

      it('exec with only get pods on the member: the member refuses the user (403 on pods/exec)', async function () {
        const k = env.kubectl(33, frontend, 'east', 'vic');
        const read = await k.run(['get', 'pod', 'box', '-o', 'name']);
        assert.equal(read.code, 0, read.stderr);
        assert.equal(read.stdout.toString().trim(), 'pod/box');
        const exec = await k.run(['exec', 'box', '--', 'true']);
        assert.notEqual(exec.code, 0);
        assert.match(exec.stderr, /forbidden: User "vic" cannot create resource "pods\/exec"/);
      });
    });
  }
});
