// The default ClusterRoles and ClusterRoleBindings, like kube-apiserver's bootstrap policy
// (plugin/pkg/auth/authorizer/rbac/bootstrappolicy): written at start when absent, never
// overwritten (an operator may edit them), so starting twice changes nothing.
//
// view ⊂ edit ⊂ admin are aggregated ClusterRoles as in kube: their rules are those of every
// ClusterRole labelled rbac.authorization.k8s.io/aggregate-to-<role>: "true", so a new API (a CRD)
// joins them by shipping a small labelled ClusterRole.
import { TYPES_GROUP } from '../kubefed/api.js';
import { AUTHENTICATED_GROUP, MASTERS_GROUP, RBAC_GROUP, type PolicyRule } from './rbac.js';
import type { KubeObject } from './storage.js';

export const AUTHORIZATION_GROUP = 'authorization.k8s.io';
const BOOTSTRAPPING = { 'kubernetes.io/bootstrapping': 'rbac-defaults' };
const READ = ['get', 'list', 'watch'];
const WRITE = ['create', 'delete', 'deletecollection', 'patch', 'update'];
const aggregateTo = (role: string): Record<string, string> => ({ [`${RBAC_GROUP}/aggregate-to-${role}`]: 'true' });

function clusterRole(name: string, rules: PolicyRule[], extra: { labels?: Record<string, string>; aggregateFrom?: string } = {}): KubeObject {
  return {
    apiVersion: `${RBAC_GROUP}/v1`,
    kind: 'ClusterRole',
    metadata: { name, labels: { ...BOOTSTRAPPING, ...extra.labels }, annotations: { 'rbac.authorization.kubernetes.io/autoupdate': 'true' } },
    ...(extra.aggregateFrom ? { aggregationRule: { clusterRoleSelectors: [{ matchLabels: aggregateTo(extra.aggregateFrom) }] } } : {}),
    rules,
  };
}

function clusterRoleBinding(name: string, role: string, group: string): KubeObject {
  return {
    apiVersion: `${RBAC_GROUP}/v1`,
    kind: 'ClusterRoleBinding',
    metadata: { name, labels: { ...BOOTSTRAPPING }, annotations: { 'rbac.authorization.kubernetes.io/autoupdate': 'true' } },
    roleRef: { apiGroup: RBAC_GROUP, kind: 'ClusterRole', name: role },
    subjects: [{ apiGroup: RBAC_GROUP, kind: 'Group', name: group }],
  };
}

/** Namespaced objects a tenant's users work with (Secrets are not among the read-only ones). */
const CORE_NAMESPACED = ['configmaps', 'services', 'serviceaccounts'];

export const BOOTSTRAP_CLUSTER_ROLES: readonly KubeObject[] = [
  clusterRole('cluster-admin', [
    { apiGroups: ['*'], resources: ['*'], verbs: ['*'] },
    { nonResourceURLs: ['*'], verbs: ['*'] },
  ]),
  // Discovery, the OpenAPI documents and the version: what every client reads first.
  clusterRole('system:discovery', [{ nonResourceURLs: ['/api', '/api/*', '/apis', '/apis/*', '/openapi', '/openapi/*', '/version', '/version/'], verbs: ['get'] }]),
  clusterRole('system:public-info-viewer', [{ nonResourceURLs: ['/healthz', '/livez', '/readyz', '/version', '/version/'], verbs: ['get'] }]),
  // Asking what one may do (kubectl auth can-i).
  clusterRole('system:basic-user', [
    { apiGroups: [AUTHORIZATION_GROUP], resources: ['selfsubjectaccessreviews', 'selfsubjectrulesreviews'], verbs: ['create'] },
    // Asking who one is (kubectl auth whoami), as kube's basic-user.
    { apiGroups: ['authentication.k8s.io'], resources: ['selfsubjectreviews'], verbs: ['create'] },
  ]),
  clusterRole('system:monitoring', [{ nonResourceURLs: ['/metrics', '/healthz', '/livez', '/readyz'], verbs: ['get'] }]),
  clusterRole('admin', [], { aggregateFrom: 'admin' }),
  clusterRole('edit', [], { aggregateFrom: 'edit', labels: aggregateTo('admin') }),
  clusterRole('view', [], { aggregateFrom: 'view', labels: aggregateTo('edit') }),
  clusterRole(
    'system:aggregate-to-view',
    [
      { apiGroups: [''], resources: [...CORE_NAMESPACED, 'namespaces'], verbs: READ },
      // Pods and their logs (member mode serves pods), as kube's view does.
      { apiGroups: [''], resources: ['pods', 'pods/log', 'pods/status'], verbs: READ },
      { apiGroups: ['apps'], resources: ['deployments'], verbs: READ },
      // Federated<Kind> objects (and their status) of every federated type.
      { apiGroups: [TYPES_GROUP], resources: ['*'], verbs: READ },
    ],
    { labels: aggregateTo('view') },
  ),
  clusterRole(
    'system:aggregate-to-edit',
    [
      { apiGroups: [''], resources: ['secrets'], verbs: [...READ, ...WRITE] },
      { apiGroups: [''], resources: CORE_NAMESPACED, verbs: WRITE },
      // As kube's edit: pods, and exec/attach/port-forward into them (create on the subresource).
      { apiGroups: [''], resources: ['pods'], verbs: WRITE },
      { apiGroups: [''], resources: ['pods/exec', 'pods/attach', 'pods/portforward'], verbs: ['create', 'get'] },
      { apiGroups: ['apps'], resources: ['deployments'], verbs: WRITE },
      { apiGroups: [TYPES_GROUP], resources: ['*'], verbs: WRITE },
    ],
    { labels: aggregateTo('edit') },
  ),
  clusterRole(
    'system:aggregate-to-admin',
    [{ apiGroups: [RBAC_GROUP], resources: ['roles', 'rolebindings'], verbs: [...READ, ...WRITE] }],
    { labels: aggregateTo('admin') },
  ),
];

export const BOOTSTRAP_CLUSTER_ROLE_BINDINGS: readonly KubeObject[] = [
  clusterRoleBinding('cluster-admin', 'cluster-admin', MASTERS_GROUP),
  clusterRoleBinding('system:discovery', 'system:discovery', AUTHENTICATED_GROUP),
  clusterRoleBinding('system:public-info-viewer', 'system:public-info-viewer', AUTHENTICATED_GROUP),
  clusterRoleBinding('system:basic-user', 'system:basic-user', AUTHENTICATED_GROUP),
  clusterRoleBinding('system:monitoring', 'system:monitoring', 'system:monitoring'),
];
