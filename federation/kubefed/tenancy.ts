// Tenant isolation (pure): which tenant a cluster and a namespace belong to, which clusters a
// tenant's objects may be placed on, and the admission decisions that keep the labels honest.
//
// A cluster's tenant is its fedtunnel.io/tenant label; the hub injects it from the agent's
// certificate when absent, so until then the agent's tenant stands in for it. A label that
// disagrees with the certificate (an admin set it, or the cluster was joined with a wrong one) is a
// mismatch: the cluster is placed nothing until the two agree.
//
// A namespace's tenant is the fedtunnel.io/tenant label of its FederatedNamespace's template when
// that sets one — it is what members receive, so federation and members agree — else the label of
// the federation-side Namespace.
import type { UserInfo } from '../apiserver/authz.js';
import type { KubeObject } from '../apiserver/storage.js';
import { CELL_LABEL, TENANT_LABEL } from './api.js';

/**
 * A user is bound to tenant X by the group `fedtunnel:tenant:X` (certificate O, token-file or OIDC
 * groups): who has at least one such group may reach only clusters of their tenants (README "Tenants").
 */
export const TENANT_GROUP_PREFIX = 'fedtunnel:tenant:';

/** The tenants a user's groups bind them to (empty: the user is not tenant-bound). */
export function tenantsOfGroups(groups: readonly string[]): string[] {
  return groups.filter((g) => g.startsWith(TENANT_GROUP_PREFIX) && g.length > TENANT_GROUP_PREFIX.length).map((g) => g.slice(TENANT_GROUP_PREFIX.length));
}

/** A member cluster as placement and admission see it. */
export interface TenantCluster {
  name: string;
  labels: Record<string, string>;
  /** The tenant of the cluster's agent certificate (undefined: no agent seen since the hub started). */
  agentTenant?: string;
}

/**
 * Where objects of a namespace without a tenant go:
 *   - 'untenanted' (the default): only to clusters without a tenant. Safe: an object nobody
 *     claimed for a tenant never lands in a tenant's cluster, whoever could write it.
 *   - 'all': to every cluster, for a federation that is not shared between tenants or that keeps
 *     platform-wide namespaces (only admins must be able to write there).
 */
export type UntenantedPlacement = 'untenanted' | 'all';
export const UNTENANTED_PLACEMENTS: readonly UntenantedPlacement[] = ['untenanted', 'all'];

export interface Tenancy {
  /** The tenant of the object's namespace; undefined for none (and for cluster-scoped objects). */
  tenant: string | undefined;
  untenanted: UntenantedPlacement;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The tenant label's value; an empty value is no tenant. */
export function labelTenant(labels: Record<string, string> | undefined): string | undefined {
  const t = labels?.[TENANT_LABEL];
  return typeof t === 'string' && t !== '' ? t : undefined;
}

/** The cluster's tenant: its label, or its agent's tenant while the label is not injected yet. */
export function clusterTenant(c: TenantCluster): string | undefined {
  return labelTenant(c.labels) ?? c.agentTenant;
}

/** The label names a tenant and the agent's certificate another one. */
export function tenantMismatch(c: TenantCluster): boolean {
  const label = labelTenant(c.labels);
  return label !== undefined && c.agentTenant !== undefined && label !== c.agentTenant;
}

/** The text of a mismatch, for the KubeFedCluster condition and the log. */
export function mismatchMessage(c: TenantCluster): string {
  return `label ${TENANT_LABEL}=${labelTenant(c.labels)} disagrees with the tenant "${c.agentTenant}" of the cluster's agent certificate: nothing is propagated to this cluster until they agree`;
}

/** May objects of `tenancy` be placed on the cluster? Never on a mismatched one. */
export function tenantAllows(c: TenantCluster, tenancy: Tenancy): boolean {
  if (tenantMismatch(c)) return false;
  const t = clusterTenant(c);
  if (tenancy.tenant === undefined) return tenancy.untenanted === 'all' || t === undefined;
  return t === tenancy.tenant;
}

/** The tenant of a namespace: its FederatedNamespace's template label wins over the Namespace's label. */
export function namespaceTenant(fedNamespace: KubeObject | undefined, namespace: KubeObject | undefined): string | undefined {
  return templateTenant(fedNamespace) ?? labelTenant(namespace?.metadata.labels);
}

/** The tenant label of a federated object's template (a FederatedNamespace's is its namespace's tenant). */
export function templateTenant(fed: KubeObject | undefined): string | undefined {
  const spec = fed && isObject(fed.spec) ? fed.spec : {};
  const template = isObject(spec.template) ? spec.template : {};
  const metadata = isObject(template.metadata) ? template.metadata : {};
  return labelTenant(isObject(metadata.labels) ? (metadata.labels as Record<string, string>) : undefined);
}

/**
 * Who may change the tenant and cell labels of a cluster and the tenant of a namespace. One
 * function so that a dedicated RBAC permission can replace the group check in one place.
 */
export function mayEditClusterTopologyLabels(user: UserInfo): boolean {
  return user.groups.includes('system:masters');
}

export interface TenantRefusal {
  code: 403;
  reason: 'TopologyLabelChanged' | 'TenantContradictsAgent' | 'CrossTenantPlacement' | 'NamespaceTenantChanged';
  message: string;
}

function shown(v: string | undefined): string {
  return v === undefined ? '(none)' : JSON.stringify(v);
}

/**
 * A KubeFedCluster's labels on create (`oldLabels` undefined) or update. `user` undefined: a write
 * of the hub itself (the label injection), always admitted. For everyone else but an admin:
 * adding, changing or removing the tenant or cell label of an existing cluster is refused, and so
 * is a tenant label that contradicts the certificate of the cluster's agent.
 */
export function admitClusterLabels(input: {
  name: string;
  oldLabels: Record<string, string> | undefined;
  newLabels: Record<string, string> | undefined;
  agentTenant: string | undefined;
  user: UserInfo | undefined;
}): TenantRefusal | null {
  const { name, oldLabels, newLabels, agentTenant, user } = input;
  if (!user || mayEditClusterTopologyLabels(user)) return null;
  if (oldLabels !== undefined) {
    for (const key of [TENANT_LABEL, CELL_LABEL]) {
      const before = oldLabels[key];
      const after = newLabels?.[key];
      if (before !== after) {
        return {
          code: 403,
          reason: 'TopologyLabelChanged',
          message: `KubeFedCluster "${name}": label ${key} may only be changed by an admin (${shown(before)} → ${shown(after)}); user "${user.user}" is not one`,
        };
      }
    }
  }
  const tenant = labelTenant(newLabels);
  if (tenant !== undefined && agentTenant !== undefined && tenant !== agentTenant) {
    return {
      code: 403,
      reason: 'TenantContradictsAgent',
      message: `KubeFedCluster "${name}": label ${TENANT_LABEL}=${tenant} contradicts the agent certificate of cluster "${name}", which says tenant "${agentTenant}"`,
    };
  }
  return null;
}

/** A Namespace's (or FederatedNamespace template's) tenant changed on update: only an admin may. */
export function admitNamespaceTenant(input: { kind: string; name: string; oldTenant: string | undefined; newTenant: string | undefined; user: UserInfo | undefined }): TenantRefusal | null {
  const { kind, name, oldTenant, newTenant, user } = input;
  if (!user || mayEditClusterTopologyLabels(user) || oldTenant === newTenant) return null;
  return {
    code: 403,
    reason: 'NamespaceTenantChanged',
    message: `${kind} "${name}": the tenant (label ${TENANT_LABEL}) may only be changed by an admin (${shown(oldTenant)} → ${shown(newTenant)}); user "${user.user}" is not one`,
  };
}

/** The cluster names of an explicit placement (spec.placement.clusters), in order; [] without one. */
export function placementClusterNames(fed: KubeObject | undefined): string[] {
  const spec = fed && isObject(fed.spec) ? fed.spec : {};
  const placement = isObject(spec.placement) ? spec.placement : {};
  if (!Array.isArray(placement.clusters)) return [];
  return placement.clusters.flatMap((c: unknown) => (isObject(c) && typeof c.name === 'string' ? [c.name] : []));
}

/**
 * A Federated<Kind> whose explicit placement names a cluster of another tenant is refused, naming
 * the cluster and both tenants (placement would drop it silently). Only clusters the write adds to
 * the placement are checked (`previous`: the stored object on update), so an object stays editable
 * (e.g. its deletion can finish) after a cluster changed tenant. Clusters not joined are not
 * checked: nothing is placed there, and when one joins its tenant is ANDed in by placement.
 */
export function admitExplicitPlacement(input: {
  kind: string;
  namespace: string | undefined;
  name: string;
  object: KubeObject;
  previous: KubeObject | undefined;
  tenancy: Tenancy;
  clusters: ReadonlyMap<string, TenantCluster>;
}): TenantRefusal | null {
  const { kind, namespace, name, object, previous, tenancy, clusters } = input;
  const before = new Set(placementClusterNames(previous));
  const named = placementClusterNames(object);
  for (let i = 0; i < named.length; i++) {
    const clusterName = named[i]!;
    const cluster = clusters.get(clusterName);
    if (!cluster || before.has(clusterName) || tenantAllows(cluster, tenancy)) continue;
    const where = namespace ? ` in namespace "${namespace}"` : '';
    const clusterSide = tenantMismatch(cluster)
      ? `whose tenant label ${shown(labelTenant(cluster.labels))} disagrees with its agent's tenant ${shown(cluster.agentTenant)}`
      : `of tenant ${shown(clusterTenant(cluster))}`;
    return {
      code: 403,
      reason: 'CrossTenantPlacement',
      message: `${kind} "${name}"${where} belongs to tenant ${shown(tenancy.tenant)} and may not be placed on cluster "${clusterName}" ${clusterSide} (spec.placement.clusters[${i}].name)`,
    };
  }
  return null;
}
