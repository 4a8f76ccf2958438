// Gray release (spec.placementMask), pure: the revision of a federated object's propagated content
// (template + overrides), the snapshot that lets a held-back cluster be re-applied its old
// revision, which revision each placed cluster gets, and the per-cluster applied-revision record
// (a PropagatedVersion's status) with snapshots kept once per revision.
import { createHash } from 'node:crypto';
import type { KubeObject } from '../apiserver/storage.js';
import { stableJson } from './desired.js';

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** What a revision propagates: the template and the overrides, exactly as the federated spec held them. */
export interface Snapshot {
  template?: unknown;
  overrides?: unknown;
}

export function snapshotOf(fed: KubeObject): Snapshot {
  const spec = isObject(fed.spec) ? fed.spec : {};
  return { ...(spec.template !== undefined ? { template: structuredClone(spec.template) } : {}), ...(spec.overrides !== undefined ? { overrides: structuredClone(spec.overrides) } : {}) };
}

/** The revision of a snapshot: changes exactly when the template or the overrides change (placement and mask do not count). */
export function revisionOf(snapshot: Snapshot): string {
  return createHash('sha256').update(stableJson({ template: snapshot.template ?? null, overrides: snapshot.overrides ?? null })).digest('hex').slice(0, 12);
}

/** `fed` with its template and overrides replaced by `snapshot`: what the member of a held-back cluster is computed from. */
export function withSnapshot(fed: KubeObject, snapshot: Snapshot): KubeObject {
  const spec: Record<string, unknown> = { ...(isObject(fed.spec) ? fed.spec : {}) };
  delete spec.template;
  delete spec.overrides;
  if (snapshot.template !== undefined) spec.template = snapshot.template;
  if (snapshot.overrides !== undefined) spec.overrides = snapshot.overrides;
  return { ...fed, spec };
}

/** What a placed cluster is synced to. */
export type Rollout =
  /** The current template/overrides. */
  | { mode: 'current' }
  /** Outside the mask: the revision last applied there (kept, drift repaired back to it). */
  | { mode: 'held'; revision: string }
  /** Outside the mask with nothing known applied: no write at all until the mask lets it in. */
  | { mode: 'withheld' };

export interface RolloutInput {
  inMask: boolean;
  currentRevision: string;
  /** The revision recorded as applied in this cluster, and whether its snapshot is kept. */
  applied?: { revision: string; snapshotKept: boolean };
  /**
   * Whether the member already holds the current content (its desired-hash annotation equals the
   * current desired hash for this cluster): a write that landed before its record did, or an old
   * revision whose content for this cluster is the same as the current one.
   */
  memberIsCurrent: boolean;
}

/**
 * Inside the mask (or no mask): current. Outside: the recorded revision when its snapshot is kept;
 * with no record (a cluster entering the placement while outside the mask, or an object whose
 * record was lost) nothing is written: the mask's promise is that nothing outside it changes, and
 * any older revision would be a guess the user never approved for that cluster.
 */
export function rolloutFor(input: RolloutInput): Rollout {
  if (input.inMask || input.memberIsCurrent) return { mode: 'current' };
  const applied = input.applied;
  if (applied?.revision === input.currentRevision) return { mode: 'current' };
  if (applied?.snapshotKept) return { mode: 'held', revision: applied.revision };
  return { mode: 'withheld' };
}

// ---- the applied-revision record (PropagatedVersion status) --------------------------------------

export interface ClusterVersion {
  clusterName: string;
  /** Hash of the content written there (the member's fedtunnel.io/desired-hash). */
  version: string;
  /** Revision of the federated object that content came from. */
  revision: string;
}

export interface RevisionSnapshot extends Snapshot {
  revision: string;
}

export interface VersionRecord {
  clusterVersions: ClusterVersion[];
  /** One snapshot per revision some cluster holds. */
  revisions: RevisionSnapshot[];
}

export type RecordChange =
  | { kind: 'applied'; cluster: string; version: string; revision: string; snapshot: Snapshot }
  | { kind: 'removed'; cluster: string };

function isClusterVersion(v: unknown): v is ClusterVersion {
  return isObject(v) && typeof v.clusterName === 'string' && typeof v.version === 'string' && typeof v.revision === 'string';
}

/** The record in a stored PropagatedVersion (anything malformed is dropped, never trusted). */
export function recordOf(status: unknown): VersionRecord {
  const s = isObject(status) ? status : {};
  const clusterVersions = Array.isArray(s.clusterVersions) ? s.clusterVersions.filter(isClusterVersion) : [];
  const revisions = Array.isArray(s.revisions) ? (s.revisions.filter((r) => isObject(r) && typeof r.revision === 'string') as RevisionSnapshot[]) : [];
  return { clusterVersions, revisions };
}

/** The record after `changes`: clusters sorted by name, snapshots pruned to the revisions still held. */
export function applyChanges(record: VersionRecord, changes: readonly RecordChange[]): VersionRecord {
  const clusters = new Map(record.clusterVersions.map((c) => [c.clusterName, c]));
  const snapshots = new Map(record.revisions.map((r) => [r.revision, r]));
  for (const change of changes) {
    if (change.kind === 'removed') {
      clusters.delete(change.cluster);
      continue;
    }
    clusters.set(change.cluster, { clusterName: change.cluster, version: change.version, revision: change.revision });
    if (!snapshots.has(change.revision)) snapshots.set(change.revision, { revision: change.revision, ...structuredClone(change.snapshot) });
  }
  const clusterVersions = [...clusters.values()].sort((a, b) => (a.clusterName < b.clusterName ? -1 : a.clusterName > b.clusterName ? 1 : 0));
  const held = new Set(clusterVersions.map((c) => c.revision));
  const revisions = [...snapshots.values()].filter((r) => held.has(r.revision)).sort((a, b) => (a.revision < b.revision ? -1 : 1));
  return { clusterVersions, revisions };
}

export function appliedIn(record: VersionRecord, cluster: string): { revision: string; version: string; snapshot?: Snapshot } | undefined {
  const cv = record.clusterVersions.find((c) => c.clusterName === cluster);
  if (!cv) return undefined;
  const snap = record.revisions.find((r) => r.revision === cv.revision);
  return { revision: cv.revision, version: cv.version, ...(snap ? { snapshot: { ...(snap.template !== undefined ? { template: snap.template } : {}), ...(snap.overrides !== undefined ? { overrides: snap.overrides } : {}) } } : {}) };
}
