// The federation controller: informers on the federation side (clusters, their secrets, type
// configs, every enabled Federated<Kind>) and on each member (managed objects, over the tunnel)
// feed two kinds of work queue:
//   - the object queue: placement, finalizer, deletion completion and status of one federated object;
//   - one queue per member cluster: the sync of one federated object in that cluster (a pure
//     decision over cached state, then at most one write).
// A slow or dead member only fills its own queue: no head-of-line blocking across clusters.
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { Registry } from 'prom-client';
import type { Logger } from '../../common/log.js';
import { ApiError } from '../apiserver/errors.js';
import type { Resources } from '../apiserver/resources.js';
import type { KubeObject } from '../apiserver/storage.js';
import { NAMESPACES, type ResourceType } from '../apiserver/types.js';
import {
  FEDERATED_TYPE_CONFIG,
  KUBEFED_CONFIG,
  KUBEFED_NAMESPACE,
  MANAGED_LABEL,
  SYNC_FINALIZER,
  kubeFedConfigValues,
  typeInfoFromFtc,
  type FederatedTypeInfo,
  type KubeFedConfigValues,
} from '../kubefed/api.js';
import { annotationPolicyOf, RESERVED_ANNOTATIONS, type AnnotationPolicy } from '../kubefed/annotation-policy.js';
import { computePlacement, selectedClusters, type ClusterInfo } from '../kubefed/placement.js';
import { inPlacementMask, placementMaskOf } from '../kubefed/placement-mask.js';
import { annotationChanges } from './annotations.js';
import { namespaceTenant, type Tenancy, type UntenantedPlacement } from '../kubefed/tenancy.js';
import { ClusterManager, type ClusterLinks, type MemberClusterState } from './clusters.js';
import { decide, isDeleting, isOrphaning, memberDeleteOptions, type ClusterAction, type ClusterDecision } from './decide.js';
import { HASH_ANNOTATION, contains, desiredObject, isUpToDate, withRetainedFields } from './desired.js';
import { Informer, objectKeyOf } from './informer.js';
import { MemberError } from './member-client.js';
import { ControllerMetrics } from './metrics.js';
import { PropagatedVersions } from './propagated-versions.js';
import { appliedIn, revisionOf, rolloutFor, snapshotOf, withSnapshot, type RecordChange, type Snapshot } from './rollout.js';
import { localListWatch, memberListWatch } from './sources.js';
import { federatedStatus, statusDiffers, type AggregateReason, type ClusterResult } from './status.js';
import { WorkQueue } from './queue.js';
import type { ClusterDial } from './member-client.js';

/** What happens to a federated object being deleted while a placed cluster is unreachable. */
export interface UnreachableDeletionPolicy {
  /** 'Wait': the deletion waits (status WaitingForRemoval names the cluster); 'Orphan': after `afterMs` the object is left in that cluster. */
  mode: 'Wait' | 'Orphan';
  afterMs: number;
}

export interface ControllerOptions {
  resources: Resources;
  dial: ClusterDial;
  log: Logger;
  metrics: Registry;
  /** The hub's agent registry: a cluster whose last link drops goes Offline at once. */
  links?: ClusterLinks;
  unreachableDeletion?: UnreachableDeletionPolicy;
  /** Concurrent syncs per member cluster unless KubeFedConfig's syncController.maxConcurrentReconciles says otherwise. */
  workersPerCluster?: number;
  memberRequestTimeoutMs?: number;
  /** Where objects of a namespace without a tenant go (README "Tenants"); default 'untenanted'. */
  untenantedPlacement?: UntenantedPlacement;
}

export const DEFAULT_UNREACHABLE_DELETION: UnreachableDeletionPolicy = { mode: 'Wait', afterMs: 5 * 60_000 };

interface TypeState {
  info: FederatedTypeInfo;
  informer: Informer;
  /** When the controller saw each object's current generation (propagation latency). */
  seenAt: Map<string, { generation: number; at: number }>;
  /** The FederatedTypeConfig's spec.annotationPolicy; undefined: KubeFedConfig's applies. */
  annotationPolicy?: AnnotationPolicy;
}

interface ClusterRecord extends ClusterResult {
  lastWritten?: { resourceVersion: string; hash: string };
}

/** What a placed cluster is synced to (gray release): the federated object to decide with, and the revision it carries. */
type ClusterRollout =
  | { mode: 'current' | 'held'; fed: KubeObject; revision: string; snapshot: Snapshot; recorded: { revision: string; version: string } | undefined }
  | { mode: 'withheld' };

const SEP = '\u0000';

function objectKey(ftc: string, objKey: string): string {
  return `${ftc}${SEP}${objKey}`;
}

function splitKey(key: string): { ftc: string; objKey: string } {
  const i = key.indexOf(SEP);
  return { ftc: key.slice(0, i), objKey: key.slice(i + 1) };
}

function nowIso(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}

/** The key of the federated object a member object belongs to (a Namespace X ↔ FederatedNamespace X/X). */
function fedKeyOfMember(info: FederatedTypeInfo, member: KubeObject): string {
  if (isNamespaceType(info)) return `${member.metadata.name}/${member.metadata.name}`;
  return objectKeyOf(member);
}

/** The member cache key of a federated object's member object (FederatedNamespace X/X ↔ Namespace X). */
function memberKeyOf(info: FederatedTypeInfo, fedKey: string): string {
  return isNamespaceType(info) ? fedKey.slice(fedKey.indexOf('/') + 1) : fedKey;
}

function isNamespaceType(info: FederatedTypeInfo): boolean {
  return info.target.group === '' && info.target.plural === 'namespaces';
}

export class FederationController extends EventEmitter {
  private readonly resources: Resources;
  private readonly log: Logger;
  private readonly metrics: ControllerMetrics;
  private readonly clusters: ClusterManager;
  private readonly types = new Map<string, TypeState>();
  private readonly objectQueue = new WorkQueue<string>();
  private readonly clusterQueues = new Map<string, WorkQueue<string>>();
  /** Per cluster: the member client generation the informers were built with, and one informer per type. */
  private readonly memberInformers = new Map<string, { generation: number; byType: Map<string, Informer> }>();
  private readonly results = new Map<string, Map<string, ClusterRecord>>();
  private readonly ftcInformer: Informer;
  private readonly configInformer: Informer;
  /** A Federated<Kind> becomes served (its CRD registered) after its FederatedTypeConfig's event may have been seen. */
  private readonly unsubscribeTypes: () => void;
  /** Federation-side Namespaces: their tenant label places the objects in them (unless the FederatedNamespace sets one). */
  private readonly namespaceInformer: Informer;
  private readonly untenantedPlacement: UntenantedPlacement;
  private readonly unreachableDeletion: UnreachableDeletionPolicy;
  /** Per-cluster applied revisions, in the store (PropagatedVersion): what a held-back cluster keeps, across restarts. */
  private readonly versions: PropagatedVersions;
  private readonly defaultWorkersPerCluster: number;
  /** Workers of a cluster queue, read when the queue starts. */
  private workersPerCluster: number;
  private config: KubeFedConfigValues = kubeFedConfigValues(null);
  private running: Promise<void>[] = [];
  private stopped = false;

  constructor(options: ControllerOptions) {
    super();
    this.resources = options.resources;
    this.log = options.log;
    this.unreachableDeletion = options.unreachableDeletion ?? DEFAULT_UNREACHABLE_DELETION;
    this.untenantedPlacement = options.untenantedPlacement ?? 'untenanted';
    this.defaultWorkersPerCluster = options.workersPerCluster ?? 4;
    this.workersPerCluster = this.defaultWorkersPerCluster;
    this.metrics = ControllerMetrics.of(options.metrics, () => this.queueDepths());
    this.clusters = new ClusterManager({
      resources: this.resources,
      dial: options.dial,
      log: this.log.child({ part: 'clusters' }),
      links: options.links,
      config: () => this.config,
      requestTimeoutMs: options.memberRequestTimeoutMs,
      metrics: this.metrics,
    });
    // Syncs wait for the records: a held-back cluster must never be mistaken for one with nothing applied.
    this.versions = new PropagatedVersions(this.resources, this.log.child({ part: 'versions' }), this.metrics.versionWrites, () => {
      this.requeueAll();
      this.requeueAllSyncs();
      for (const state of this.types.values()) if (state.informer.hasSynced) this.sweepVersions(state);
    });
    this.clusters.on('changed', (name: string) => this.clusterChanged(name));
    this.clusters.on('removed', (name: string) => this.clusterRemoved(name));
    this.ftcInformer = new Informer(localListWatch(this.resources, FEDERATED_TYPE_CONFIG, KUBEFED_NAMESPACE), {
      added: (o) => this.ftcChanged(o),
      updated: (o) => this.ftcChanged(o),
      deleted: (o) => this.ftcRemoved(o),
      failed: (err) => this.log.warn({ err: err.message }, 'type config watch failed; relisting'),
    });
    const recheckTypes = (): void => {
      for (const ftc of this.ftcInformer.list()) if (!this.types.has(ftc.metadata.name!)) this.ftcChanged(ftc);
    };
    // Deferred: the registry calls back in the middle of registering a CRD's versions.
    let recheckQueued = false;
    this.unsubscribeTypes = this.resources.registry.onChange(() => {
      if (recheckQueued || this.stopped) return;
      recheckQueued = true;
      queueMicrotask(() => {
        recheckQueued = false;
        if (!this.stopped) recheckTypes();
      });
    });
    const namespaceChanged = (ns: KubeObject): void => this.requeueNamespace(ns.metadata.name!);
    this.namespaceInformer = new Informer(localListWatch(this.resources, NAMESPACES), { added: namespaceChanged, updated: namespaceChanged, deleted: namespaceChanged });
    this.configInformer = new Informer(localListWatch(this.resources, KUBEFED_CONFIG, KUBEFED_NAMESPACE), {
      added: (o) => this.configChanged(o),
      updated: (o) => this.configChanged(o),
      deleted: () => this.configChanged(null),
    });
  }

  start(): void {
    this.configInformer.start();
    this.versions.start();
    this.namespaceInformer.start();
    this.clusters.start();
    this.ftcInformer.start();
    this.running.push(this.objectQueue.run(8, (key) => this.reconcileObject(key), (key, err) => this.reconcileFailed('object', key, err)));
    this.log.info('federation controller started');
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.ftcInformer.stop();
    this.unsubscribeTypes();
    this.configInformer.stop();
    this.versions.stop();
    this.namespaceInformer.stop();
    for (const t of this.types.values()) t.informer.stop();
    for (const m of this.memberInformers.values()) for (const inf of m.byType.values()) inf.stop();
    this.objectQueue.shutDown();
    for (const q of this.clusterQueues.values()) q.shutDown();
    this.clusters.stop();
    await Promise.all(this.running);
  }

  private queueDepths(): Record<string, number> {
    const out: Record<string, number> = { objects: this.objectQueue.depth };
    for (const [name, q] of this.clusterQueues) out[`cluster:${name}`] = q.depth;
    return out;
  }

  private reconcileFailed(queue: string, key: string, err: unknown): void {
    const { ftc, objKey } = splitKey(key);
    this.log.warn({ queue, type: ftc, object: objKey, err: (err as Error).message }, 'reconcile failed; retrying with backoff');
  }

  // ---- configuration -------------------------------------------------------------------------

  private configChanged(obj: KubeObject | null): void {
    if (obj && obj.metadata.name !== 'kubefed') return;
    const previousPolicy = this.config.annotationPolicy;
    this.config = kubeFedConfigValues(obj);
    // The default policy decides what members of many types carry: they are synced again.
    if (JSON.stringify(previousPolicy) !== JSON.stringify(this.config.annotationPolicy)) this.requeueAll();
    // KubeFed runs maxConcurrentReconciles workers for everything (default 1); here it is per
    // member cluster, and only when set: unset, each cluster gets the --workers default.
    const explicit = (obj?.spec as { syncController?: { maxConcurrentReconciles?: unknown } } | undefined)?.syncController?.maxConcurrentReconciles;
    this.workersPerCluster = typeof explicit === 'number' ? this.config.syncController.maxConcurrentReconciles : this.defaultWorkersPerCluster;
    this.clusters.configChanged();
  }

  // ---- types ---------------------------------------------------------------------------------

  private ftcChanged(ftc: KubeObject): void {
    let info: FederatedTypeInfo;
    try {
      info = typeInfoFromFtc(ftc);
    } catch (err) {
      this.log.warn({ ftc: ftc.metadata.name, err: (err as Error).message }, 'invalid FederatedTypeConfig ignored');
      return;
    }
    const name = ftc.metadata.name!;
    const existing = this.types.get(name);
    const enabled = info.propagation === 'Enabled';
    const fedType = this.resources.registry.lookup(info.federated.group, info.federated.version, info.federated.plural);
    if (existing && (!enabled || JSON.stringify(existing.info) !== JSON.stringify(info))) this.stopType(name);
    if (enabled && fedType && !this.types.has(name)) this.startType(name, info, fedType);
    const state = this.types.get(name);
    if (state) this.annotationPolicyChanged(state, annotationPolicyOf(ftc.spec));
    void this.writeFtcStatus(ftc, enabled && fedType !== undefined);
  }

  /** A type's own policy changed (its FTC was edited): its objects are synced again, without restarting its watches. */
  private annotationPolicyChanged(state: TypeState, policy: AnnotationPolicy | undefined): void {
    if (JSON.stringify(state.annotationPolicy) === JSON.stringify(policy)) return;
    state.annotationPolicy = policy;
    for (const o of state.informer.list()) this.objectQueue.add(objectKey(state.info.ftcName, objectKeyOf(o)));
  }

  /** The policy a type's member objects follow: its FederatedTypeConfig's, else KubeFedConfig's. */
  private annotationPolicy(state: TypeState): AnnotationPolicy {
    return state.annotationPolicy ?? this.config.annotationPolicy;
  }

  private ftcRemoved(ftc: KubeObject): void {
    this.stopType(ftc.metadata.name!);
  }

  private startType(name: string, info: FederatedTypeInfo, fedType: ResourceType): void {
    const state: TypeState = {
      info,
      seenAt: new Map(),
      informer: new Informer(localListWatch(this.resources, fedType), {
        added: (o) => this.fedObjectChanged(name, o),
        updated: (o) => this.fedObjectChanged(name, o),
        deleted: (o) => this.fedObjectChanged(name, o),
        synced: () => {
          if (this.versions.hasSynced) this.sweepVersions(state);
        },
        failed: (err) => this.log.warn({ type: name, err: err.message }, 'federated watch failed; relisting'),
      }),
    };
    this.types.set(name, state);
    state.informer.start();
    for (const cluster of this.clusters.all()) this.ensureMemberInformer(cluster, name, state);
    this.log.info({ type: name, federated: info.federated.kind }, 'propagation running');
  }

  private stopType(name: string): void {
    const state = this.types.get(name);
    if (!state) return;
    state.informer.stop();
    this.types.delete(name);
    for (const m of this.memberInformers.values()) {
      m.byType.get(name)?.stop();
      m.byType.delete(name);
    }
    this.log.info({ type: name }, 'propagation stopped');
  }

  private async writeFtcStatus(ftc: KubeObject, running: boolean): Promise<void> {
    const next = { observedGeneration: ftc.metadata.generation ?? 1, propagationController: running ? 'Running' : 'NotRunning' };
    if (!statusDiffers(ftc.status, next)) return;
    try {
      await this.resources.update(FEDERATED_TYPE_CONFIG, ftc.metadata.namespace, ftc.metadata.name!, { ...ftc, status: next }, { status: true });
      this.metrics.statusWrites.inc({ kind: 'FederatedTypeConfig' });
    } catch (err) {
      if (!(err instanceof ApiError && (err.reason === 'Conflict' || err.reason === 'NotFound'))) this.log.warn({ ftc: ftc.metadata.name, err: (err as Error).message }, 'type config status write failed');
    }
  }

  // ---- federated objects ---------------------------------------------------------------------

  private fedObjectChanged(ftc: string, obj: KubeObject): void {
    const state = this.types.get(ftc);
    const key = objectKeyOf(obj);
    const generation = obj.metadata.generation ?? 0;
    // Status writes do not move the generation: latency counts from the spec change.
    if (state && state.seenAt.get(key)?.generation !== generation) state.seenAt.set(key, { generation, at: performance.now() });
    this.objectQueue.add(objectKey(ftc, key));
    // A FederatedNamespace's placement and tenant bound every namespaced object in it.
    if (state && isNamespaceType(state.info)) this.requeueNamespace(obj.metadata.name!);
  }

  private requeueNamespace(namespace: string): void {
    for (const [name, state] of this.types) {
      if (!state.info.target.namespaced && !isNamespaceType(state.info)) continue;
      for (const o of state.informer.list()) if (o.metadata.namespace === namespace) this.objectQueue.add(objectKey(name, objectKeyOf(o)));
    }
  }

  private namespaceState(): TypeState | undefined {
    for (const state of this.types.values()) if (isNamespaceType(state.info)) return state;
    return undefined;
  }

  /** Placement of one federated object: its own, ∩ its FederatedNamespace's for namespaced types, ∩ its tenant's clusters. */
  private placement(state: TypeState, fed: KubeObject, clusters: ClusterInfo[]): { placed: Set<string>; reason?: AggregateReason } {
    const ns = fed.metadata.namespace;
    const fedNs = ns === undefined ? undefined : this.namespaceState()?.informer.get(`${ns}/${ns}`);
    const tenancy: Tenancy = {
      tenant: ns === undefined ? undefined : namespaceTenant(fedNs, this.namespaceInformer.get(ns)),
      untenanted: this.untenantedPlacement,
    };
    if (!state.info.target.namespaced || isNamespaceType(state.info)) return { placed: computePlacement(fed, clusters, undefined, tenancy) };
    if (!fedNs) return { placed: new Set(), reason: 'NamespaceNotFederated' };
    return { placed: computePlacement(fed, clusters, selectedClusters(fedNs, clusters), tenancy) };
  }

  private async reconcileObject(key: string): Promise<void> {
    const { ftc, objKey } = splitKey(key);
    const state = this.types.get(ftc);
    // Status shows each cluster's applied revision, and a gone object's record is deleted: both
    // need the records (their informer's first list requeues everything).
    if (!state || !this.versions.hasSynced) return;
    const fed = state.informer.get(objKey);
    const kind = state.info.federated.kind;
    if (!fed) {
      // Gone from the federation: its per-cluster records go too (member objects were handled by the finalizer).
      this.results.delete(key);
      state.seenAt.delete(objKey);
      // Deleting a federated object is never held by its mask; its record goes with it.
      const slash = objKey.indexOf('/');
      const [ns, name] = slash < 0 ? [undefined, objKey] : [objKey.slice(0, slash), objKey.slice(slash + 1)];
      await this.versions.remove(state.info, ns, name);
      return;
    }
    const t = this.federatedType(state);
    if (!isDeleting(fed) && !(fed.metadata.finalizers ?? []).includes(SYNC_FINALIZER)) {
      await this.resources.update(t, fed.metadata.namespace, fed.metadata.name!, { ...fed, metadata: { ...fed.metadata, finalizers: [...(fed.metadata.finalizers ?? []), SYNC_FINALIZER] } });
      return; // the update comes back as an event
    }
    const clusters = this.clusters.all();
    const { placed, reason } = this.placement(state, fed, this.placeable());
    for (const c of clusters) this.clusterQueue(c.name).add(key);

    const records = this.results.get(key) ?? new Map<string, ClusterRecord>();
    const results = new Map<string, ClusterResult>();
    // Until a cluster's first sync (after a restart), its rollout comes from the stored record.
    const stored = this.versions.hasSynced ? this.versions.record(state.info, fed) : undefined;
    const currentRevision = revisionOf(snapshotOf(fed));
    for (const c of clusters) {
      const r = records.get(c.name);
      const member = this.memberObject(c.name, state.info, objKey);
      if (placed.has(c.name) || (r && r.status !== '') || member) {
        const applied = stored && placed.has(c.name) && r?.rollout === undefined ? appliedIn(stored, c.name) : undefined;
        const rollout = r?.rollout ?? (applied ? (applied.revision === currentRevision ? 'Current' : 'Masked') : undefined);
        results.set(c.name, { status: r?.status ?? (c.ready ? '' : 'ClusterNotReady'), message: r?.message, remoteStatus: (member?.status as unknown) ?? undefined, revision: r?.revision ?? applied?.revision, rollout });
      }
    }

    if (isDeleting(fed)) {
      const waiting = this.deletionPending(state, fed, objKey, clusters, results);
      if (!waiting) {
        await this.removeFinalizer(t, fed);
        this.metrics.reconciles.inc({ kind, result: 'deleted' });
        return;
      }
    }
    await this.writeStatus(t, fed, results, reason, state.info.statusCollection);
    this.metrics.reconciles.inc({ kind, result: 'ok' });
  }

  /** Whether a deletion still waits for some cluster (per-cluster status says which and why). */
  private deletionPending(state: TypeState, fed: KubeObject, objKey: string, clusters: MemberClusterState[], results: Map<string, ClusterResult>): boolean {
    const orphanAll = isOrphaning(fed);
    let waiting = false;
    const deletingSince = Date.parse(fed.metadata.deletionTimestamp!);
    for (const c of clusters) {
      const informer = this.memberInformers.get(c.name)?.byType.get(state.info.ftcName);
      const member = informer?.get(memberKeyOf(state.info, objKey));
      const knownAbsent = informer?.hasSynced === true && member === undefined;
      if (knownAbsent) {
        results.delete(c.name);
        continue;
      }
      if (c.ready) {
        waiting = true;
        results.set(c.name, { status: 'WaitingForRemoval', message: orphanAll ? 'removing the managed label' : 'deleting' });
        continue;
      }
      // Unreachable: the documented policy decides.
      const overdue = Date.now() - deletingSince >= this.unreachableDeletion.afterMs;
      if (this.unreachableDeletion.mode === 'Orphan' && overdue) {
        this.log.warn({ type: state.info.ftcName, object: objKey, cluster: c.name }, 'cluster unreachable during deletion: object left (orphaned) in that cluster by policy');
        results.delete(c.name);
        continue;
      }
      waiting = true;
      const policy =
        this.unreachableDeletion.mode === 'Orphan'
          ? `cluster unreachable; the object will be orphaned there ${Math.max(0, Math.ceil((deletingSince + this.unreachableDeletion.afterMs - Date.now()) / 1000))}s from now (policy Orphan)`
          : 'cluster unreachable; deletion waits until it returns (policy Wait)';
      results.set(c.name, { status: 'WaitingForRemoval', message: policy });
      if (this.unreachableDeletion.mode === 'Orphan') this.objectQueue.addAfter(objectKey(state.info.ftcName, objKey), Math.max(10, deletingSince + this.unreachableDeletion.afterMs - Date.now()));
    }
    return waiting;
  }

  /** Clusters placement may choose: every joined cluster but those being unjoined. */
  private placeable(): ClusterInfo[] {
    return this.clusters.all().filter((c) => !c.unjoining).map((c) => ({ name: c.name, labels: c.labels, agentTenant: c.agentTenant }));
  }

  /**
   * An unjoining cluster is done when, for every enabled type, its member watch has synced and
   * holds no managed object (the per-cluster syncs deleted them, as for any cluster not placed).
   */
  private checkUnjoin(name: string): void {
    const c = this.clusters.get(name);
    if (!c?.unjoining || !c.ready) return;
    const informers = this.memberInformers.get(name)?.byType;
    for (const ftc of this.types.keys()) {
      const inf = informers?.get(ftc);
      if (!inf?.hasSynced || inf.list().length > 0) return;
    }
    void this.clusters.finishUnjoin(name).catch((err: unknown) => this.log.warn({ cluster: name, err: (err as Error).message }, 'unjoin: finalizer removal failed'));
  }

  private federatedType(state: TypeState): ResourceType {
    const f = state.info.federated;
    return this.resources.registry.lookup(f.group, f.version, f.plural) ?? f;
  }

  private async removeFinalizer(t: ResourceType, fed: KubeObject): Promise<void> {
    const finalizers = (fed.metadata.finalizers ?? []).filter((f) => f !== SYNC_FINALIZER);
    try {
      await this.resources.update(t, fed.metadata.namespace, fed.metadata.name!, { ...fed, metadata: { ...fed.metadata, finalizers } });
    } catch (err) {
      if (!(err instanceof ApiError && err.reason === 'NotFound')) throw err;
    }
  }

  private async writeStatus(t: ResourceType, fed: KubeObject, results: Map<string, ClusterResult>, reason: AggregateReason | undefined, collectStatus: boolean): Promise<void> {
    const next = federatedStatus({ fed, results, aggregateReason: reason, collectStatus, now: nowIso() });
    if (!statusDiffers(fed.status, next)) return;
    try {
      await this.resources.update(t, fed.metadata.namespace, fed.metadata.name!, { ...fed, status: next }, { status: true });
      this.metrics.statusWrites.inc({ kind: t.kind });
    } catch (err) {
      // A newer version is on its way to the informer; it is reconciled again.
      if (err instanceof ApiError && (err.reason === 'Conflict' || err.reason === 'NotFound')) return;
      throw err;
    }
  }

  // ---- member clusters -----------------------------------------------------------------------

  private clusterQueue(cluster: string): WorkQueue<string> {
    let q = this.clusterQueues.get(cluster);
    if (!q) {
      q = new WorkQueue<string>();
      this.clusterQueues.set(cluster, q);
      this.running.push(q.run(this.workersPerCluster, (key) => this.syncCluster(cluster, key), (key, err) => this.reconcileFailed(`cluster:${cluster}`, key, err)));
    }
    return q;
  }

  private memberObject(cluster: string, info: FederatedTypeInfo, objKey: string): KubeObject | undefined {
    return this.memberInformers.get(cluster)?.byType.get(info.ftcName)?.get(memberKeyOf(info, objKey));
  }

  private clusterChanged(name: string): void {
    const cluster = this.clusters.get(name);
    if (!cluster) return;
    this.metrics.clusterReady.set({ cluster: name }, cluster.ready ? 1 : 0);
    // A new client (joined, credentials changed): member watches start over with it.
    const current = this.memberInformers.get(name);
    if (current && current.generation !== cluster.clientGeneration) {
      for (const inf of current.byType.values()) inf.stop();
      this.memberInformers.delete(name);
    }
    for (const [ftc, state] of this.types) this.ensureMemberInformer(cluster, ftc, state);
    if (cluster.ready) for (const inf of this.memberInformers.get(name)?.byType.values() ?? []) inf.retryNow();
    // Ready (again), or its labels changed: everything may need syncing there.
    this.requeueAll();
    if (cluster.unjoining) {
      for (const [ftc, state] of this.types) for (const o of state.informer.list()) this.clusterQueue(name).add(objectKey(ftc, objectKeyOf(o)));
      this.checkUnjoin(name);
    }
  }

  private ensureMemberInformer(cluster: MemberClusterState, ftc: string, state: TypeState): void {
    if (!cluster.client) return;
    let entry = this.memberInformers.get(cluster.name);
    if (!entry) this.memberInformers.set(cluster.name, (entry = { generation: cluster.clientGeneration, byType: new Map() }));
    const byType = entry.byType;
    if (byType.has(ftc)) return;
    const name = cluster.name;
    const enqueue = (member: KubeObject): void => {
      const key = objectKey(ftc, fedKeyOfMember(state.info, member));
      this.clusterQueue(name).add(key);
      this.objectQueue.add(key);
    };
    const informer = new Informer(memberListWatch(cluster.client, state.info.target, `${MANAGED_LABEL}=true`), {
      added: enqueue,
      updated: enqueue,
      deleted: (member) => {
        enqueue(member);
        this.checkUnjoin(name);
      },
      synced: () => {
        for (const o of state.informer.list()) this.clusterQueue(name).add(objectKey(ftc, objectKeyOf(o)));
        this.checkUnjoin(name);
      },
      failed: (err) => this.log.debug({ cluster: name, type: ftc, err: err.message }, 'member watch ended; relisting'),
    });
    byType.set(ftc, informer);
    informer.start();
  }

  private clusterRemoved(name: string): void {
    for (const inf of this.memberInformers.get(name)?.byType.values() ?? []) inf.stop();
    this.memberInformers.delete(name);
    this.clusterQueues.get(name)?.shutDown();
    this.clusterQueues.delete(name);
    for (const records of this.results.values()) records.delete(name);
    this.metrics.clusterReady.remove({ cluster: name });
    this.metrics.tenantMismatch.remove({ cluster: name });
    this.requeueAll();
  }

  private requeueAll(): void {
    for (const [ftc, state] of this.types) for (const o of state.informer.list()) this.objectQueue.add(objectKey(ftc, objectKeyOf(o)));
  }

  /** Records of this type's objects that are gone (deleted while nothing watched them) are deleted. */
  private sweepVersions(state: TypeState): void {
    const exists = (namespace: string | undefined, name: string): boolean => state.informer.get(namespace ? `${namespace}/${name}` : name) !== undefined;
    this.versions.sweep(state.info, exists).catch((err: unknown) => this.log.warn({ type: state.info.ftcName, err: (err as Error).message }, 'propagated version sweep failed'));
  }

  private requeueAllSyncs(): void {
    for (const [ftc, state] of this.types) for (const o of state.informer.list()) for (const c of this.clusters.all()) this.clusterQueue(c.name).add(objectKey(ftc, objectKeyOf(o)));
  }

  private record(key: string, cluster: string, next: ClusterRecord): void {
    let records = this.results.get(key);
    if (!records) this.results.set(key, (records = new Map()));
    const prev = records.get(cluster);
    records.set(cluster, next);
    if (!prev || prev.status !== next.status || prev.message !== next.message || prev.revision !== next.revision || prev.rollout !== next.rollout) this.objectQueue.add(key);
  }

  /** One federated object in one cluster: decide from the caches, then at most one write. */
  private async syncCluster(cluster: string, key: string): Promise<void> {
    const { ftc, objKey } = splitKey(key);
    const state = this.types.get(ftc);
    const c = this.clusters.get(cluster);
    if (!state || !c) return;
    const fed = state.informer.get(objKey);
    if (!fed || !this.versions.hasSynced) return;
    const informer = this.memberInformers.get(cluster)?.byType.get(ftc);
    const ready = c.ready && c.client !== null && informer?.hasSynced === true;
    const { placed } = this.placement(state, fed, this.placeable());
    const prev = this.results.get(key)?.get(cluster);
    const member = informer?.get(memberKeyOf(state.info, objKey));
    const rollout = placed.has(cluster) && !isDeleting(fed) ? this.rolloutIn(state, fed, c, member) : undefined;
    if (rollout) this.metrics.rolloutSyncs.inc({ cluster, mode: rollout.mode });
    const shown: Pick<ClusterRecord, 'revision' | 'rollout'> = !rollout ? {} : rollout.mode === 'withheld' ? { rollout: 'Masked' } : { revision: rollout.revision, rollout: rollout.mode === 'current' ? 'Current' : 'Masked' };
    const decision: ClusterDecision =
      rollout?.mode === 'withheld'
        ? { action: { kind: 'none' }, status: ready ? '' : 'ClusterNotReady', ...(ready ? {} : { message: `cluster ${cluster} is not ready` }) }
        : decide({ fed: rollout?.fed ?? fed, target: state.info.target, cluster, clusterLabels: c.labels, placed: placed.has(cluster), ready, member, lastWritten: prev?.lastWritten, annotationPolicy: this.annotationPolicy(state) });
    const { action } = decision;
    if (action.kind === 'none') {
      this.metrics.clusterSyncs.inc({ cluster, action: 'none', result: decision.status || 'ok' });
      if (placed.has(cluster) || member || decision.status) this.record(key, cluster, { status: decision.status, message: decision.message, lastWritten: prev?.lastWritten, ...shown });
      else this.results.get(key)?.delete(cluster);
      // Up to date: make sure the record says so (a write whose record was lost, an adopted object).
      const hash = member?.metadata.annotations?.[HASH_ANNOTATION];
      if (rollout && rollout.mode !== 'withheld' && decision.status === '' && hash) this.noteVersion(state, fed, key, cluster, rollout, hash);
      if (ready && !placed.has(cluster) && !member) this.noteRemoved(state, fed, key, cluster);
      return;
    }
    const log = this.log.child({ type: ftc, object: objKey, cluster });
    try {
      const written = await this.write(c, state, fed, action, member);
      this.metrics.clusterSyncs.inc({ cluster, action: action.kind, result: 'ok' });
      const seen = state.seenAt.get(objKey);
      if (seen && (action.kind === 'create' || action.kind === 'update')) this.metrics.propagationLatency.observe({ cluster }, (performance.now() - seen.at) / 1000);
      log.debug({ action: action.kind }, 'member written');
      if (action.kind === 'update' && member) this.countAnnotationWrites(cluster, member, action.object);
      this.queueOf(cluster).forget(key);
      const lastWritten = written && 'hash' in action ? { resourceVersion: written.metadata.resourceVersion ?? '', hash: action.hash } : undefined;
      this.record(key, cluster, { status: action.kind === 'delete' || action.kind === 'unmanage' ? 'WaitingForRemoval' : '', lastWritten, ...shown });
      if ('hash' in action && rollout && rollout.mode !== 'withheld') this.noteVersion(state, fed, key, cluster, rollout, action.hash);
      if (action.kind === 'delete' || action.kind === 'unmanage') this.noteRemoved(state, fed, key, cluster);
    } catch (err) {
      const status = failureStatus(action, err);
      const code = err instanceof MemberError ? err.code : 'Error';
      this.metrics.clusterSyncs.inc({ cluster, action: action.kind, result: 'error' });
      this.metrics.memberErrors.inc({ cluster, code });
      log.warn({ action: action.kind, code, err: (err as Error).message }, 'member write failed');
      this.record(key, cluster, { status, message: (err as Error).message, ...shown });
      this.queueOf(cluster).addRateLimited(key);
    }
  }

  /** Managed annotation keys an update set or removed, and whether annotations were all it changed. */
  private countAnnotationWrites(cluster: string, member: KubeObject, write: KubeObject): void {
    const { set, removed } = annotationChanges(member.metadata.annotations, write.metadata.annotations);
    const managed = (keys: string[]): number => keys.filter((k) => !RESERVED_ANNOTATIONS.has(k)).length;
    if (managed(set) > 0) this.metrics.annotationWrites.inc({ cluster, change: 'set' }, managed(set));
    if (managed(removed) > 0) this.metrics.annotationWrites.inc({ cluster, change: 'removed' }, managed(removed));
    if (contains(member, { ...write, metadata: { ...write.metadata, annotations: undefined } })) this.metrics.annotationOnlyUpdates.inc({ cluster });
  }

  /**
   * Which revision a placed cluster gets: the current one inside spec.placementMask (or without a
   * mask); outside it, the revision recorded as applied there, or nothing at all (rolloutFor).
   */
  private rolloutIn(state: TypeState, fed: KubeObject, cluster: MemberClusterState, member: KubeObject | undefined): ClusterRollout {
    const snapshot = snapshotOf(fed);
    const revision = revisionOf(snapshot);
    const record = this.versions.record(state.info, fed);
    const applied = appliedIn(record, cluster.name);
    const recorded = applied ? { revision: applied.revision, version: applied.version } : undefined;
    const inMask = inPlacementMask(placementMaskOf(fed), { name: cluster.name, labels: cluster.labels });
    let memberIsCurrent = false;
    const memberHash = member?.metadata.annotations?.[HASH_ANNOTATION];
    if (!inMask && memberHash !== undefined) {
      try {
        memberIsCurrent = desiredObject(fed, state.info.target, cluster.name, this.annotationPolicy(state), cluster.labels).hash === memberHash;
      } catch {
        // Overrides that do not apply: decide() reports them for the current revision.
      }
    }
    const r = rolloutFor({ inMask, currentRevision: revision, applied: applied && { revision: applied.revision, snapshotKept: applied.snapshot !== undefined }, memberIsCurrent });
    if (r.mode === 'withheld') return r;
    if (r.mode === 'held') return { mode: 'held', fed: withSnapshot(fed, applied!.snapshot!), revision: r.revision, snapshot: applied!.snapshot!, recorded };
    return { mode: 'current', fed, revision, snapshot, recorded };
  }

  /** Records (in the store, once) that `cluster` holds `version` of the rollout's revision. */
  private noteVersion(state: TypeState, fed: KubeObject, key: string, cluster: string, rollout: Extract<ClusterRollout, { revision: string }>, version: string): void {
    if (rollout.recorded?.revision === rollout.revision && rollout.recorded.version === version) return;
    this.storeRecord(state, fed, key, cluster, { kind: 'applied', cluster, version, revision: rollout.revision, snapshot: rollout.snapshot });
  }

  private noteRemoved(state: TypeState, fed: KubeObject, key: string, cluster: string): void {
    if (!appliedIn(this.versions.record(state.info, fed), cluster)) return;
    this.storeRecord(state, fed, key, cluster, { kind: 'removed', cluster });
  }

  private storeRecord(state: TypeState, fed: KubeObject, key: string, cluster: string, change: RecordChange): void {
    this.versions.change(state.info, fed, change).catch((err: unknown) => {
      this.log.warn({ type: state.info.ftcName, object: objectKeyOf(fed), cluster, err: (err as Error).message }, 'propagated version write failed; syncing again');
      this.queueOf(cluster).addRateLimited(key);
    });
  }

  private queueOf(cluster: string): WorkQueue<string> {
    return this.clusterQueue(cluster);
  }

  private async write(c: MemberClusterState, state: TypeState, fed: KubeObject, action: ClusterAction, member: KubeObject | undefined): Promise<KubeObject | null> {
    const client = c.client!;
    const t = state.info.target;
    switch (action.kind) {
      case 'create':
        try {
          return await client.create(t, action.object);
        } catch (err) {
          if (!(err instanceof MemberError && err.code === 'AlreadyExists')) throw err;
          return this.adopt(c, state, action.object, action.hash);
        }
      case 'update':
        return client.update(t, action.object);
      case 'delete':
        await client.delete(t, member!.metadata.namespace, member!.metadata.name!, memberDeleteOptions(fed));
        return null;
      case 'unmanage':
        return client.update(t, action.object);
      case 'none':
        return null;
    }
  }

  /** An object of that name exists but is not managed: adopt it (adoptResources) or report why not. */
  private async adopt(c: MemberClusterState, state: TypeState, desired: KubeObject, hash: string): Promise<KubeObject> {
    const client = c.client!;
    const t = state.info.target;
    const existing = await client.get(t, desired.metadata.namespace, desired.metadata.name!);
    if (!existing) throw new MemberError('Conflict', 'the object appeared and vanished during creation');
    const write = withRetainedFields(desired, existing, t, false, this.annotationPolicy(state));
    // Ours already (our own create, not yet in the member cache): nothing to adopt.
    if (existing.metadata.labels?.[MANAGED_LABEL] === 'true') return isUpToDate(existing, write, hash) ? existing : client.update(t, write);
    if (existing.metadata.labels?.[MANAGED_LABEL] === 'false') throw new AdoptionRefused('ManagedLabelFalse', `the member object is labelled ${MANAGED_LABEL}=false`);
    if (this.config.syncController.adoptResources !== 'Enabled') throw new AdoptionRefused('AlreadyExists', 'the object already exists in the member and adoptResources is Disabled');
    return client.update(t, write);
  }
}

class AdoptionRefused extends Error {
  constructor(
    readonly status: 'ManagedLabelFalse' | 'AlreadyExists',
    message: string,
  ) {
    super(message);
  }
}

function failureStatus(action: ClusterAction, err: unknown): ClusterResult['status'] {
  if (err instanceof AdoptionRefused) return err.status;
  const timedOut = err instanceof MemberError && (err.code === 'Timeout' || err.code === 'Unreachable');
  switch (action.kind) {
    case 'create':
      return timedOut ? 'CreationTimedOut' : 'CreationFailed';
    case 'update':
      return timedOut ? 'UpdateTimedOut' : 'UpdateFailed';
    case 'delete':
      return timedOut ? 'DeletionTimedOut' : 'DeletionFailed';
    case 'unmanage':
      return timedOut ? 'LabelRemovalTimedOut' : 'LabelRemovalFailed';
    default:
      return 'RetrievalFailed';
  }
}

