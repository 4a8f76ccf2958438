// The status of a federated object (pure): KubeFed's status.clusters[] and Propagation condition,
// the member objects' status (remoteStatus) when the type collects it, and for workloads the
// replicas summed over clusters. Written back only when it differs from what is stored.
import type { KubeObject } from '../apiserver/storage.js';
import { stableJson } from './desired.js';
import type { PropagationStatus } from './decide.js';

export interface ClusterResult {
  status: PropagationStatus;
  message?: string;
  /** The member object's status (status collection). */
  remoteStatus?: unknown;
  /** Gray release: the revision (of template + overrides) the cluster holds, and whether it is the current one or held back by spec.placementMask. */
  revision?: string;
  rollout?: 'Current' | 'Masked';
}

/** KubeFed's aggregate reasons for the Propagation condition. */
export type AggregateReason = '' | 'CheckClusters' | 'NamespaceNotFederated' | 'ComputePlacementFailed';

export interface StatusInput {
  fed: KubeObject;
  /** Clusters the object is placed in, and every cluster with something to report. */
  results: Map<string, ClusterResult>;
  aggregateReason?: AggregateReason;
  collectStatus: boolean;
  now: string;
}

const REPLICA_FIELDS = ['replicas', 'readyReplicas', 'availableReplicas', 'updatedReplicas'] as const;

interface Condition {
  type: string;
  status: 'True' | 'False';
  reason?: string;
  message?: string;
  lastUpdateTime?: string;
  lastTransitionTime?: string;
}

function conditions(obj: KubeObject): Condition[] {
  const status = obj.status as { conditions?: unknown } | undefined;
  return Array.isArray(status?.conditions) ? (status.conditions as Condition[]) : [];
}

export function federatedStatus(input: StatusInput): Record<string, unknown> {
  const { fed, results } = input;
  const names = [...results.keys()].sort();
  const clusters = names.map((name) => {
    const r = results.get(name)!;
    return {
      name,
      ...(r.status ? { status: r.status } : {}),
      ...(r.message && r.status ? { message: r.message } : {}),
      ...(r.revision ? { revision: r.revision } : {}),
      ...(r.rollout ? { rollout: r.rollout } : {}),
      ...(input.collectStatus && r.remoteStatus !== undefined ? { remoteStatus: r.remoteStatus } : {}),
    };
  });
  const failing = names.filter((n) => results.get(n)!.status !== '');
  const reason: AggregateReason = input.aggregateReason ?? (failing.length > 0 ? 'CheckClusters' : '');
  const ok = reason === '';
  const previous = conditions(fed).find((c) => c.type === 'Propagation');
  const status = ok ? 'True' : 'False';
  const changed = previous?.status !== status || (previous?.reason ?? '') !== reason;
  const condition: Condition = {
    type: 'Propagation',
    status,
    ...(reason ? { reason } : {}),
    ...(failing.length > 0 ? { message: `not propagated to ${failing.map((n) => `${n} (${results.get(n)!.status})`).join(', ')}` } : {}),
    lastUpdateTime: changed ? input.now : (previous?.lastUpdateTime ?? input.now),
    lastTransitionTime: changed ? input.now : (previous?.lastTransitionTime ?? input.now),
  };
  const out: Record<string, unknown> = { observedGeneration: fed.metadata.generation ?? 1, conditions: [condition], clusters };
  const aggregate = aggregateReplicas([...results.values()].map((r) => r.remoteStatus));
  if (aggregate) out.aggregate = aggregate;
  return out;
}

/** Replicas summed over the clusters whose member status reports them (workloads only). */
export function aggregateReplicas(statuses: unknown[]): Record<string, number> | undefined {
  const sums: Record<string, number> = {};
  let any = false;
  for (const s of statuses) {
    if (typeof s !== 'object' || s === null) continue;
    for (const f of REPLICA_FIELDS) {
      const v = (s as Record<string, unknown>)[f];
      if (typeof v === 'number') {
        sums[f] = (sums[f] ?? 0) + v;
        any = true;
      }
    }
  }
  return any ? sums : undefined;
}

/** Whether writing `next` would change the stored status (times of an unchanged condition do not count). */
export function statusDiffers(current: unknown, next: Record<string, unknown>): boolean {
  return stableJson(current ?? {}) !== stableJson(next);
}
