// The per-cluster applied-revision records of the gray release, in the store (PropagatedVersion /
// ClusterPropagatedVersion), so a controller that restarts still knows which revision each cluster
// holds and can re-apply it. Read through informers (no request per sync); changes for one federated
// object are coalesced and written in one update, and only when the record actually changes.
import type { Counter } from 'prom-client';
import type { Logger } from '../../common/log.js';
import { ApiError } from '../apiserver/errors.js';
import type { Resources } from '../apiserver/resources.js';
import type { KubeObject } from '../apiserver/storage.js';
import type { ResourceType } from '../apiserver/types.js';
import type { FederatedTypeInfo } from '../kubefed/api.js';
import { CLUSTER_PROPAGATED_VERSION, FEDERATED_OBJECT_ANNOTATION, FEDERATED_TYPE_ANNOTATION, PROPAGATED_VERSION, propagatedVersionFor, propagatedVersionName, propagatedVersionType } from '../kubefed/propagated-version.js';
import { stableJson } from './desired.js';
import { Informer } from './informer.js';
import { applyChanges, recordOf, type RecordChange, type VersionRecord } from './rollout.js';
import { localListWatch } from './sources.js';

interface Pending {
  changes: RecordChange[];
  waiters: Array<{ resolve: () => void; reject: (err: unknown) => void }>;
}

const MAX_ATTEMPTS = 5;

function isReason(err: unknown, ...reasons: string[]): boolean {
  return err instanceof ApiError && reasons.includes(err.reason);
}

export class PropagatedVersions {
  private readonly informers: Map<ResourceType, Informer>;
  /** What this controller last wrote or read per record: newer than the cache right after a write. */
  private readonly known = new Map<string, KubeObject | null>();
  private readonly pending = new Map<string, Pending>();
  private readonly flushing = new Set<string>();

  constructor(
    private readonly resources: Resources,
    private readonly log: Logger,
    private readonly writes: Counter<'result'>,
    onSynced: () => void,
  ) {
    let synced = 0;
    this.informers = new Map(
      [PROPAGATED_VERSION, CLUSTER_PROPAGATED_VERSION].map((t) => [
        t,
        new Informer(localListWatch(resources, this.registered(t)), {
          // The cache caught up with a deletion of ours: nothing to remember any more.
          deleted: (o) => {
            const key = `${t.plural}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
            if (this.known.get(key) === null) this.known.delete(key);
          },
          synced: () => {
            if (++synced === 2) onSynced();
          },
          failed: (err) => log.warn({ type: t.kind, err: err.message }, 'propagated version watch failed; relisting'),
        }),
      ]),
    );
  }

  start(): void {
    for (const inf of this.informers.values()) inf.start();
  }

  stop(): void {
    for (const inf of this.informers.values()) inf.stop();
  }

  get hasSynced(): boolean {
    return [...this.informers.values()].every((i) => i.hasSynced);
  }

  private registered(t: ResourceType): ResourceType {
    return this.resources.registry.lookup(t.group, t.version, t.plural) ?? t;
  }

  private keyOf(info: FederatedTypeInfo, namespace: string | undefined, name: string): { t: ResourceType; namespace: string | undefined; name: string; key: string } {
    const t = propagatedVersionType(info.target);
    const pvName = propagatedVersionName(info.target, name);
    const ns = t.namespaced ? namespace : undefined;
    return { t, namespace: ns, name: pvName, key: `${t.plural}/${ns ?? ''}/${pvName}` };
  }

  /**
   * The newest of the cache and what this controller last wrote (by resourceVersion). Only this
   * controller writes records, so one it deleted (null) stays deleted even while the cache still
   * shows it.
   */
  private current(t: ResourceType, namespace: string | undefined, name: string, key: string): KubeObject | null {
    const cached = this.informers.get(t)!.get(namespace ? `${namespace}/${name}` : name) ?? null;
    if (!this.known.has(key)) return cached;
    const mine = this.known.get(key)!;
    if (!mine || !cached) return mine;
    return Number(mine.metadata.resourceVersion) >= Number(cached.metadata.resourceVersion) ? mine : cached;
  }

  /** The applied-revision record of a federated object (empty when none is stored). */
  record(info: FederatedTypeInfo, fed: KubeObject): VersionRecord {
    const { t, namespace, name, key } = this.keyOf(info, fed.metadata.namespace, fed.metadata.name!);
    return recordOf(this.current(t, namespace, name, key)?.status);
  }

  /** Applies `change` to the record of `fed`; resolves once it is stored (with whatever else was pending for that record). */
  change(info: FederatedTypeInfo, fed: KubeObject, change: RecordChange): Promise<void> {
    const ref = this.keyOf(info, fed.metadata.namespace, fed.metadata.name!);
    let p = this.pending.get(ref.key);
    if (!p) this.pending.set(ref.key, (p = { changes: [], waiters: [] }));
    p.changes.push(change);
    const done = new Promise<void>((resolve, reject) => p.waiters.push({ resolve, reject }));
    if (!this.flushing.has(ref.key)) void this.flush(info, fed, ref);
    return done;
  }

  private async flush(info: FederatedTypeInfo, fed: KubeObject, ref: { t: ResourceType; namespace: string | undefined; name: string; key: string }): Promise<void> {
    this.flushing.add(ref.key);
    try {
      for (let p = this.pending.get(ref.key); p; p = this.pending.get(ref.key)) {
        this.pending.delete(ref.key);
        try {
          await this.write(info, fed, ref, p.changes);
          for (const w of p.waiters) w.resolve();
        } catch (err) {
          for (const w of p.waiters) w.reject(err);
        }
      }
    } finally {
      this.flushing.delete(ref.key);
    }
  }

  private async write(info: FederatedTypeInfo, fed: KubeObject, ref: { t: ResourceType; namespace: string | undefined; name: string; key: string }, changes: RecordChange[]): Promise<void> {
    const t = this.registered(ref.t);
    let base = this.current(ref.t, ref.namespace, ref.name, ref.key);
    for (let attempt = 1; ; attempt++) {
      const before = recordOf(base?.status);
      const next = applyChanges(before, changes);
      if (stableJson(before) === stableJson(next)) return;
      if (!base && next.clusterVersions.length === 0) return;
      try {
        const written = base
          ? await this.resources.update(t, ref.namespace, ref.name, { ...base, status: next })
          : await this.resources.create(t, ref.namespace, propagatedVersionFor(info, fed, next), { skipNamespaceCheck: true });
        this.known.set(ref.key, written);
        this.writes.inc({ result: 'ok' });
        return;
      } catch (err) {
        if (attempt >= MAX_ATTEMPTS || !isReason(err, 'Conflict', 'AlreadyExists', 'NotFound')) {
          this.writes.inc({ result: 'error' });
          throw err;
        }
        this.writes.inc({ result: 'conflict' });
        base = await this.fetch(t, ref);
      }
    }
  }

  private async fetch(t: ResourceType, ref: { namespace: string | undefined; name: string; key: string }): Promise<KubeObject | null> {
    try {
      const fresh = await this.resources.get(t, ref.namespace, ref.name);
      this.known.set(ref.key, fresh);
      return fresh;
    } catch (err) {
      if (!isReason(err, 'NotFound')) throw err;
      this.known.set(ref.key, null);
      return null;
    }
  }

  /** Deletes the record of a federated object that is gone (idempotent). */
  async remove(info: FederatedTypeInfo, namespace: string | undefined, name: string): Promise<void> {
    const ref = this.keyOf(info, namespace, name);
    const existing = this.current(ref.t, ref.namespace, ref.name, ref.key);
    if (!existing) {
      this.known.delete(ref.key);
      return;
    }
    try {
      await this.resources.delete(this.registered(ref.t), ref.namespace, ref.name);
      this.known.set(ref.key, null);
      this.log.debug({ record: ref.key }, 'propagated version deleted');
    } catch (err) {
      if (!isReason(err, 'NotFound')) throw err;
      this.known.set(ref.key, null);
    }
  }

  /**
   * Deletes the records of `info`'s federated objects that no longer exist (`exists` answers from
   * the federated informer): objects deleted while their type was not propagated, or whose
   * finalizer someone removed by hand. Call with both caches synced.
   */
  async sweep(info: FederatedTypeInfo, exists: (namespace: string | undefined, name: string) => boolean): Promise<void> {
    const t = propagatedVersionType(info.target);
    for (const pv of this.informers.get(t)!.list()) {
      const annotations = pv.metadata.annotations ?? {};
      const fedName = annotations[FEDERATED_OBJECT_ANNOTATION];
      if (annotations[FEDERATED_TYPE_ANNOTATION] !== info.ftcName || fedName === undefined) continue;
      const namespace = t.namespaced ? pv.metadata.namespace : undefined;
      if (exists(namespace, fedName)) continue;
      this.log.info({ type: info.ftcName, record: pv.metadata.name, namespace }, 'propagated version of a federated object that is gone: deleted');
      await this.remove(info, namespace, fedName);
    }
  }
}
