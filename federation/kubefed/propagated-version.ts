// KubeFed's PropagatedVersion (namespaced) and ClusterPropagatedVersion (for cluster-scoped
// federated types), core.kubefed.io/v1alpha1, named <target kind, lowercase>-<federated object name>
// as KubeFed named them. Written by the controller only: status.clusterVersions[] says which
// revision (and content hash) each cluster holds, status.revisions[] keeps each held revision's
// template and overrides once, so a cluster held back by spec.placementMask can be re-applied its
// revision after a restart. Pure.
import { createHash } from 'node:crypto';
import type { ResourceType } from '../apiserver/types.js';
import type { KubeObject } from '../apiserver/storage.js';
import { CORE_GROUP, type FederatedTypeInfo, type TargetType } from './api.js';

export const PROPAGATED_VERSION_API_VERSION = 'v1alpha1';
/** Which FederatedTypeConfig and which federated object a record belongs to (names may be cut, see propagatedVersionName). */
export const FEDERATED_TYPE_ANNOTATION = 'fedtunnel.io/federated-type';
export const FEDERATED_OBJECT_ANNOTATION = 'fedtunnel.io/federated-object';

function pvType(kind: string, plural: string, namespaced: boolean): ResourceType {
  return {
    group: CORE_GROUP,
    version: PROPAGATED_VERSION_API_VERSION,
    kind,
    plural,
    singular: kind.toLowerCase(),
    namespaced,
    // No status subresource: the controller writes the whole record in one update.
    hasStatus: false,
    crd: { name: `${plural}.${CORE_GROUP}`, storageVersion: PROPAGATED_VERSION_API_VERSION, conversion: { strategy: 'None' } },
  };
}

export const PROPAGATED_VERSION: ResourceType = pvType('PropagatedVersion', 'propagatedversions', true);
export const CLUSTER_PROPAGATED_VERSION: ResourceType = pvType('ClusterPropagatedVersion', 'clusterpropagatedversions', false);

export function propagatedVersionType(target: TargetType): ResourceType {
  return target.namespaced || (target.group === '' && target.plural === 'namespaces') ? PROPAGATED_VERSION : CLUSTER_PROPAGATED_VERSION;
}

const MAX_NAME = 253;

/** KubeFed's name; one that would pass the 253-character limit is cut and made unique again with a hash of the full name. */
export function propagatedVersionName(target: TargetType, fedName: string): string {
  const name = `${target.kind.toLowerCase()}-${fedName}`;
  if (name.length <= MAX_NAME) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 10);
  return `${name.slice(0, MAX_NAME - hash.length - 1).replace(/[-.]+$/, '')}-${hash}`;
}

/** The record object holding `status` for the federated object `fed` of type `info`. */
export function propagatedVersionFor(info: FederatedTypeInfo, fed: KubeObject, status: unknown): KubeObject {
  const t = propagatedVersionType(info.target);
  return {
    apiVersion: `${CORE_GROUP}/${PROPAGATED_VERSION_API_VERSION}`,
    kind: t.kind,
    metadata: {
      name: propagatedVersionName(info.target, fed.metadata.name!),
      ...(t.namespaced ? { namespace: fed.metadata.namespace } : {}),
      annotations: { [FEDERATED_TYPE_ANNOTATION]: info.ftcName, [FEDERATED_OBJECT_ANNOTATION]: fed.metadata.name! },
    },
    status,
  } as KubeObject;
}
