// Unit tests of RBAC (pure): rule matching, binding scopes, subjects, aggregation, the default
// policy, object validation, the access reviews, and properties of the evaluator.
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { answerReview, SELF_SUBJECT_ACCESS_REVIEWS, SELF_SUBJECT_RULES_REVIEWS, SUBJECT_ACCESS_REVIEWS } from '../../../federation/apiserver/access-review.js';
import { ApiError } from '../../../federation/apiserver/errors.js';
import { escalationError } from '../../../federation/apiserver/rbac-escalation.js';
import { effectiveGroups, Policy, ruleAllows, uncoveredRules, type Attributes, type Binding, type PolicyRule, type Role, type Subject } from '../../../federation/apiserver/rbac.js';
import { CLUSTER_ROLE_BINDINGS, CLUSTER_ROLES, ROLE_BINDINGS, ROLES, toBinding, toRole, validateRbacObject } from '../../../federation/apiserver/rbac-api.js';
import { BOOTSTRAP_CLUSTER_ROLE_BINDINGS, BOOTSTRAP_CLUSTER_ROLES } from '../../../federation/apiserver/rbac-bootstrap.js';
import type { KubeObject } from '../../../federation/apiserver/storage.js';
import { validateObject } from '../../../federation/apiserver/validation.js';

const RBAC = 'rbac.authorization.k8s.io';
const user = (name: string, ...groups: string[]) => ({ user: name, groups: effectiveGroups(name, groups) });
const res = (who: { user: string; groups: string[] }, verb: string, resource: string, more: Partial<{ apiGroup: string; subresource: string; name: string; namespace: string }> = {}): Attributes => ({
  ...who,
  verb,
  apiGroup: '',
  resource,
  ...more,
});
const clusterRole = (name: string, rules: PolicyRule[]): Role => ({ name, rules });
const role = (namespace: string, name: string, rules: PolicyRule[]): Role => ({ name, namespace, rules });
const u = (name: string): Subject => ({ kind: 'User', name, apiGroup: RBAC });
const g = (name: string): Subject => ({ kind: 'Group', name, apiGroup: RBAC });
const crb = (name: string, roleName: string, ...subjects: Subject[]): Binding => ({ name, roleRef: { apiGroup: RBAC, kind: 'ClusterRole', name: roleName }, subjects });
const rb = (namespace: string, name: string, kind: 'Role' | 'ClusterRole', roleName: string, ...subjects: Subject[]): Binding => ({ name, namespace, roleRef: { apiGroup: RBAC, kind, name: roleName }, subjects });

/** The default policy (as the server writes it at start) plus extra roles and bindings. */
function defaults(roles: Role[] = [], bindings: Binding[] = []): Policy {
  return new Policy([...BOOTSTRAP_CLUSTER_ROLES.map(toRole), ...roles], [...BOOTSTRAP_CLUSTER_ROLE_BINDINGS.map(toBinding), ...bindings]);
}

describe('rbac: rule matching', function () {
  const alice = user('alice');
  const cases: Array<[string, PolicyRule, Attributes, boolean]> = [
    ['exact verb, group, resource', { verbs: ['get'], apiGroups: [''], resources: ['configmaps'] }, res(alice, 'get', 'configmaps'), true],
    ['other verb', { verbs: ['get'], apiGroups: [''], resources: ['configmaps'] }, res(alice, 'list', 'configmaps'), false],
    ['verb *', { verbs: ['*'], apiGroups: [''], resources: ['configmaps'] }, res(alice, 'delete', 'configmaps'), true],
    ['other group', { verbs: ['get'], apiGroups: ['apps'], resources: ['configmaps'] }, res(alice, 'get', 'configmaps'), false],
    ['group *', { verbs: ['get'], apiGroups: ['*'], resources: ['deployments'] }, res(alice, 'get', 'deployments', { apiGroup: 'apps' }), true],
    ['no apiGroups matches nothing', { verbs: ['get'], resources: ['configmaps'] }, res(alice, 'get', 'configmaps'), false],
    ['resource *', { verbs: ['get'], apiGroups: [''], resources: ['*'] }, res(alice, 'get', 'secrets'), true],
    ['resource * covers subresources', { verbs: ['get'], apiGroups: [''], resources: ['*'] }, res(alice, 'get', 'services', { subresource: 'status' }), true],
    ['resource does not cover its subresource', { verbs: ['get'], apiGroups: ['apps'], resources: ['deployments'] }, res(alice, 'get', 'deployments', { apiGroup: 'apps', subresource: 'status' }), false],
    ['resource/subresource', { verbs: ['get'], apiGroups: ['apps'], resources: ['deployments/status'] }, res(alice, 'get', 'deployments', { apiGroup: 'apps', subresource: 'status' }), true],
    ['resource/subresource is not the resource', { verbs: ['get'], apiGroups: ['apps'], resources: ['deployments/status'] }, res(alice, 'get', 'deployments', { apiGroup: 'apps' }), false],
    ['*/subresource', { verbs: ['update'], apiGroups: ['*'], resources: ['*/status'] }, res(alice, 'update', 'deployments', { apiGroup: 'apps', subresource: 'status' }), true],
    ['*/subresource is not the resource', { verbs: ['update'], apiGroups: ['*'], resources: ['*/status'] }, res(alice, 'update', 'deployments', { apiGroup: 'apps' }), false],
    ['resourceNames: the named one', { verbs: ['get'], apiGroups: [''], resources: ['configmaps'], resourceNames: ['a'] }, res(alice, 'get', 'configmaps', { name: 'a' }), true],
    ['resourceNames: another', { verbs: ['get'], apiGroups: [''], resources: ['configmaps'], resourceNames: ['a'] }, res(alice, 'get', 'configmaps', { name: 'b' }), false],
    ['resourceNames: no name (list, create)', { verbs: ['list'], apiGroups: [''], resources: ['configmaps'], resourceNames: ['a'] }, res(alice, 'list', 'configmaps'), false],
    ['resource rule vs a path', { verbs: ['get'], apiGroups: ['*'], resources: ['*'] }, { ...alice, verb: 'get', path: '/apis' }, false],
    ['nonResourceURLs exact', { verbs: ['get'], nonResourceURLs: ['/version'] }, { ...alice, verb: 'get', path: '/version' }, true],
    ['nonResourceURLs exact is not a prefix', { verbs: ['get'], nonResourceURLs: ['/api'] }, { ...alice, verb: 'get', path: '/apis' }, false],
    ['nonResourceURLs prefix*', { verbs: ['get'], nonResourceURLs: ['/apis/*'] }, { ...alice, verb: 'get', path: '/apis/apps/v1' }, true],
    ['nonResourceURLs *', { verbs: ['get'], nonResourceURLs: ['*'] }, { ...alice, verb: 'get', path: '/anything' }, true],
    ['nonResourceURLs vs a resource', { verbs: ['get'], nonResourceURLs: ['*'] }, res(alice, 'get', 'configmaps'), false],
    ['nonResourceURLs other verb', { verbs: ['get'], nonResourceURLs: ['/metrics'] }, { ...alice, verb: 'post', path: '/metrics' }, false],
  ];
  for (const [title, rule, attrs, allowed] of cases) {
    it(`${allowed ? 'allows' : 'denies'}: ${title}`, function () {
      assert.equal(ruleAllows(attrs, rule), allowed);
    });
  }
});

describe('rbac: bindings and subjects', function () {
  const cmRW: PolicyRule[] = [{ verbs: ['get', 'list', 'create'], apiGroups: [''], resources: ['configmaps'] }];
  const policy = new Policy(
    [role('retail', 'cm-rw', cmRW), clusterRole('cm-rw', cmRW), clusterRole('ns-read', [{ verbs: ['get', 'list'], apiGroups: [''], resources: ['namespaces'] }, { verbs: ['get'], nonResourceURLs: ['/metrics'] }])],
    [
      rb('retail', 'alice-role', 'Role', 'cm-rw', u('alice')),
      rb('payments', 'bob-cluster-role', 'ClusterRole', 'cm-rw', g('payments-devs')),
      rb('payments', 'carol-missing', 'Role', 'cm-rw', u('carol')),
      rb('retail', 'sa-no-ns', 'ClusterRole', 'cm-rw', { kind: 'ServiceAccount', name: 'deployer' }),
      rb('retail', 'rb-nonresource', 'ClusterRole', 'ns-read', u('dave')),
      crb('sa-elsewhere', 'ns-read', { kind: 'ServiceAccount', name: 'reader', namespace: 'ops' }),
      crb('all-sa', 'cm-rw', g('system:serviceaccounts:batch')),
    ],
  );
  const decide = (attrs: Attributes): boolean => policy.authorize(attrs).allowed;

  it('a RoleBinding to a Role grants in its namespace only, never at the cluster scope', function () {
    const alice = user('alice');
    assert.equal(decide(res(alice, 'create', 'configmaps', { namespace: 'retail' })), true);
    assert.equal(decide(res(alice, 'list', 'configmaps', { namespace: 'payments' })), false);
    assert.equal(decide(res(alice, 'list', 'configmaps')), false, 'a list across all namespaces is cluster-scoped');
    assert.equal(decide(res(alice, 'delete', 'configmaps', { namespace: 'retail', name: 'x' })), false, 'a verb the role does not have');
  });
  it('a RoleBinding to a ClusterRole grants its rules in the binding namespace', function () {
    const bob = user('bob', 'payments-devs');
    assert.equal(decide(res(bob, 'get', 'configmaps', { namespace: 'payments', name: 'a' })), true);
    assert.equal(decide(res(bob, 'get', 'configmaps', { namespace: 'retail', name: 'a' })), false);
    assert.equal(decide(res(user('bob'), 'get', 'configmaps', { namespace: 'payments', name: 'a' })), false, 'without the group');
  });
  it('a RoleBinding to a Role of another namespace (or a missing role) grants nothing', function () {
    assert.equal(decide(res(user('carol'), 'get', 'configmaps', { namespace: 'payments' })), false);
  });
  it('a RoleBinding never grants non-resource URLs or cluster-scoped resources, even through a ClusterRole that has them', function () {
    const dave = user('dave');
    assert.equal(decide({ ...dave, verb: 'get', path: '/metrics' }), false);
    assert.equal(decide(res(dave, 'list', 'namespaces')), false);
  });
  it('ServiceAccount subjects: the binding namespace by default, or the named one; service-account groups', function () {
    assert.equal(decide(res(user('system:serviceaccount:retail:deployer'), 'create', 'configmaps', { namespace: 'retail' })), true);
    assert.equal(decide(res(user('system:serviceaccount:payments:deployer'), 'create', 'configmaps', { namespace: 'retail' })), false);
    assert.equal(decide(res(user('system:serviceaccount:ops:reader'), 'list', 'namespaces')), true);
    assert.equal(decide(res(user('system:serviceaccount:batch:any'), 'list', 'configmaps', { namespace: 'x' })), true);
    assert.deepEqual(effectiveGroups('system:serviceaccount:batch:any', ['g']).sort(), ['g', 'system:authenticated', 'system:serviceaccounts', 'system:serviceaccounts:batch']);
    assert.deepEqual(effectiveGroups('system:serviceaccount:bad', []), ['system:authenticated'], 'not a service-account name');
  });
  it('system:masters is allowed everything without any object', function () {
    const empty = new Policy([], []);
    assert.equal(empty.authorize(res(user('root', 'system:masters'), 'delete', 'anything', { namespace: 'x' })).allowed, true);
    assert.equal(empty.authorize({ ...user('root', 'system:masters'), verb: 'get', path: '/metrics' }).allowed, true);
    assert.equal(empty.authorize(res(user('root'), 'get', 'configmaps')).allowed, false);
  });
  it('says which binding allowed a request', function () {
    assert.equal(policy.authorize(res(user('alice'), 'get', 'configmaps', { namespace: 'retail' })).reason, 'RBAC: allowed by RoleBinding "alice-role/retail" of Role "cm-rw" to User "alice"');
    assert.equal(policy.authorize(res(user('system:serviceaccount:ops:reader'), 'list', 'namespaces')).reason, 'RBAC: allowed by ClusterRoleBinding "sa-elsewhere" of ClusterRole "ns-read" to ServiceAccount "ops/reader"');
  });
});

describe('rbac: the default policy', function () {
  const alice = user('alice', 'ops');
  it('gives every authenticated user discovery, version and the self reviews, and nothing else', function () {
    const p = defaults();
    for (const path of ['/api', '/api/v1', '/apis', '/apis/apps/v1', '/openapi/v3', '/openapi/v2', '/version']) assert.equal(p.authorize({ ...alice, verb: 'get', path }).allowed, true, path);
    assert.equal(p.authorize({ ...alice, verb: 'get', path: '/metrics' }).allowed, false);
    assert.equal(p.authorize(res(alice, 'create', 'selfsubjectaccessreviews', { apiGroup: 'authorization.k8s.io' })).allowed, true);
    assert.equal(p.authorize(res(alice, 'create', 'subjectaccessreviews', { apiGroup: 'authorization.k8s.io' })).allowed, false);
    for (const r of ['configmaps', 'secrets', 'namespaces']) assert.equal(p.authorize(res(alice, 'list', r, { namespace: r === 'namespaces' ? undefined : 'default' })).allowed, false, r);
    assert.equal(p.authorize(res(user('prom', 'system:monitoring'), 'get', 'x')).allowed, false);
    assert.equal(p.authorize({ ...user('prom', 'system:monitoring'), verb: 'get', path: '/metrics' }).allowed, true);
  });
  it('view reads all but Secrets; edit also writes and reads Secrets; admin also manages Roles and RoleBindings (aggregated)', function () {
    const p = defaults([], [rb('retail', 'v', 'ClusterRole', 'view', u('viewer')), rb('retail', 'e', 'ClusterRole', 'edit', u('editor')), rb('retail', 'a', 'ClusterRole', 'admin', u('admin'))]);
    const can = (who: string, verb: string, resource: string, apiGroup = ''): boolean => p.authorize(res(user(who), verb, resource, { namespace: 'retail', apiGroup })).allowed;
    assert.equal(can('viewer', 'list', 'configmaps'), true);
    assert.equal(can('viewer', 'watch', 'deployments', 'apps'), true);
    assert.equal(can('viewer', 'get', 'federatedconfigmaps', 'types.kubefed.io'), true);
    assert.equal(can('viewer', 'get', 'secrets'), false);
    assert.equal(can('viewer', 'create', 'configmaps'), false);
    assert.equal(can('editor', 'create', 'configmaps'), true);
    assert.equal(can('editor', 'get', 'secrets'), true);
    assert.equal(can('editor', 'list', 'configmaps'), true, 'edit aggregates view');
    assert.equal(can('editor', 'create', 'rolebindings', RBAC), false);
    assert.equal(can('admin', 'create', 'rolebindings', RBAC), true);
    assert.equal(can('admin', 'list', 'configmaps'), true, 'admin aggregates edit, which aggregates view');
    assert.equal(p.authorize(res(user('admin'), 'list', 'configmaps', { namespace: 'payments' })).allowed, false);
  });
  it('aggregation follows labels, survives a cycle, and a new labelled ClusterRole joins view', function () {
    const labelled = (name: string, rules: PolicyRule[], labels: Record<string, string>, selects?: string): Role => ({ name, rules, labels, ...(selects ? { aggregate: [[{ key: selects, op: '=', value: 'true' }]] } : {}) });
    const p = new Policy(
      [
        labelled('a', [{ verbs: ['get'], apiGroups: [''], resources: ['a'] }], { 'to-b': 'true' }, 'to-a'),
        labelled('b', [{ verbs: ['get'], apiGroups: [''], resources: ['b'] }], { 'to-a': 'true' }, 'to-b'),
      ],
      [crb('x', 'a', u('u'))],
    );
    assert.equal(p.authorize(res(user('u'), 'get', 'b')).allowed, true);
    assert.equal(p.authorize(res(user('u'), 'get', 'a')).allowed, true);
    const withWidgets = defaults([{ name: 'widgets-view', rules: [{ verbs: ['get'], apiGroups: ['example.com'], resources: ['widgets'] }], labels: { [`${RBAC}/aggregate-to-view`]: 'true' } }], [crb('v', 'view', u('viewer'))]);
    assert.equal(withWidgets.authorize(res(user('viewer'), 'get', 'widgets', { apiGroup: 'example.com', namespace: 'n' })).allowed, true);
  });
  it('lists the rules of a user in a namespace (SelfSubjectRulesReview)', function () {
    const p = defaults([role('retail', 'r', [{ verbs: ['get'], apiGroups: [''], resources: ['pods'] }])], [rb('retail', 'rb', 'Role', 'r', u('alice'))]);
    const inRetail = p.rulesFor('alice', effectiveGroups('alice', []), 'retail');
    assert.ok(inRetail.some((r) => r.resources?.includes('pods')));
    assert.ok(inRetail.some((r) => r.nonResourceURLs?.includes('/api')));
    assert.ok(!p.rulesFor('alice', effectiveGroups('alice', []), 'payments').some((r) => r.resources?.includes('pods')));
  });
});

describe('rbac: properties', function () {
  const verbs = fc.constantFrom('get', 'list', 'create', 'delete', '*');
  const names = fc.constantFrom('a', 'b', '*');
  const ruleArb = fc.record({ verbs: fc.array(verbs, { minLength: 1, maxLength: 2 }), apiGroups: fc.array(fc.constantFrom('', 'apps', '*'), { minLength: 1, maxLength: 2 }), resources: fc.array(fc.constantFrom('configmaps', 'deployments', 'deployments/status', '*', '*/status'), { minLength: 1, maxLength: 2 }) });
  const namespaceArb = fc.constantFrom('retail', 'payments', undefined);
  const bindingArb = fc.record({ namespace: namespaceArb, role: names, subject: fc.constantFrom(u('alice'), g('devs'), g('system:authenticated'), u('bob')) });
  const policyArb = fc.record({ roles: fc.array(fc.record({ name: names, rules: fc.array(ruleArb, { maxLength: 3 }) }), { maxLength: 3 }), bindings: fc.array(bindingArb, { maxLength: 4 }) });
  const attrsArb = fc.record({ verb: fc.constantFrom('get', 'list', 'create', 'delete'), apiGroup: fc.constantFrom('', 'apps'), resource: fc.constantFrom('configmaps', 'deployments'), subresource: fc.constantFrom(undefined, 'status'), namespace: namespaceArb, who: fc.constantFrom(user('alice'), user('bob', 'devs'), user('carol')) });
  const build = (p: { roles: Array<{ name: string; rules: PolicyRule[] }>; bindings: Array<{ namespace?: string; role: string; subject: Subject }> }, extra: Binding[] = []): Policy =>
    new Policy(
      p.roles.map((r) => ({ name: r.name, rules: r.rules })),
      [...p.bindings.map((b, i) => (b.namespace ? rb(b.namespace, `b${i}`, 'ClusterRole', b.role, b.subject) : crb(`b${i}`, b.role, b.subject))), ...extra],
    );
  const attrsOf = (a: { verb: string; apiGroup: string; resource: string; subresource?: string; namespace?: string; who: { user: string; groups: string[] } }): Attributes => res(a.who, a.verb, a.resource, { apiGroup: a.apiGroup, ...(a.subresource ? { subresource: a.subresource } : {}), ...(a.namespace ? { namespace: a.namespace } : {}) });

  it('adding a binding never takes a permission away (RBAC is purely additive)', function () {
    fc.assert(
      fc.property(policyArb, bindingArb, attrsArb, (p, extra, a) => {
        const before = build(p).authorize(attrsOf(a)).allowed;
        const extraBinding = extra.namespace ? rb(extra.namespace, 'extra', 'ClusterRole', extra.role, extra.subject) : crb('extra', extra.role, extra.subject);
        return !before || build(p, [extraBinding]).authorize(attrsOf(a)).allowed;
      }),
      { numRuns: 500 },
    );
  });
  it('only ClusterRoleBindings and RoleBindings of the request namespace can allow it', function () {
    fc.assert(
      fc.property(policyArb, attrsArb, (p, a) => {
        const attrs = attrsOf(a);
        const relevant = { ...p, bindings: p.bindings.filter((b) => b.namespace === undefined || b.namespace === a.namespace) };
        return build(p).authorize(attrs).allowed === build(relevant).authorize(attrs).allowed;
      }),
      { numRuns: 500 },
    );
  });
  it('the decision is the same whatever the order of roles and bindings', function () {
    fc.assert(
      fc.property(policyArb, attrsArb, (p, a) => {
        const reversed = { roles: [...p.roles].reverse(), bindings: [...p.bindings].reverse() };
        // Duplicate role names: the last one wins in both orders only if unique; keep unique names.
        const unique = { ...p, roles: p.roles.filter((r, i) => p.roles.findIndex((x) => x.name === r.name) === i) };
        const uniqueReversed = { ...reversed, roles: [...unique.roles].reverse() };
        return build(unique).authorize(attrsOf(a)).allowed === build(uniqueReversed).authorize(attrsOf(a)).allowed;
      }),
      { numRuns: 300 },
    );
  });
});

describe('rbac: escalation prevention', function () {
  it('uncoveredRules: what is held covers what is wanted, a wanted "*" only by a held "*"', function () {
    const held: PolicyRule[] = [{ verbs: ['get', 'list'], apiGroups: [''], resources: ['configmaps', '*/status'] }, { verbs: ['get'], nonResourceURLs: ['/apis/*'] }];
    assert.deepEqual(uncoveredRules(held, [{ verbs: ['get'], apiGroups: [''], resources: ['configmaps'], resourceNames: ['a'] }]), []);
    assert.deepEqual(uncoveredRules(held, [{ verbs: ['get'], apiGroups: [''], resources: ['services/status'] }]), []);
    assert.deepEqual(uncoveredRules(held, [{ verbs: ['get'], nonResourceURLs: ['/apis/apps'] }]), []);
    assert.deepEqual(uncoveredRules(held, [{ verbs: ['get', 'delete'], apiGroups: [''], resources: ['configmaps'] }]), [{ verbs: ['delete'], apiGroups: [''], resources: ['configmaps'] }]);
    assert.deepEqual(uncoveredRules(held, [{ verbs: ['*'], apiGroups: [''], resources: ['configmaps'] }]), [{ verbs: ['*'], apiGroups: [''], resources: ['configmaps'] }]);
    assert.deepEqual(uncoveredRules(held, [{ verbs: ['get'], apiGroups: [''], resources: ['*'] }]), [{ verbs: ['get'], apiGroups: [''], resources: ['*'] }]);
    assert.deepEqual(uncoveredRules(held, [{ verbs: ['get'], nonResourceURLs: ['/metrics'] }]), [{ verbs: ['get'], nonResourceURLs: ['/metrics'] }]);
  });
  it('uncoveredRules: every rule covers itself (property)', function () {
    const rule = fc.record({ verbs: fc.array(fc.constantFrom('get', 'list', '*'), { minLength: 1, maxLength: 2 }), apiGroups: fc.array(fc.constantFrom('', 'apps', '*'), { minLength: 1, maxLength: 2 }), resources: fc.array(fc.constantFrom('configmaps', 'deployments/status', '*', '*/status'), { minLength: 1, maxLength: 2 }), resourceNames: fc.array(fc.constantFrom('a', 'b'), { maxLength: 2 }) });
    fc.assert(fc.property(fc.array(rule, { minLength: 1, maxLength: 3 }), (rules) => uncoveredRules(rules, rules).length === 0), { numRuns: 300 });
  });
  const policy = defaults([], [rb('retail', 'a', 'ClusterRole', 'admin', u('alice')), rb('retail', 'e', 'ClusterRole', 'edit', u('bob'))]);
  const view = { authorize: policy.authorize.bind(policy), rulesFor: policy.rulesFor.bind(policy), roleRules: policy.roleRules.bind(policy) };
  const binding = (kind: 'RoleBinding' | 'ClusterRoleBinding', roleKind: string, roleName: string, namespace?: string): KubeObject => ({
    apiVersion: `${RBAC}/v1`, kind, metadata: { name: 'b', ...(namespace ? { namespace } : {}) }, roleRef: { apiGroup: RBAC, kind: roleKind, name: roleName }, subjects: [{ kind: 'User', name: 'mallory', apiGroup: RBAC }],
  });
  it('an admin of a namespace may bind edit and view there, not cluster-admin, not elsewhere, not a missing role', function () {
    const alice = user('alice');
    assert.equal(escalationError(view, alice, ROLE_BINDINGS, binding('RoleBinding', 'ClusterRole', 'edit', 'retail')), null);
    assert.equal(escalationError(view, alice, ROLE_BINDINGS, binding('RoleBinding', 'ClusterRole', 'view', 'retail')), null);
    const toAdmin = escalationError(view, alice, ROLE_BINDINGS, binding('RoleBinding', 'ClusterRole', 'cluster-admin', 'retail'));
    assert.equal(toAdmin?.code, 403);
    assert.match(toAdmin!.message, /^rolebindings.rbac.authorization.k8s.io "b" is forbidden: user "alice" .* is attempting to grant RBAC permissions not currently held:\n\{APIGroups:\["\*"\]/);
    assert.equal(escalationError(view, alice, ROLE_BINDINGS, binding('RoleBinding', 'ClusterRole', 'edit', 'payments'))?.code, 403);
    assert.equal(escalationError(view, alice, CLUSTER_ROLE_BINDINGS, binding('ClusterRoleBinding', 'ClusterRole', 'view'))?.code, 403, 'view everywhere is more than view in retail');
    assert.match(escalationError(view, alice, ROLE_BINDINGS, binding('RoleBinding', 'Role', 'later', 'retail'))!.message, /does not exist/);
    assert.equal(escalationError(view, user('root', 'system:masters'), CLUSTER_ROLE_BINDINGS, binding('ClusterRoleBinding', 'ClusterRole', 'cluster-admin')), null);
  });
  it('a Role may hold only rules its writer holds in that namespace; an aggregationRule needs escalate', function () {
    const roleObj = (rules: PolicyRule[], namespace = 'retail'): KubeObject => ({ apiVersion: `${RBAC}/v1`, kind: 'Role', metadata: { name: 'r', namespace }, rules });
    assert.equal(escalationError(view, user('bob'), ROLES, roleObj([{ verbs: ['get', 'create'], apiGroups: [''], resources: ['configmaps'] }])), null);
    assert.equal(escalationError(view, user('bob'), ROLES, roleObj([{ verbs: ['get'], apiGroups: [''], resources: ['nodes'] }]))?.code, 403);
    assert.equal(escalationError(view, user('bob'), ROLES, roleObj([{ verbs: ['get'], apiGroups: [''], resources: ['configmaps'] }], 'payments'))?.code, 403);
    const aggregating: KubeObject = { apiVersion: `${RBAC}/v1`, kind: 'ClusterRole', metadata: { name: 'sneaky' }, aggregationRule: { clusterRoleSelectors: [{ matchLabels: { 'kubernetes.io/bootstrapping': 'rbac-defaults' } }] }, rules: [] };
    assert.match(escalationError(view, user('alice'), CLUSTER_ROLES, aggregating)!.message, /escalate verb/);
  });
});

describe('rbac: object validation', function () {
  const obj = (kind: string, body: Record<string, unknown>, name = 'x', namespace?: string): KubeObject => ({ apiVersion: `${RBAC}/v1`, kind, metadata: { name, ...(namespace ? { namespace } : {}) }, ...body });
  const fields = (t: typeof ROLES, o: KubeObject): string[] => [...validateObject(t, o), ...validateRbacObject(t, o)].map((e) => e.field);
  it('accepts kube-style names with colons and refuses / and %', function () {
    assert.deepEqual(fields(CLUSTER_ROLES, obj('ClusterRole', { rules: [] }, 'system:discovery')), []);
    assert.deepEqual(fields(CLUSTER_ROLES, obj('ClusterRole', {}, 'a/b')), ['metadata.name']);
    assert.deepEqual(fields(CLUSTER_ROLES, obj('ClusterRole', {}, '..')), ['metadata.name']);
  });
  const cases: Array<[string, typeof ROLES, Record<string, unknown>, string[]]> = [
    ['a valid Role', ROLES, { rules: [{ verbs: ['get'], apiGroups: [''], resources: ['configmaps'] }] }, []],
    ['rules not a list', ROLES, { rules: {} }, ['rules']],
    ['a rule without verbs', ROLES, { rules: [{ apiGroups: [''], resources: ['configmaps'] }] }, ['rules[0].verbs']],
    ['a rule without apiGroups or resources', ROLES, { rules: [{ verbs: ['get'] }] }, ['rules[0].apiGroups', 'rules[0].resources']],
    ['verbs not strings', ROLES, { rules: [{ verbs: [1], apiGroups: [''], resources: ['x'] }] }, ['rules[0].verbs', 'rules[0].verbs']],
    ['nonResourceURLs in a Role', ROLES, { rules: [{ verbs: ['get'], nonResourceURLs: ['/x'] }] }, ['rules[0].nonResourceURLs']],
    ['nonResourceURLs in a ClusterRole', CLUSTER_ROLES, { rules: [{ verbs: ['get'], nonResourceURLs: ['/x', '/y/*'] }] }, []],
    ['nonResourceURLs with resources', CLUSTER_ROLES, { rules: [{ verbs: ['get'], nonResourceURLs: ['/x'], resources: ['a'] }] }, ['rules[0].nonResourceURLs']],
    ['a relative nonResourceURL', CLUSTER_ROLES, { rules: [{ verbs: ['get'], nonResourceURLs: ['x'] }] }, ['rules[0].nonResourceURLs']],
    ['a bad aggregationRule', CLUSTER_ROLES, { aggregationRule: { clusterRoleSelectors: [{ matchExpressions: [{ key: 'k', operator: 'Bogus' }] }] } }, ['aggregationRule.clusterRoleSelectors[0].matchExpressions[0].operator']],
    ['a valid RoleBinding', ROLE_BINDINGS, { roleRef: { apiGroup: RBAC, kind: 'Role', name: 'r' }, subjects: [{ kind: 'User', name: 'alice', apiGroup: RBAC }, { kind: 'ServiceAccount', name: 'sa' }] }, []],
    ['a binding without roleRef', ROLE_BINDINGS, {}, ['roleRef']],
    ['a roleRef of another group', ROLE_BINDINGS, { roleRef: { apiGroup: 'x', kind: 'Role', name: 'r' } }, ['roleRef.apiGroup']],
    ['a ClusterRoleBinding to a Role', CLUSTER_ROLE_BINDINGS, { roleRef: { apiGroup: RBAC, kind: 'Role', name: 'r' } }, ['roleRef.kind']],
    ['a roleRef without name', ROLE_BINDINGS, { roleRef: { apiGroup: RBAC, kind: 'ClusterRole' } }, ['roleRef.name']],
    ['a subject of an unknown kind', ROLE_BINDINGS, { roleRef: { apiGroup: RBAC, kind: 'Role', name: 'r' }, subjects: [{ kind: 'Robot', name: 'r2' }] }, ['subjects[0].kind']],
    ['a subject without name', ROLE_BINDINGS, { roleRef: { apiGroup: RBAC, kind: 'Role', name: 'r' }, subjects: [{ kind: 'User' }] }, ['subjects[0].name']],
    ['a ServiceAccount without namespace in a ClusterRoleBinding', CLUSTER_ROLE_BINDINGS, { roleRef: { apiGroup: RBAC, kind: 'ClusterRole', name: 'r' }, subjects: [{ kind: 'ServiceAccount', name: 'sa' }] }, ['subjects[0].namespace']],
    ['a User of another apiGroup', CLUSTER_ROLE_BINDINGS, { roleRef: { apiGroup: RBAC, kind: 'ClusterRole', name: 'r' }, subjects: [{ kind: 'User', name: 'u', apiGroup: 'v1' }] }, ['subjects[0].apiGroup']],
  ];
  for (const [title, t, body, expected] of cases) {
    it(`${expected.length === 0 ? 'accepts' : 'refuses'} ${title}`, function () {
      assert.deepEqual(fields(t, obj(t.kind, body, 'x', t.namespaced ? 'n' : undefined)), expected);
    });
  }
  it('every default object is valid', function () {
    for (const o of BOOTSTRAP_CLUSTER_ROLES) assert.deepEqual(fields(CLUSTER_ROLES, o), [], o.metadata.name);
    for (const o of BOOTSTRAP_CLUSTER_ROLE_BINDINGS) assert.deepEqual(fields(CLUSTER_ROLE_BINDINGS, o), [], o.metadata.name);
  });
});

describe('rbac: access reviews', function () {
  const policy = defaults([], [rb('retail', 'e', 'ClusterRole', 'edit', u('alice'))]);
  const rbac = { authorize: policy.authorize.bind(policy), rulesFor: policy.rulesFor.bind(policy) };
  const alice = user('alice');
  const status = (o: Record<string, unknown>) => o.status as { allowed?: boolean; reason?: string; resourceRules?: PolicyRule[]; nonResourceRules?: PolicyRule[] };
  it('SelfSubjectAccessReview answers for the caller', function () {
    const ask = (ra: Record<string, string>) => status(answerReview(SELF_SUBJECT_ACCESS_REVIEWS, { spec: { resourceAttributes: ra } }, alice, rbac)).allowed;
    assert.equal(ask({ verb: 'create', resource: 'configmaps', namespace: 'retail' }), true);
    assert.equal(ask({ verb: 'create', resource: 'configmaps', namespace: 'payments' }), false);
    assert.equal(ask({ verb: 'list', resource: 'namespaces' }), false);
    assert.equal(status(answerReview(SELF_SUBJECT_ACCESS_REVIEWS, { spec: { nonResourceAttributes: { verb: 'get', path: '/apis' } } }, alice, rbac)).allowed, true);
  });
  it('SubjectAccessReview answers for the named user and exactly the groups named', function () {
    const review = (spec: Record<string, unknown>) => status(answerReview(SUBJECT_ACCESS_REVIEWS, { apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec }, user('root', 'system:masters'), rbac));
    assert.equal(review({ user: 'alice', resourceAttributes: { verb: 'get', resource: 'secrets', namespace: 'retail' } }).allowed, true);
    assert.equal(review({ user: 'bob', resourceAttributes: { verb: 'get', resource: 'secrets', namespace: 'retail' } }).allowed, false);
    assert.equal(review({ user: 'bob', nonResourceAttributes: { verb: 'get', path: '/api' } }).allowed, false, 'without system:authenticated');
    assert.equal(review({ user: 'bob', groups: ['system:authenticated'], nonResourceAttributes: { verb: 'get', path: '/api' } }).allowed, true);
  });
  it('SelfSubjectRulesReview lists resource and non-resource rules', function () {
    const s = status(answerReview(SELF_SUBJECT_RULES_REVIEWS, { spec: { namespace: 'retail' } }, alice, rbac));
    assert.ok(s.resourceRules!.some((r) => r.resources!.includes('configmaps') && r.verbs.includes('create')));
    assert.ok(s.nonResourceRules!.some((r) => r.nonResourceURLs!.includes('/apis')));
  });
  it('refuses malformed reviews with 422 or 400', function () {
    const code = (t: typeof SUBJECT_ACCESS_REVIEWS, body: unknown): number => {
      try {
        answerReview(t, body, alice, rbac);
        return 0;
      } catch (err) {
        assert.ok(err instanceof ApiError);
        return err.code;
      }
    };
    assert.equal(code(SELF_SUBJECT_ACCESS_REVIEWS, { spec: {} }), 422);
    assert.equal(code(SELF_SUBJECT_ACCESS_REVIEWS, { spec: { resourceAttributes: { verb: 'get' }, nonResourceAttributes: { verb: 'get', path: '/' } } }), 422);
    assert.equal(code(SELF_SUBJECT_ACCESS_REVIEWS, { spec: { resourceAttributes: { resource: 'x' } } }), 422);
    assert.equal(code(SUBJECT_ACCESS_REVIEWS, { spec: { resourceAttributes: { verb: 'get' } } }), 422);
    assert.equal(code(SELF_SUBJECT_RULES_REVIEWS, { spec: {} }), 422);
    assert.equal(code(SELF_SUBJECT_ACCESS_REVIEWS, 'x'), 400);
    assert.equal(code(SELF_SUBJECT_ACCESS_REVIEWS, { kind: 'Pod' }), 400);
  });
});
