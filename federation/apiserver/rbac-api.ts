// The rbac.authorization.k8s.io/v1 types as served resources (pure): their ResourceTypes, the
// validation of their shape (field errors → 422), and the mapping from stored objects to the
// evaluator's Role/Binding. Mirrors kube's pkg/apis/rbac/validation.
import { labelSelectorRequirements, validateLabelSelector } from '../kubefed/label-selector.js';
import { RBAC_GROUP, type Binding, type PolicyRule, type Role, type Subject } from './rbac.js';
import type { KubeObject } from './storage.js';
import type { ResourceType } from './types.js';
import { validatePathSegmentName, type FieldError } from './validation.js';

const base = { group: RBAC_GROUP, version: 'v1', hasStatus: false } as const;
export const ROLES: ResourceType = { ...base, kind: 'Role', plural: 'roles', singular: 'role', namespaced: true };
export const CLUSTER_ROLES: ResourceType = { ...base, kind: 'ClusterRole', plural: 'clusterroles', singular: 'clusterrole', namespaced: false };
export const ROLE_BINDINGS: ResourceType = { ...base, kind: 'RoleBinding', plural: 'rolebindings', singular: 'rolebinding', namespaced: true };
export const CLUSTER_ROLE_BINDINGS: ResourceType = { ...base, kind: 'ClusterRoleBinding', plural: 'clusterrolebindings', singular: 'clusterrolebinding', namespaced: false };
export const RBAC_TYPES: readonly ResourceType[] = [CLUSTER_ROLE_BINDINGS, CLUSTER_ROLES, ROLE_BINDINGS, ROLES];

export function isRbacType(t: ResourceType): boolean {
  return t.group === RBAC_GROUP && RBAC_TYPES.some((r) => r.plural === t.plural);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isStringList(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

function validateRules(rules: unknown, namespaced: boolean): FieldError[] {
  if (rules === undefined || rules === null) return [];
  if (!Array.isArray(rules)) return [{ field: 'rules', message: 'Invalid value: must be a list of PolicyRules' }];
  const errs: FieldError[] = [];
  rules.forEach((rule: unknown, i) => {
    const at = `rules[${i}]`;
    if (!isObject(rule)) return void errs.push({ field: at, message: 'Invalid value: must be an object' });
    for (const f of ['verbs', 'apiGroups', 'resources', 'resourceNames', 'nonResourceURLs']) {
      if (rule[f] !== undefined && rule[f] !== null && !isStringList(rule[f])) errs.push({ field: `${at}.${f}`, message: 'Invalid value: must be a list of strings' });
    }
    if (!isStringList(rule.verbs) || rule.verbs.length === 0) errs.push({ field: `${at}.verbs`, message: 'Required value: verbs must contain at least one value' });
    const urls = isStringList(rule.nonResourceURLs) ? rule.nonResourceURLs : [];
    const groups = isStringList(rule.apiGroups) ? rule.apiGroups : [];
    const resources = isStringList(rule.resources) ? rule.resources : [];
    if (urls.length > 0) {
      if (namespaced) errs.push({ field: `${at}.nonResourceURLs`, message: 'Invalid value: namespaced rules cannot apply to non-resource URLs' });
      if (groups.length > 0 || resources.length > 0) errs.push({ field: `${at}.nonResourceURLs`, message: 'Invalid value: rules cannot apply to both regular resources and non-resource URLs' });
      for (const u of urls) if (!u.startsWith('/') && u !== '*') errs.push({ field: `${at}.nonResourceURLs`, message: `Invalid value: "${u}": must start with "/" or be "*"` });
      return;
    }
    if (groups.length === 0) errs.push({ field: `${at}.apiGroups`, message: 'Required value: resource rules must supply at least one api group' });
    if (resources.length === 0) errs.push({ field: `${at}.resources`, message: 'Required value: resource rules must supply at least one resource' });
  });
  return errs;
}

function validateRoleRef(ref: unknown, namespaced: boolean): FieldError[] {
  if (!isObject(ref)) return [{ field: 'roleRef', message: 'Required value' }];
  const errs: FieldError[] = [];
  if (ref.apiGroup !== RBAC_GROUP) errs.push({ field: 'roleRef.apiGroup', message: `Unsupported value: ${JSON.stringify(ref.apiGroup)}: supported values: "${RBAC_GROUP}"` });
  const kinds = namespaced ? ['Role', 'ClusterRole'] : ['ClusterRole'];
  if (!kinds.includes(ref.kind as string)) errs.push({ field: 'roleRef.kind', message: `Unsupported value: ${JSON.stringify(ref.kind)}: supported values: ${kinds.map((k) => `"${k}"`).join(', ')}` });
  if (typeof ref.name !== 'string' || ref.name === '') errs.push({ field: 'roleRef.name', message: 'Required value' });
  else errs.push(...validatePathSegmentName(ref.name, 'roleRef.name'));
  return errs;
}

function validateSubjects(subjects: unknown, namespaced: boolean): FieldError[] {
  if (subjects === undefined || subjects === null) return [];
  if (!Array.isArray(subjects)) return [{ field: 'subjects', message: 'Invalid value: must be a list of Subjects' }];
  const errs: FieldError[] = [];
  subjects.forEach((s: unknown, i) => {
    const at = `subjects[${i}]`;
    if (!isObject(s)) return void errs.push({ field: at, message: 'Invalid value: must be an object' });
    if (typeof s.name !== 'string' || s.name === '') errs.push({ field: `${at}.name`, message: 'Required value' });
    switch (s.kind) {
      case 'ServiceAccount':
        if (s.apiGroup !== undefined && s.apiGroup !== '') errs.push({ field: `${at}.apiGroup`, message: `Unsupported value: ${JSON.stringify(s.apiGroup)}: supported values: ""` });
        if ((typeof s.namespace !== 'string' || s.namespace === '') && !namespaced) errs.push({ field: `${at}.namespace`, message: 'Required value' });
        break;
      case 'User':
      case 'Group':
        if (s.apiGroup !== undefined && s.apiGroup !== RBAC_GROUP) errs.push({ field: `${at}.apiGroup`, message: `Unsupported value: ${JSON.stringify(s.apiGroup)}: supported values: "${RBAC_GROUP}"` });
        break;
      default:
        errs.push({ field: `${at}.kind`, message: `Unsupported value: ${JSON.stringify(s.kind)}: supported values: "ServiceAccount", "User", "Group"` });
    }
  });
  return errs;
}

/** Field errors of an RBAC object beyond metadata (validateObject checks its name). */
export function validateRbacObject(t: ResourceType, obj: KubeObject): FieldError[] {
  switch (t.kind) {
    case 'Role':
      return validateRules(obj.rules, true);
    case 'ClusterRole': {
      const errs = validateRules(obj.rules, false);
      const agg = obj.aggregationRule;
      if (agg !== undefined && agg !== null) {
        if (!isObject(agg) || !Array.isArray(agg.clusterRoleSelectors)) errs.push({ field: 'aggregationRule.clusterRoleSelectors', message: 'Invalid value: must be a list of label selectors' });
        else agg.clusterRoleSelectors.forEach((sel: unknown, i) => errs.push(...validateLabelSelector(sel, `aggregationRule.clusterRoleSelectors[${i}]`)));
      }
      return errs;
    }
    case 'RoleBinding':
    case 'ClusterRoleBinding':
      return [...validateRoleRef(obj.roleRef, t.kind === 'RoleBinding'), ...validateSubjects(obj.subjects, t.kind === 'RoleBinding')];
    default:
      return [];
  }
}

/** A stored (hence valid) Role or ClusterRole for the evaluator. */
export function toRole(obj: KubeObject): Role {
  const rules = ((obj.rules as PolicyRule[] | null | undefined) ?? []).map((r) => ({ ...r, verbs: r.verbs ?? [] }));
  const agg = obj.aggregationRule as { clusterRoleSelectors?: Array<Record<string, unknown>> } | undefined;
  return {
    name: obj.metadata.name!,
    ...(obj.metadata.namespace ? { namespace: obj.metadata.namespace } : {}),
    rules,
    labels: obj.metadata.labels,
    ...(agg?.clusterRoleSelectors ? { aggregate: agg.clusterRoleSelectors.map((sel) => labelSelectorRequirements(sel)) } : {}),
  };
}

/** A stored (hence valid) RoleBinding or ClusterRoleBinding for the evaluator. */
export function toBinding(obj: KubeObject): Binding {
  return {
    name: obj.metadata.name!,
    ...(obj.metadata.namespace ? { namespace: obj.metadata.namespace } : {}),
    roleRef: obj.roleRef as Binding['roleRef'],
    subjects: ((obj.subjects as Subject[] | null | undefined) ?? []).map((s) => ({ ...s })),
  };
}
