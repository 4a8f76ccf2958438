// The tenant rule of mayReach (shared by CONNECT and /clusters) and client-requested impersonation.
import { strict as assert } from 'node:assert';
import { mayReach } from '../../../proxy-server/targets.js';
import { effectiveIdentity, requestedImpersonation } from '../../../proxy-server/kube-proxy/impersonation.js';
import { KubeProxyError } from '../../../proxy-server/kube-proxy/status.js';
import { Policy, type Binding, type Role } from '../../../federation/apiserver/rbac.js';
import { TENANT_GROUP_PREFIX, tenantsOfGroups } from '../../../federation/kubefed/tenancy.js';

const bind = (name: string, role: string, subject: Binding['subjects'][number]): Binding => ({ name, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role }, subjects: [subject] });

describe('kube-proxy: tenant decision table (mayReach)', function () {
  const proxyAll: Role = { name: 'proxy-all', rules: [{ verbs: ['proxy'], apiGroups: ['core.kubefed.io'], resources: ['clusters'] }] };
  const policy = new Policy([proxyAll], [bind('everyone', 'proxy-all', { kind: 'Group', name: 'system:authenticated' })]);
  const a = `${TENANT_GROUP_PREFIX}team-a`;
  const b = `${TENANT_GROUP_PREFIX}team-b`;
  // [groups, cluster tenant, allowed]
  const table: Array<[string[], string | undefined, boolean]> = [
    [[], 'team-a', true], // no tenant group: RBAC alone decides
    [[], undefined, true],
    [[a], 'team-a', true],
    [[a], 'team-b', false], // RBAC grants proxy on every cluster, the tenant rule still refuses
    [[a], undefined, false], // a tenant-bound user does not reach untenanted clusters
    [[a, b], 'team-b', true],
    [[a, 'ops'], 'team-c', false],
    [[a, 'system:masters'], 'team-b', true], // masters bypass
    [['system:masters'], undefined, true],
  ];
  for (const [groups, tenant, allowed] of table) {
    it(`groups [${groups.join(', ')}] → cluster of tenant ${tenant ?? '(none)'}: ${allowed ? 'allowed' : 'refused'}`, function () {
      const decision = mayReach(policy, { user: 'u', groups }, 'c1', tenant);
      assert.equal(decision.allowed, allowed);
      if (!allowed) assert.match(decision.reason, /bound to tenant/);
    });
  }

  it('the tenant rule does not grant: RBAC must still allow proxy', function () {
    assert.equal(mayReach(new Policy([], []), { user: 'u', groups: [a] }, 'c1', 'team-a').allowed, false);
    assert.equal(mayReach(null, { user: 'u', groups: [a] }, 'c1', 'team-a').allowed, false);
  });

  it('reads tenants only from fedtunnel:tenant:<X> groups', function () {
    assert.deepEqual(tenantsOfGroups(['ops', a, 'fedtunnel:tenant:', 'x-fedtunnel:tenant:z', b]), ['team-a', 'team-b']);
  });
});

describe('kube-proxy: client-requested impersonation', function () {
  const roles: Role[] = [
    { name: 'imp-bob', rules: [{ verbs: ['impersonate'], apiGroups: [''], resources: ['users'], resourceNames: ['bob'] }] },
    { name: 'imp-viewers', rules: [{ verbs: ['impersonate'], apiGroups: [''], resources: ['groups'], resourceNames: ['viewers'] }] },
    { name: 'imp-extra', rules: [{ verbs: ['impersonate'], apiGroups: ['authentication.k8s.io'], resources: ['userextras/scopes', 'uids'] }] },
    { name: 'imp-sa', rules: [{ verbs: ['impersonate'], apiGroups: [''], resources: ['serviceaccounts'] }] },
  ];
  const policy = new Policy(roles, [
    bind('alice-bob', 'imp-bob', { kind: 'User', name: 'alice' }),
    bind('alice-viewers', 'imp-viewers', { kind: 'User', name: 'alice' }),
    bind('alice-extra', 'imp-extra', { kind: 'User', name: 'alice' }),
    { ...bind('alice-sa', 'imp-sa', { kind: 'User', name: 'alice' }), roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'imp-sa' }, namespace: 'ci' },
  ]);
  const alice = { user: 'alice', groups: ['ops'] };
  const forbidden = (raw: string[], pattern: RegExp): void =>
    assert.throws(() => effectiveIdentity(policy, alice, requestedImpersonation(raw)), (e: unknown) => e instanceof KubeProxyError && e.code === 403 && pattern.test(e.message));

  it('no Impersonate-* header: the caller as authenticated', function () {
    assert.deepEqual(effectiveIdentity(policy, alice, requestedImpersonation(['Accept', '*/*'])), { identity: alice });
  });

  it('grants what RBAC allows and the request runs as the impersonated identity', function () {
    const raw = ['Impersonate-User', 'bob', 'impersonate-group', 'viewers', 'Impersonate-Uid', '7', 'Impersonate-Extra-Scopes', 'read', 'IMPERSONATE-EXTRA-SCOPES', 'write'];
    assert.deepEqual(effectiveIdentity(policy, alice, requestedImpersonation(raw)), {
      identity: { user: 'bob', groups: ['viewers'], uid: '7', extra: { scopes: ['read', 'write'] } },
      impersonatedBy: 'alice',
    });
    assert.equal(effectiveIdentity(policy, alice, requestedImpersonation(['Impersonate-User', 'system:serviceaccount:ci:builder'])).identity.user, 'system:serviceaccount:ci:builder');
  });

  it('refuses with 403 naming the missing permission', function () {
    forbidden(['Impersonate-User', 'root'], /cannot impersonate resource "users" in API group ""/);
    forbidden(['Impersonate-User', 'bob', 'Impersonate-Group', 'system:masters'], /groups "system:masters" is forbidden/);
    forbidden(['Impersonate-User', 'bob', 'Impersonate-Extra-Team', 'x'], /userextras\/team/);
    forbidden(['Impersonate-User', 'system:serviceaccount:prod:builder'], /serviceaccounts "builder".*namespace "prod"/);
    assert.throws(() => effectiveIdentity(null, alice, requestedImpersonation(['Impersonate-User', 'bob'])), (e: unknown) => e instanceof KubeProxyError && e.code === 403);
  });

  it('system:masters may impersonate anyone', function () {
    assert.equal(effectiveIdentity(null, { user: 'root', groups: ['system:masters'] }, requestedImpersonation(['Impersonate-User', 'x'])).identity.user, 'x');
  });

  it('groups, uid or extras without a user, and duplicate users, are a 400', function () {
    for (const raw of [['Impersonate-Group', 'viewers'], ['Impersonate-Uid', '1'], ['Impersonate-Extra-A', 'b'], ['Impersonate-User', 'bob', 'impersonate-user', 'root'], ['Impersonate-Whatever', 'x']]) {
      assert.throws(() => requestedImpersonation(raw), (e: unknown) => e instanceof KubeProxyError && e.code === 400, raw.join(' '));
    }
  });
});
