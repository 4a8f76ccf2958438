// Reads the federation's state for the status page: KubeFedClusters (health conditions) and every
// enabled Federated<Kind> object (propagation status), in process from the embedded API server's
// resources. Runs only while someone watches the page (collector.ts), at most once a second.
import type { Resources } from '../../federation/apiserver/resources.js';
import { FEDERATED_TYPE_CONFIG, KUBEFED_CLUSTER, KUBEFED_NAMESPACE, typeInfoFromFtc } from '../../federation/kubefed/api.js';
import { clusterHealthOf, federatedObjectOf, type FederatedObjectView, type FederationView } from './model.js';

/** Federated objects shown at most: the page is an overview, kubectl lists the rest. */
export const MAX_FEDERATED_OBJECTS = 500;

const ALL = { labels: [], fields: [] };

export async function readFederation(resources: Resources): Promise<FederationView> {
  const clusters = (await resources.list(KUBEFED_CLUSTER, KUBEFED_NAMESPACE, ALL)).items.map(clusterHealthOf);
  const objects: FederatedObjectView[] = [];
  let truncated = false;
  for (const ftc of (await resources.list(FEDERATED_TYPE_CONFIG, KUBEFED_NAMESPACE, ALL)).items) {
    let info;
    try {
      info = typeInfoFromFtc(ftc);
    } catch {
      continue; // a malformed FederatedTypeConfig: the controller reports it, there is nothing to list
    }
    const f = info.federated;
    const type = resources.registry.lookup(f.group, f.version, f.plural);
    if (!type) continue; // its CRD is not served (yet)
    if (truncated) break;
    const items = (await resources.list(type, undefined, { ...ALL, limit: MAX_FEDERATED_OBJECTS - objects.length + 1 })).items;
    for (const item of items) {
      if (objects.length < MAX_FEDERATED_OBJECTS) objects.push(federatedObjectOf({ kind: type.kind, group: type.group, plural: type.plural }, item));
      else truncated = true;
    }
  }
  objects.sort((a, b) => a.kind.localeCompare(b.kind) || a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
  clusters.sort((a, b) => a.name.localeCompare(b.name));
  return { enabled: true, clusters, objects, truncated };
}
