// Escalation prevention (pure), as kube's RBAC storage does it: a user may write a Role or
// ClusterRole only with rules it already holds where the role applies (or with the `escalate`
// verb on it), and may bind a role only if it holds every rule of that role where the binding
// applies (or has the `bind` verb on that role). Without this, `admin` in one namespace could
// grant itself anything there, or a RoleBinding could reach a ClusterRole created later.
import type { UserInfo } from './authz.js';
import { ApiError } from './errors.js';
import { MASTERS_GROUP, RBAC_GROUP, uncoveredRules, type Authorizer, type PolicyRule, type RoleRef } from './rbac.js';
import { toBinding, toRole } from './rbac-api.js';
import type { KubeObject } from './storage.js';
import type { ResourceType } from './types.js';

/** What the check reads from the current policy. */
export interface EscalationPolicy extends Authorizer {
  rulesFor(user: string, groups: readonly string[], namespace: string): PolicyRule[];
  roleRules(ref: RoleRef, bindingNamespace: string | undefined): PolicyRule[] | undefined;
}

function describe(rule: PolicyRule): string {
  const parts: string[] = [];
  if (rule.apiGroups) parts.push(`APIGroups:${JSON.stringify(rule.apiGroups)}`);
  if (rule.resources) parts.push(`Resources:${JSON.stringify(rule.resources)}`);
  if (rule.resourceNames) parts.push(`ResourceNames:${JSON.stringify(rule.resourceNames)}`);
  if (rule.nonResourceURLs) parts.push(`NonResourceURLs:${JSON.stringify(rule.nonResourceURLs)}`);
  parts.push(`Verbs:${JSON.stringify(rule.verbs)}`);
  return `{${parts.join(', ')}}`;
}

/**
 * The 403 for writing `obj` (a valid RBAC object of type `t`) as `user`, or null when allowed.
 * The rules held are those of ClusterRoleBindings and, for a namespaced object, RoleBindings of
 * its namespace.
 */
export function escalationError(policy: EscalationPolicy, user: UserInfo, t: ResourceType, obj: KubeObject): ApiError | null {
  if (user.groups.includes(MASTERS_GROUP)) return null;
  const namespace = obj.metadata.namespace;
  const name = obj.metadata.name!;
  const forbidden = (why: string): ApiError =>
    new ApiError(403, 'Forbidden', `${t.plural}.${RBAC_GROUP} "${name}" is forbidden: user "${user.user}" (groups=${JSON.stringify(user.groups)}) ${why}`, { name, group: RBAC_GROUP, kind: t.plural });
  const may = (verb: string, resource: string, resourceName: string): boolean =>
    policy.authorize({ user: user.user, groups: user.groups, verb, apiGroup: RBAC_GROUP, resource, name: resourceName, ...(namespace ? { namespace } : {}) }).allowed;
  const held = policy.rulesFor(user.user, user.groups, namespace ?? '');

  if (t.kind === 'Role' || t.kind === 'ClusterRole') {
    if (may('escalate', t.plural, name)) return null;
    if (obj.aggregationRule) return forbidden('must have the escalate verb on clusterroles to use an aggregationRule');
    const missing = uncoveredRules(held, toRole(obj).rules);
    return missing.length === 0 ? null : forbidden(`is attempting to grant RBAC permissions not currently held:\n${missing.map(describe).join('\n')}`);
  }
  const binding = toBinding(obj);
  const ref = binding.roleRef;
  if (may('bind', ref.kind === 'Role' ? 'roles' : 'clusterroles', ref.name)) return null;
  const granted = policy.roleRules(ref, namespace);
  // Binding a role that does not exist yet would grant whatever it is later given.
  if (granted === undefined) return forbidden(`cannot bind ${ref.kind} "${ref.name}": it does not exist (binding it needs the bind verb on it)`);
  const missing = uncoveredRules(held, granted);
  return missing.length === 0 ? null : forbidden(`is attempting to grant RBAC permissions not currently held:\n${missing.map(describe).join('\n')}`);
}
