// Unit tests of impersonation (pure): header parsing as kube-apiserver reads Impersonate-* (any
// case, one group a line, extras %-decoded), the RBAC questions it asks, and the identity a request
// then runs as.
import { strict as assert } from 'node:assert';
import { answerReview, SELF_SUBJECT_ACCESS_REVIEWS, SELF_SUBJECT_REVIEWS } from '../../../federation/apiserver/access-review.js';
import { ApiError } from '../../../federation/apiserver/errors.js';
import { decideImpersonation, ImpersonationForbidden, impersonatedUser, impersonationChecks, parseImpersonation } from '../../../federation/apiserver/impersonation.js';
import { Policy, type Binding, type Role } from '../../../federation/apiserver/rbac.js';

const hub = { user: 'hub', groups: ['system:authenticated'] };

function badRequest(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof ApiError && err.code === 400 && err.reason === 'BadRequest' && message.test(err.message));
}

describe('apiserver: impersonation headers (parse)', function () {
  it('no Impersonate-* header (or an empty user alone) is no impersonation', function () {
    assert.equal(parseImpersonation(['Host', 'x', 'Authorization', 'Bearer t']), null);
    assert.equal(parseImpersonation(['Impersonate-User', '']), null);
    assert.equal(parseImpersonation(['X-Impersonate-User', 'bob']), null);
  });

  it('reads every case variant of the header names', function () {
    for (const name of ['Impersonate-User', 'impersonate-user', 'IMPERSONATE-USER', 'iMpErSoNaTe-UsEr']) {
      assert.deepEqual(parseImpersonation([name, 'bob', 'impersonate-GROUP', 'g1']), { user: 'bob', groups: ['g1'], groupsSpecified: true, extra: {} }, name);
    }
  });

  it('one group per Impersonate-Group line, in order; a comma stays inside the group name', function () {
    const r = parseImpersonation(['Impersonate-User', 'bob', 'Impersonate-Group', 'a', 'impersonate-group', 'b,c', 'IMPERSONATE-GROUP', 'a'])!;
    assert.deepEqual(r.groups, ['a', 'b,c', 'a']);
  });

  it('uid and extras: keys lower-cased and %-decoded, values repeatable; a malformed escape is kept as sent', function () {
    const r = parseImpersonation([
      'Impersonate-User', 'bob',
      'Impersonate-Uid', 'u-1',
      'Impersonate-Extra-Scopes', 'view',
      'impersonate-extra-scopes', 'edit',
      'Impersonate-Extra-Example.com%2fTeam', 'blue',
      'Impersonate-Extra-Bad%zz', 'x',
    ])!;
    assert.equal(r.uid, 'u-1');
    assert.deepEqual(r.extra, { scopes: ['view', 'edit'], 'example.com/team': ['blue'], 'bad%zz': ['x'] });
  });

  it('400 for two users or two uids, in any case mix', function () {
    badRequest(() => parseImpersonation(['Impersonate-User', 'bob', 'impersonate-user', 'admin']), /2 Impersonate-User headers/);
    badRequest(() => parseImpersonation(['Impersonate-User', 'bob', 'Impersonate-User', '']), /2 Impersonate-User headers/);
    badRequest(() => parseImpersonation(['Impersonate-User', 'bob', 'Impersonate-Uid', '1', 'IMPERSONATE-UID', '2']), /2 Impersonate-Uid headers/);
  });

  it('400 for groups, uid or extras without a user', function () {
    badRequest(() => parseImpersonation(['Impersonate-Group', 'system:masters']), /without impersonating a user/);
    badRequest(() => parseImpersonation(['Impersonate-User', '', 'Impersonate-Group', 'system:masters']), /without impersonating a user/);
    badRequest(() => parseImpersonation(['Impersonate-Uid', '1']), /without impersonating a user/);
    badRequest(() => parseImpersonation(['Impersonate-Extra-Scopes', 'x']), /without impersonating a user/);
  });
});

describe('apiserver: impersonation checks and identity', function () {
  it('asks impersonate on users, groups, userextras/<key> and uids, in kube API groups', function () {
    const wanted = parseImpersonation(['Impersonate-User', 'bob', 'Impersonate-Group', 'dev', 'Impersonate-Extra-Scopes', 'view', 'Impersonate-Uid', 'u-1'])!;
    const checks = impersonationChecks(hub, wanted).map(({ verb, apiGroup, resource, subresource, name, namespace }) => ({ verb, apiGroup, resource, subresource, name, namespace }));
    assert.deepEqual(checks, [
      { verb: 'impersonate', apiGroup: '', resource: 'users', subresource: undefined, name: 'bob', namespace: undefined },
      { verb: 'impersonate', apiGroup: '', resource: 'groups', subresource: undefined, name: 'dev', namespace: undefined },
      { verb: 'impersonate', apiGroup: 'authentication.k8s.io', resource: 'userextras', subresource: 'scopes', name: 'view', namespace: undefined },
      { verb: 'impersonate', apiGroup: 'authentication.k8s.io', resource: 'uids', subresource: undefined, name: 'u-1', namespace: undefined },
    ]);
  });

  it('a service-account user is checked as serviceaccounts in its namespace and gets its fixed groups unless groups are given', function () {
    const wanted = parseImpersonation(['Impersonate-User', 'system:serviceaccount:apps:builder'])!;
    const [check] = impersonationChecks(hub, wanted);
    assert.deepEqual({ resource: check!.resource, namespace: check!.namespace, name: check!.name }, { resource: 'serviceaccounts', namespace: 'apps', name: 'builder' });
    assert.deepEqual(impersonatedUser(wanted).groups, ['system:serviceaccounts', 'system:serviceaccounts:apps', 'system:authenticated']);
    assert.deepEqual(impersonatedUser(parseImpersonation(['Impersonate-User', 'system:serviceaccount:apps:builder', 'Impersonate-Group', 'x'])!).groups, ['x', 'system:authenticated']);
  });

  it('system:authenticated is added once, not when (un)authenticated is given; system:anonymous gets system:unauthenticated', function () {
    const groupsOf = (...h: string[]) => impersonatedUser(parseImpersonation(h)!).groups;
    assert.deepEqual(groupsOf('Impersonate-User', 'bob'), ['system:authenticated']);
    assert.deepEqual(groupsOf('Impersonate-User', 'bob', 'Impersonate-Group', 'system:authenticated', 'Impersonate-Group', 'a'), ['system:authenticated', 'a']);
    assert.deepEqual(groupsOf('Impersonate-User', 'bob', 'Impersonate-Group', 'system:unauthenticated'), ['system:unauthenticated']);
    assert.deepEqual(groupsOf('Impersonate-User', 'system:anonymous'), ['system:unauthenticated']);
    const full = impersonatedUser(parseImpersonation(['Impersonate-User', 'bob', 'Impersonate-Uid', 'u', 'Impersonate-Extra-K', 'v'])!);
    assert.deepEqual(full, { user: 'bob', groups: ['system:authenticated'], uid: 'u', extra: { k: ['v'] } });
  });

  describe('decide with RBAC', function () {
    const roles: Role[] = [
      { name: 'impersonate-bob', rules: [{ verbs: ['impersonate'], apiGroups: [''], resources: ['users'], resourceNames: ['bob'] }, { verbs: ['impersonate'], apiGroups: [''], resources: ['groups'], resourceNames: ['dev'] }] },
      { name: 'impersonate-extras', rules: [{ verbs: ['impersonate'], apiGroups: ['authentication.k8s.io'], resources: ['userextras/scopes', 'uids'] }] },
    ];
    const bindings: Binding[] = [
      { name: 'hub-bob', roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'impersonate-bob' }, subjects: [{ kind: 'User', name: 'hub' }] },
      { name: 'hub-extras', roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'impersonate-extras' }, subjects: [{ kind: 'User', name: 'hub' }] },
    ];
    const policy = new Policy(roles, bindings);

    it('allowed: the request runs as the impersonated identity', function () {
      const as = decideImpersonation(['Impersonate-User', 'bob', 'Impersonate-Group', 'dev', 'Impersonate-Extra-Scopes', 's', 'Impersonate-Uid', '7'], hub, policy);
      assert.deepEqual(as, { user: 'bob', groups: ['dev', 'system:authenticated'], uid: '7', extra: { scopes: ['s'] } });
      assert.equal(decideImpersonation([], hub, policy), null);
    });

    it('denied: 403 with kube\'s message naming the first thing denied', function () {
      const forbidden = (h: string[], who: typeof hub, message: string): void =>
        assert.throws(() => decideImpersonation(h, who, policy), (err: unknown) => err instanceof ImpersonationForbidden && err.code === 403 && err.message === message);
      forbidden(['Impersonate-User', 'admin'], hub, 'users "admin" is forbidden: User "hub" cannot impersonate resource "users" in API group "" at the cluster scope');
      forbidden(['Impersonate-User', 'bob'], { user: 'alice', groups: ['system:authenticated'] }, 'users "bob" is forbidden: User "alice" cannot impersonate resource "users" in API group "" at the cluster scope');
      forbidden(['Impersonate-User', 'bob', 'Impersonate-Group', 'dev', 'Impersonate-Group', 'system:masters'], hub, 'groups "system:masters" is forbidden: User "hub" cannot impersonate resource "groups" in API group "" at the cluster scope');
      forbidden(['Impersonate-User', 'bob', 'Impersonate-Extra-Team', 'x'], hub, 'userextras.authentication.k8s.io "x" is forbidden: User "hub" cannot impersonate resource "userextras/team" in API group "authentication.k8s.io" at the cluster scope');
      forbidden(['Impersonate-User', 'system:serviceaccount:kube-system:default'], hub, 'serviceaccounts "default" is forbidden: User "hub" cannot impersonate resource "serviceaccounts" in API group "" in the namespace "kube-system"');
    });

    it('access reviews answer for the impersonated identity (SelfSubjectReview: username, uid, groups, extra)', function () {
      const as = decideImpersonation(['Impersonate-User', 'bob', 'Impersonate-Group', 'dev', 'Impersonate-Uid', '7', 'Impersonate-Extra-Scopes', 's'], hub, policy)!;
      const who = answerReview(SELF_SUBJECT_REVIEWS, { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' }, as, policy);
      assert.deepEqual(who, { kind: 'SelfSubjectReview', apiVersion: 'authentication.k8s.io/v1', metadata: { creationTimestamp: null }, status: { userInfo: { username: 'bob', uid: '7', groups: ['dev', 'system:authenticated'], extra: { scopes: ['s'] } } } });
      const ssar = { spec: { resourceAttributes: { verb: 'impersonate', resource: 'users', name: 'bob' } } };
      assert.equal((answerReview(SELF_SUBJECT_ACCESS_REVIEWS, ssar, hub, policy).status as { allowed: boolean }).allowed, true, 'hub may');
      assert.equal((answerReview(SELF_SUBJECT_ACCESS_REVIEWS, ssar, as, policy).status as { allowed: boolean }).allowed, false, 'bob may not');
    });

    it('system:masters may impersonate anyone (as in kube)', function () {
      assert.equal(decideImpersonation(['Impersonate-User', 'root'], { user: 'admin', groups: ['system:masters'] }, policy)!.user, 'root');
    });
  });
});
