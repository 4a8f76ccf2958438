// The types federated out of the box: what our members serve (namespaces, configmaps, secrets,
// services, serviceaccounts, deployments.apps), with the FederatedTypeConfigs `kubefedctl enable`
// would write for them (names exactly KubeFed's: "namespaces", "deployments.apps", ...). Pure.
import type { KubeObject } from '../apiserver/storage.js';
import { MEMBER_TYPES, type ResourceType } from '../apiserver/types.js';
import { federatedTypeConfigFor, type TargetType } from './api.js';

export function targetTypeOf(t: ResourceType): TargetType {
  return { group: t.group, version: t.version, kind: t.kind, plural: t.plural, namespaced: t.namespaced };
}

export const DEFAULT_TARGET_TYPES: readonly TargetType[] = MEMBER_TYPES.map(targetTypeOf);

/** Workloads whose member status is worth collecting (remoteStatus, replicas summed over clusters). */
const STATUS_COLLECTED = new Set(['deployments.apps']);

export function defaultFederatedTypeConfigs(): KubeObject[] {
  return DEFAULT_TARGET_TYPES.map((t) => {
    const ftc = federatedTypeConfigFor(t);
    if (STATUS_COLLECTED.has(ftc.metadata.name!)) (ftc.spec as Record<string, unknown>).statusCollection = 'Enabled';
    return ftc;
  });
}
