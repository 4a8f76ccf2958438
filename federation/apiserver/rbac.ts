// Kubernetes RBAC, evaluated (pure): request attributes + Role/ClusterRole/RoleBinding/
// ClusterRoleBinding objects → allow or deny, with the semantics of kube-apiserver's RBAC
// authorizer (plugin/pkg/auth/authorizer/rbac). No I/O here: the watch-fed cache (rbac-cache.ts)
// builds a Policy from the store and asks it; the hub's /clusters proxy can do the same.
import { matchLabels, type LabelRequirement } from './selectors.js';

export const RBAC_GROUP = 'rbac.authorization.k8s.io';

/** Members of this group are allowed everything, whatever the RBAC objects say (as in kube). */
export const MASTERS_GROUP = 'system:masters';
/** Every authenticated user is in this group (kube's authenticators add it). */
export const AUTHENTICATED_GROUP = 'system:authenticated';
export const SERVICE_ACCOUNT_PREFIX = 'system:serviceaccount:';
export const SERVICE_ACCOUNTS_GROUP = 'system:serviceaccounts';

export interface PolicyRule {
  verbs: string[];
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

export interface RoleRef {
  apiGroup: string;
  kind: 'Role' | 'ClusterRole';
  name: string;
}

export interface Subject {
  kind: 'User' | 'Group' | 'ServiceAccount';
  name: string;
  apiGroup?: string;
  namespace?: string;
}

export interface Role {
  name: string;
  /** Set for a Role, absent for a ClusterRole. */
  namespace?: string;
  rules: PolicyRule[];
  labels?: Record<string, string>;
  /** ClusterRole aggregationRule.clusterRoleSelectors, as label requirements (one list per selector). */
  aggregate?: LabelRequirement[][];
}

export interface Binding {
  name: string;
  /** Set for a RoleBinding, absent for a ClusterRoleBinding. */
  namespace?: string;
  roleRef: RoleRef;
  subjects: Subject[];
}

/** Who asks and for what: a resource request, or a non-resource one (a URL path). */
interface Requester {
  user: string;
  groups: readonly string[];
  verb: string;
}

export interface ResourceAttributes extends Requester {
  apiGroup: string;
  resource: string;
  subresource?: string;
  name?: string;
  /** Absent or '' for a cluster-scoped request (or a list across all namespaces). */
  namespace?: string;
}

export interface NonResourceAttributes extends Requester {
  path: string;
}

export type Attributes = ResourceAttributes | NonResourceAttributes;

export interface Decision {
  allowed: boolean;
  /** Which binding allowed it (SubjectAccessReview status.reason); empty for a denial, as in kube. */
  reason: string;
}

/** What the hub's request paths ask: free of HTTP, so the API server and the /clusters proxy share it. */
export interface Authorizer {
  authorize(attrs: Attributes): Decision;
}

export function isResourceRequest(attrs: Attributes): attrs is ResourceAttributes {
  return 'resource' in attrs;
}

/**
 * The groups of an authenticated user, as kube's authenticators give them: its own,
 * system:authenticated, and for a service-account name (system:serviceaccount:<ns>:<name>)
 * system:serviceaccounts and system:serviceaccounts:<ns>. Applied at authentication, not by the
 * evaluator, so a SubjectAccessReview asks about exactly the groups it names.
 */
export function effectiveGroups(user: string, groups: readonly string[]): string[] {
  const out = new Set(groups);
  out.add(AUTHENTICATED_GROUP);
  const sa = serviceAccountOf(user);
  if (sa) {
    out.add(SERVICE_ACCOUNTS_GROUP);
    out.add(`${SERVICE_ACCOUNTS_GROUP}:${sa.namespace}`);
  }
  return [...out];
}

export function serviceAccountOf(user: string): { namespace: string; name: string } | null {
  if (!user.startsWith(SERVICE_ACCOUNT_PREFIX)) return null;
  const parts = user.slice(SERVICE_ACCOUNT_PREFIX.length).split(':');
  if (parts.length !== 2 || parts[0] === '' || parts[1] === '') return null;
  return { namespace: parts[0]!, name: parts[1]! };
}

function hasOrStar(list: readonly string[] | undefined, value: string): boolean {
  return list !== undefined && (list.includes('*') || list.includes(value));
}

/** kube's ResourceMatches: "*", the exact resource[/subresource], or "*\/<subresource>". */
function resourceMatches(rule: PolicyRule, resource: string, subresource: string | undefined): boolean {
  const combined = subresource ? `${resource}/${subresource}` : resource;
  for (const r of rule.resources ?? []) {
    if (r === '*' || r === combined) return true;
    if (subresource && r === `*/${subresource}`) return true;
  }
  return false;
}

/** kube's NonResourceURLMatches: "*", an exact path, or a prefix ending in "*". */
function nonResourceUrlMatches(rule: PolicyRule, path: string): boolean {
  for (const u of rule.nonResourceURLs ?? []) {
    if (u === '*' || u === path) return true;
    if (u.endsWith('*') && path.startsWith(u.slice(0, -1))) return true;
  }
  return false;
}

export function ruleAllows(attrs: Attributes, rule: PolicyRule): boolean {
  if (!hasOrStar(rule.verbs, attrs.verb)) return false;
  if (!isResourceRequest(attrs)) return nonResourceUrlMatches(rule, attrs.path);
  if (!hasOrStar(rule.apiGroups, attrs.apiGroup)) return false;
  if (!resourceMatches(rule, attrs.resource, attrs.subresource)) return false;
  const names = rule.resourceNames ?? [];
  return names.length === 0 || (attrs.name !== undefined && attrs.name !== '' && names.includes(attrs.name));
}

export function subjectMatches(subject: Subject, user: string, groups: readonly string[], bindingNamespace: string | undefined): boolean {
  switch (subject.kind) {
    case 'User':
      return subject.name === user;
    case 'Group':
      return groups.includes(subject.name);
    case 'ServiceAccount': {
      // kube: a ServiceAccount subject without a namespace means the binding's own.
      const ns = subject.namespace || bindingNamespace;
      return ns !== undefined && ns !== '' && user === `${SERVICE_ACCOUNT_PREFIX}${ns}:${subject.name}`;
    }
    default:
      return false;
  }
}

export function describeSubject(s: Subject, bindingNamespace?: string): string {
  if (s.kind === 'ServiceAccount') return `ServiceAccount "${s.namespace || bindingNamespace || ''}/${s.name}"`;
  return `${s.kind} "${s.name}"`;
}

/**
 * RBAC objects indexed for evaluation: bindings by the user and group names their subjects name
 * (service-account subjects under their user name), roles by namespace/name, aggregated
 * ClusterRoles resolved once.
 */
export class Policy {
  private readonly clusterRoles = new Map<string, PolicyRule[]>();
  private readonly roles = new Map<string, PolicyRule[]>();
  /** Bindings by subject name, then by namespace ('' for ClusterRoleBindings): a request looks at two lists per name. */
  private readonly byUser = new Map<string, Map<string, Binding[]>>();
  private readonly byGroup = new Map<string, Map<string, Binding[]>>();

  constructor(roles: readonly Role[], bindings: readonly Binding[]) {
    const clusterRoles = roles.filter((r) => r.namespace === undefined);
    for (const r of roles) if (r.namespace !== undefined) this.roles.set(`${r.namespace}/${r.name}`, r.rules);
    for (const r of clusterRoles) this.clusterRoles.set(r.name, aggregatedRules(r, clusterRoles, new Set()));
    for (const b of bindings) {
      for (const s of b.subjects) {
        if (s.kind === 'Group') index(this.byGroup, s.name, b);
        else if (s.kind === 'User') index(this.byUser, s.name, b);
        else if (s.kind === 'ServiceAccount') {
          const ns = s.namespace || b.namespace;
          if (ns) index(this.byUser, `${SERVICE_ACCOUNT_PREFIX}${ns}:${s.name}`, b);
        }
      }
    }
  }

  /** The rules of a binding's role, or undefined if that role does not exist. */
  roleRules(ref: RoleRef, bindingNamespace: string | undefined): PolicyRule[] | undefined {
    if (ref.kind === 'ClusterRole') return this.clusterRoles.get(ref.name);
    return bindingNamespace === undefined ? undefined : this.roles.get(`${bindingNamespace}/${ref.name}`);
  }

  /** The rules a binding grants (none when its role does not exist: kube ignores such a binding). */
  rulesOf(b: Binding): PolicyRule[] {
    if (b.roleRef.kind === 'ClusterRole') return this.clusterRoles.get(b.roleRef.name) ?? [];
    if (b.namespace === undefined) return [];
    return this.roles.get(`${b.namespace}/${b.roleRef.name}`) ?? [];
  }

  /**
   * Calls `visit` with the ClusterRoleBindings and the RoleBindings of `namespace` (if given) that
   * name this user or one of its groups, until it returns true. A binding naming several of them
   * is visited more than once: harmless, and cheaper than de-duplicating on every request.
   */
  private visitBindings(user: string, groups: readonly string[], namespace: string | undefined, visit: (b: Binding) => boolean): boolean {
    const lists = (byNamespace: Map<string, Binding[]> | undefined): boolean => {
      if (!byNamespace) return false;
      for (const b of byNamespace.get('') ?? []) if (visit(b)) return true;
      if (namespace) for (const b of byNamespace.get(namespace) ?? []) if (visit(b)) return true;
      return false;
    };
    if (lists(this.byUser.get(user))) return true;
    for (const g of groups) if (lists(this.byGroup.get(g))) return true;
    return false;
  }

  /**
   * The decision for one request (system:masters always; otherwise the first binding that grants
   * it). `attrs.groups` are taken as they are: authentication adds effectiveGroups().
   */
  authorize(attrs: Attributes): Decision {
    const groups = attrs.groups;
    if (groups.includes(MASTERS_GROUP)) return { allowed: true, reason: `allowed: member of ${MASTERS_GROUP}` };
    // A RoleBinding grants only inside its namespace; a ClusterRoleBinding everywhere. Non-resource
    // URLs are cluster-wide: only a ClusterRoleBinding can grant them.
    const namespace = isResourceRequest(attrs) ? attrs.namespace || undefined : undefined;
    let granted: Binding | undefined;
    this.visitBindings(attrs.user, groups, namespace, (b) => {
      if (!this.rulesOf(b).some((rule) => ruleAllows(attrs, rule))) return false;
      granted = b;
      return true;
    });
    // As kube's RBAC authorizer: no opinion, no reason (kubectl auth can-i prints a bare "no").
    if (!granted) return { allowed: false, reason: '' };
    const b: Binding = granted;
    const subject = b.subjects.find((s) => subjectMatches(s, attrs.user, groups, b.namespace))!;
    const kind = b.namespace === undefined ? 'ClusterRoleBinding' : 'RoleBinding';
    const name = b.namespace === undefined ? b.name : `${b.name}/${b.namespace}`;
    return { allowed: true, reason: `RBAC: allowed by ${kind} "${name}" of ${b.roleRef.kind} "${b.roleRef.name}" to ${describeSubject(subject, b.namespace)}` };
  }

  /** The rules that apply to a user in a namespace (SelfSubjectRulesReview): ClusterRoleBindings and that namespace's RoleBindings. */
  rulesFor(user: string, groups: readonly string[], namespace: string): PolicyRule[] {
    if (groups.includes(MASTERS_GROUP)) return [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'] }, { verbs: ['*'], nonResourceURLs: ['*'] }];
    const seen = new Set<Binding>();
    this.visitBindings(user, groups, namespace || undefined, (b) => {
      seen.add(b);
      return false;
    });
    const out: PolicyRule[] = [];
    for (const b of seen) for (const r of this.rulesOf(b)) if (b.namespace === undefined || r.nonResourceURLs === undefined) out.push(r);
    return out;
  }
}

/**
 * The rules of `wanted` that `held` does not cover (kube's validation.Covers): each rule is broken
 * into single verb × group × resource × name (or verb × URL) rules, and each must be allowed by a
 * held rule, where a "*" wanted is covered only by a "*" held. Empty: granting `wanted` is no
 * escalation.
 */
export function uncoveredRules(held: readonly PolicyRule[], wanted: readonly PolicyRule[]): PolicyRule[] {
  const out: PolicyRule[] = [];
  const who = { user: '', groups: [] };
  for (const rule of wanted) {
    for (const verb of rule.verbs) {
      if (rule.nonResourceURLs?.length) {
        for (const path of rule.nonResourceURLs) if (!held.some((h) => ruleAllows({ ...who, verb, path }, h))) out.push({ verbs: [verb], nonResourceURLs: [path] });
        continue;
      }
      for (const apiGroup of rule.apiGroups ?? []) {
        for (const combined of rule.resources ?? []) {
          const [resource, subresource] = combined.split('/', 2) as [string, string | undefined];
          for (const name of rule.resourceNames?.length ? rule.resourceNames : [undefined]) {
            const attrs: ResourceAttributes = { ...who, verb, apiGroup, resource, ...(subresource ? { subresource } : {}), ...(name ? { name } : {}) };
            if (!held.some((h) => ruleAllows(attrs, h))) out.push({ verbs: [verb], apiGroups: [apiGroup], resources: [combined], ...(name ? { resourceNames: [name] } : {}) });
          }
        }
      }
    }
  }
  return out;
}

/**
 * A ClusterRole's rules: its own, then those of every ClusterRole its aggregationRule selects,
 * transitively (edit aggregates view, which aggregates system:aggregate-to-view), as kube's
 * aggregation controller writes them; a cycle adds nothing twice.
 */
function aggregatedRules(role: Role, all: readonly Role[], visiting: Set<Role>): PolicyRule[] {
  if (!role.aggregate) return role.rules;
  visiting.add(role);
  const rules = [...role.rules];
  for (const other of all) {
    if (visiting.has(other)) continue;
    if (role.aggregate.some((sel) => matchLabels(sel, other.labels))) rules.push(...aggregatedRules(other, all, visiting));
  }
  visiting.delete(role);
  return rules;
}

function index(map: Map<string, Map<string, Binding[]>>, subject: string, b: Binding): void {
  let byNamespace = map.get(subject);
  if (!byNamespace) map.set(subject, (byNamespace = new Map()));
  const key = b.namespace ?? '';
  const list = byNamespace.get(key);
  if (list) list.push(b);
  else byNamespace.set(key, [b]);
}
