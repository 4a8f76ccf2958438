// Placement of a Federated<Kind>: which member clusters should hold the target object. KubeFed's
// rules (pkg/controller/util/placement.go), pure:
//   - spec.placement.clusters present (even []) wins; clusterSelector is then ignored;
//   - otherwise spec.placement.clusterSelector: {} selects every cluster, requirements select the
//     clusters whose labels match;
//   - no clusters and no clusterSelector (placement {} or absent) selects none;
//   - only known clusters are ever selected (names of unknown clusters drop out);
//   - a namespaced resource goes only where its namespace's FederatedNamespace goes;
//   - only to clusters of the object's tenant, never to a cluster whose tenant label disagrees
//     with its agent's certificate (tenancy.ts).
// This is the one place placement is decided: later restrictions (a placementMask) are further
// intersections added here, not in the controller.
import type { KubeObject } from '../apiserver/storage.js';
import { matchLabels } from '../apiserver/selectors.js';
import { labelSelectorRequirements } from './label-selector.js';
import { tenantAllows, tenantMismatch, type TenantCluster, type Tenancy } from './tenancy.js';

export type ClusterInfo = TenantCluster;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Names of the known clusters the object's spec.placement selects. Throws SelectorShapeError
 * (code InvalidSelector) for a clusterSelector admission would reject: the caller reports it
 * rather than treating it as "no clusters", which would delete the object everywhere.
 */
export function selectedClusters(fedObj: KubeObject, clusters: ClusterInfo[]): Set<string> {
  const spec = isObject(fedObj.spec) ? fedObj.spec : {};
  const placement = isObject(spec.placement) ? spec.placement : {};
  if (Array.isArray(placement.clusters)) {
    const named = new Set(placement.clusters.map((c: unknown) => (isObject(c) ? c.name : undefined)));
    return new Set(clusters.filter((c) => named.has(c.name)).map((c) => c.name));
  }
  if (!isObject(placement.clusterSelector)) return new Set();
  const requirements = labelSelectorRequirements(placement.clusterSelector);
  return new Set(clusters.filter((c) => matchLabels(requirements, c.labels)).map((c) => c.name));
}

/**
 * Effective placement: the selected clusters, and for namespaced types only those in
 * `namespacePlacement` (the placement of the namespace's FederatedNamespace; pass an empty set when
 * the namespace has none: KubeFed then places the resource nowhere); only clusters `tenancy`
 * allows (without it: every cluster but those whose tenant label disagrees with their agent).
 */
export function computePlacement(fedObj: KubeObject, clusters: ClusterInfo[], namespacePlacement?: Set<string>, tenancy?: Tenancy): Set<string> {
  const eligible = clusters.filter((c) => (tenancy ? tenantAllows(c, tenancy) : !tenantMismatch(c)));
  const selected = selectedClusters(fedObj, eligible);
  if (!namespacePlacement) return selected;
  return new Set([...selected].filter((name) => namespacePlacement.has(name)));
}
