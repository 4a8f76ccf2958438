// The per-cluster sync decision (pure): given the federated object, whether the cluster is placed
// and ready, and the managed member object from the member cache, what single write (if any) brings
// the member to the desired state, and the KubeFed status to report for that cluster.
import type { KubeObject } from '../apiserver/storage.js';
import { DELETE_OPTION_ANNOTATION, MANAGED_LABEL, ORPHAN_ANNOTATION, type TargetType } from '../kubefed/api.js';
import type { AnnotationPolicy } from '../kubefed/annotation-policy.js';
import { OverrideError } from '../kubefed/overrides.js';
import { desiredObject, isUpToDate, withRetainedFields } from './desired.js';

/** KubeFed's per-cluster propagation status values ('' = propagated). */
export type PropagationStatus =
  | ''
  | 'ClusterNotReady'
  | 'WaitingForRemoval'
  | 'ApplyOverridesFailed'
  | 'CreationFailed'
  | 'UpdateFailed'
  | 'DeletionFailed'
  | 'LabelRemovalFailed'
  | 'RetrievalFailed'
  | 'AlreadyExists'
  | 'ManagedLabelFalse'
  | 'CreationTimedOut'
  | 'UpdateTimedOut'
  | 'DeletionTimedOut'
  | 'LabelRemovalTimedOut';

export type ClusterAction =
  | { kind: 'none' }
  | { kind: 'create'; object: KubeObject; hash: string }
  | { kind: 'update'; object: KubeObject; hash: string }
  | { kind: 'delete' }
  /** Orphan: keep the member object, drop the managed label. */
  | { kind: 'unmanage'; object: KubeObject };

export interface ClusterDecision {
  action: ClusterAction;
  /** Status when no write is needed (or why none can be made). */
  status: PropagationStatus;
  message?: string;
}

export interface DecisionInput {
  fed: KubeObject;
  target: TargetType;
  cluster: string;
  /** The cluster's KubeFedCluster labels (selector-based overrides match them). */
  clusterLabels?: Record<string, string>;
  placed: boolean;
  ready: boolean;
  /** The managed object in the member (undefined: none). */
  member: KubeObject | undefined;
  /** What this controller last wrote there and got back (fast "up to date" check). */
  lastWritten?: { resourceVersion: string; hash: string };
  /** Which annotations propagate and which member annotations are never touched (default: none propagate). */
  annotationPolicy?: AnnotationPolicy;
}

export function isOrphaning(fed: KubeObject): boolean {
  return fed.metadata.annotations?.[ORPHAN_ANNOTATION] === 'true';
}

export interface MemberDeleteOptions {
  propagationPolicy: 'Orphan' | 'Background' | 'Foreground';
  gracePeriodSeconds?: number;
}

export class DeleteOptionError extends Error {}

/**
 * How member objects are deleted: KubeFed's `kubefed.io/deleteoption` annotation (JSON
 * DeleteOptions: propagationPolicy, gracePeriodSeconds), Background by default. A bad annotation
 * throws DeleteOptionError (reported as DeletionFailed for the cluster, never guessed at).
 */
export function memberDeleteOptions(fed: KubeObject): MemberDeleteOptions {
  const raw = fed.metadata.annotations?.[DELETE_OPTION_ANNOTATION];
  if (raw === undefined) return { propagationPolicy: 'Background' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new DeleteOptionError(`${DELETE_OPTION_ANNOTATION} is not JSON`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new DeleteOptionError(`${DELETE_OPTION_ANNOTATION} must be a JSON object (DeleteOptions)`);
  const { propagationPolicy = 'Background', gracePeriodSeconds } = parsed as { propagationPolicy?: unknown; gracePeriodSeconds?: unknown };
  if (propagationPolicy !== 'Orphan' && propagationPolicy !== 'Background' && propagationPolicy !== 'Foreground') throw new DeleteOptionError(`${DELETE_OPTION_ANNOTATION}: propagationPolicy must be Orphan, Background or Foreground`);
  if (gracePeriodSeconds !== undefined && !(typeof gracePeriodSeconds === 'number' && Number.isInteger(gracePeriodSeconds) && gracePeriodSeconds >= 0)) throw new DeleteOptionError(`${DELETE_OPTION_ANNOTATION}: gracePeriodSeconds must be a whole number ≥ 0`);
  return { propagationPolicy, ...(gracePeriodSeconds !== undefined ? { gracePeriodSeconds } : {}) };
}

export function isDeleting(fed: KubeObject): boolean {
  return fed.metadata.deletionTimestamp !== undefined;
}

function retainsReplicas(fed: KubeObject): boolean {
  return (fed.spec as { retainReplicas?: unknown } | undefined)?.retainReplicas === true;
}

/** The member object without our managed label (orphaning keeps everything else). */
export function unmanaged(member: KubeObject): KubeObject {
  const out = structuredClone(member);
  const labels = { ...out.metadata.labels };
  delete labels[MANAGED_LABEL];
  out.metadata.labels = labels;
  return out;
}

export function decide(input: DecisionInput): ClusterDecision {
  const { fed, target, cluster, member } = input;
  if (!input.ready) return { action: { kind: 'none' }, status: 'ClusterNotReady', message: `cluster ${cluster} is not ready` };
  const wanted = input.placed && !isDeleting(fed);
  if (!wanted) {
    if (!member) return { action: { kind: 'none' }, status: '' };
    if (isOrphaning(fed)) return { action: { kind: 'unmanage', object: unmanaged(member) }, status: 'WaitingForRemoval' };
    return { action: { kind: 'delete' }, status: 'WaitingForRemoval' };
  }
  let desired;
  try {
    desired = desiredObject(fed, target, cluster, input.annotationPolicy, input.clusterLabels);
  } catch (err) {
    if (err instanceof OverrideError) return { action: { kind: 'none' }, status: 'ApplyOverridesFailed', message: err.message };
    throw err;
  }
  if (!member) return { action: { kind: 'create', object: desired.object, hash: desired.hash }, status: '' };
  const last = input.lastWritten;
  if (last && last.resourceVersion === member.metadata.resourceVersion && last.hash === desired.hash) return { action: { kind: 'none' }, status: '' };
  const write = withRetainedFields(desired.object, member, target, retainsReplicas(fed), input.annotationPolicy);
  if (isUpToDate(member, write, desired.hash)) return { action: { kind: 'none' }, status: '' };
  return { action: { kind: 'update', object: write, hash: desired.hash }, status: '' };
}
