// Member clusters as the controller sees them: one MemberClient per KubeFedCluster (rebuilt when
// the cluster's spec or its Secret changes), health from /healthz probes through the tunnel at
// KubeFedConfig's period and thresholds, and at once from the hub's agent registry (a cluster whose
// last agent link drops is Offline before any probe could tell). KubeFedCluster status is written
// only when a condition or the version changes.
//
// Tenants: the registry also knows the tenant of each cluster's agent certificate. A cluster
// without a tenant label gets it injected; one whose label disagrees is Ready=False (reason
// TenantMismatch) whatever its probes say, so the controller neither creates nor deletes anything
// there until an admin fixes the label or the certificate.
import { EventEmitter } from 'node:events';
import type { Logger } from '../../common/log.js';
import { ApiError } from '../apiserver/errors.js';
import type { Resources } from '../apiserver/resources.js';
import type { KubeObject } from '../apiserver/storage.js';
import { SECRETS } from '../apiserver/types.js';
import { KUBEFED_CLUSTER, KUBEFED_NAMESPACE, TENANT_LABEL, UNJOIN_FINALIZER, type KubeFedConfigValues } from '../kubefed/api.js';
import { labelTenant, mismatchMessage, tenantMismatch } from '../kubefed/tenancy.js';
import { stableJson } from './desired.js';
import { clusterConditions, HealthTracker, withTenantMismatch, type HealthState } from './health.js';
import { Informer } from './informer.js';
import { MemberClient, memberConfig, MemberConfigError, type ClusterDial } from './member-client.js';
import type { ControllerMetrics } from './metrics.js';
import { localListWatch } from './sources.js';

/** The hub's view of agent links (the proxy-server's registry), injected. */
export interface ClusterLinks {
  isConnected(cluster: string): boolean;
  /** Calls back when a cluster's first link comes up or its last goes away; returns an unsubscribe. */
  onChange(listener: (cluster: string, connected: boolean) => void): () => void;
  /** The tenant of the cluster's agent certificate (the latest agent seen since the hub started), if any. */
  agentTenantOf?(cluster: string): string | undefined;
}

export interface MemberClusterState {
  readonly name: string;
  readonly labels: Record<string, string>;
  /** The tenant of the cluster's agent certificate, when the hub has seen its agent. */
  readonly agentTenant: string | undefined;
  /** Ready by its probes and its tenant label agrees with its agent (a mismatched cluster is never Ready). */
  readonly ready: boolean;
  readonly client: MemberClient | null;
  /** Changes whenever a new client replaces the old one. */
  readonly clientGeneration: number;
  /** Being unjoined with fedctl unjoin --delete-propagated: placed nowhere, its objects deleted. */
  readonly unjoining: boolean;
}

interface Cluster extends MemberClusterState {
  name: string;
  labels: Record<string, string>;
  agentTenant: string | undefined;
  ready: boolean;
  client: MemberClient | null;
  clientGeneration: number;
  unjoining: boolean;
  configKey: string;
  configError: string | null;
  /** The tenant label disagreed with the agent at the last check (a change is logged and re-decides readiness). */
  tenantMismatch: boolean;
  health: HealthTracker;
  version: string | undefined;
  probeTimer: NodeJS.Timeout | null;
  probing: boolean;
}

export interface ClusterManagerOptions {
  resources: Resources;
  dial: ClusterDial;
  log: Logger;
  links?: ClusterLinks;
  config: () => KubeFedConfigValues;
  requestTimeoutMs?: number;
  metrics: ControllerMetrics;
}

let generations = 0;

export class ClusterManager extends EventEmitter {
  private readonly clusters = new Map<string, Cluster>();
  private readonly clusterInformer: Informer;
  private readonly secretInformer: Informer;
  private unsubscribe: (() => void) | null = null;
  private stopped = false;

  constructor(private readonly options: ClusterManagerOptions) {
    super();
    const { resources } = options;
    this.clusterInformer = new Informer(localListWatch(resources, KUBEFED_CLUSTER, KUBEFED_NAMESPACE), {
      added: (o) => this.clusterChanged(o),
      updated: (o) => this.clusterChanged(o),
      deleted: (o) => this.clusterRemoved(o.metadata.name!),
    });
    this.secretInformer = new Informer(localListWatch(resources, SECRETS, KUBEFED_NAMESPACE), {
      added: (s) => this.secretChanged(s),
      updated: (s) => this.secretChanged(s),
      deleted: (s) => this.secretChanged(s),
    });
  }

  start(): void {
    this.unsubscribe = this.options.links?.onChange((cluster, connected) => this.linkChanged(cluster, connected)) ?? null;
    // Secrets first, so a cluster's first client is built with its credentials.
    this.secretInformer.start();
    this.clusterInformer.start();
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe?.();
    this.clusterInformer.stop();
    this.secretInformer.stop();
    for (const c of this.clusters.values()) {
      if (c.probeTimer) clearTimeout(c.probeTimer);
      c.client?.close();
    }
    this.clusters.clear();
  }

  all(): MemberClusterState[] {
    return [...this.clusters.values()];
  }

  get(name: string): MemberClusterState | undefined {
    return this.clusters.get(name);
  }

  /** The member holds nothing propagated any more: the unjoin completes (the KubeFedCluster goes). */
  async finishUnjoin(name: string): Promise<void> {
    const obj = this.clusterInformer.get(`${KUBEFED_NAMESPACE}/${name}`);
    if (!obj || !(obj.metadata.finalizers ?? []).includes(UNJOIN_FINALIZER)) return;
    const finalizers = (obj.metadata.finalizers ?? []).filter((f) => f !== UNJOIN_FINALIZER);
    try {
      await this.options.resources.update(KUBEFED_CLUSTER, KUBEFED_NAMESPACE, name, { ...obj, metadata: { ...obj.metadata, finalizers } });
      this.options.log.info({ cluster: name }, 'cluster unjoined; what was propagated there is deleted');
    } catch (err) {
      if (!(err instanceof ApiError && (err.reason === 'Conflict' || err.reason === 'NotFound'))) throw err;
    }
  }

  /** KubeFedConfig changed: thresholds apply from the next probe, the period from now. */
  configChanged(): void {
    for (const c of this.clusters.values()) {
      c.health.setThresholds(this.options.config().clusterHealthCheck);
      this.schedule(c, 0);
    }
  }

  private secretChanged(secret: KubeObject): void {
    for (const obj of this.clusterInformer.list()) {
      if ((obj.spec as { secretRef?: { name?: string } } | undefined)?.secretRef?.name === secret.metadata.name) this.clusterChanged(obj);
    }
  }

  private clusterChanged(obj: KubeObject): void {
    if (this.stopped) return;
    const name = obj.metadata.name!;
    const secretName = (obj.spec as { secretRef?: { name?: string } } | undefined)?.secretRef?.name;
    const secret = secretName ? (this.secretInformer.get(`${KUBEFED_NAMESPACE}/${secretName}`) ?? null) : null;
    const configKey = stableJson([obj.spec, secret?.data, secret?.metadata.resourceVersion]);
    let c = this.clusters.get(name);
    if (!c) {
      c = {
        name,
        labels: {},
        agentTenant: undefined,
        ready: false,
        client: null,
        clientGeneration: 0,
        unjoining: false,
        configKey: '',
        configError: null,
        tenantMismatch: false,
        health: new HealthTracker(this.options.config().clusterHealthCheck),
        version: undefined,
        probeTimer: null,
        probing: false,
      };
      this.clusters.set(name, c);
    }
    c.labels = { ...(obj.metadata.labels ?? {}) };
    c.unjoining = Boolean(obj.metadata.deletionTimestamp) && (obj.metadata.finalizers ?? []).includes(UNJOIN_FINALIZER);
    this.checkTenant(c, obj);
    if (c.configKey !== configKey) {
      c.configKey = configKey;
      c.client?.close();
      c.client = null;
      c.clientGeneration = ++generations;
      try {
        const config = memberConfig(obj, secret);
        if ((obj.spec as { proxyURL?: string }).proxyURL) this.options.log.warn({ cluster: name }, 'spec.proxyURL is ignored: members are reached only through their agent');
        c.client = new MemberClient(config, this.options.dial, { log: this.options.log.child({ cluster: name }), requestTimeoutMs: this.options.requestTimeoutMs });
        c.configError = null;
      } catch (err) {
        if (!(err instanceof MemberConfigError)) throw err;
        c.configError = err.message;
        this.setHealth(c, c.health.malformed(err.message));
      }
      if (c.client) this.schedule(c, 0);
    }
    this.emit('changed', name);
  }

  private clusterRemoved(name: string): void {
    const c = this.clusters.get(name);
    if (!c) return;
    if (c.probeTimer) clearTimeout(c.probeTimer);
    c.client?.close();
    this.clusters.delete(name);
    this.emit('removed', name);
  }

  private linkChanged(name: string, connected: boolean): void {
    const c = this.clusters.get(name);
    if (!c) return;
    const obj = this.clusterInformer.get(`${KUBEFED_NAMESPACE}/${name}`);
    if (connected && obj) this.checkTenant(c, obj);
    if (!c.client) return;
    if (!connected) this.setHealth(c, c.health.linkLost());
    // Link back: probe at once rather than at the next period.
    else this.schedule(c, 0);
  }

  private schedule(c: Cluster, delayMs: number): void {
    if (this.stopped || !c.client) return;
    if (c.probeTimer) clearTimeout(c.probeTimer);
    c.probeTimer = setTimeout(() => {
      c.probeTimer = null;
      void this.probe(c);
    }, delayMs);
  }

  private async probe(c: Cluster): Promise<void> {
    const client = c.client;
    if (!client || c.probing) return;
    c.probing = true;
    const { periodSeconds, timeoutSeconds } = this.options.config().clusterHealthCheck;
    try {
      if (this.options.links && !this.options.links.isConnected(c.name)) {
        this.setHealth(c, c.health.linkLost());
        return;
      }
      try {
        await client.healthz(timeoutSeconds * 1000);
        if (!c.ready || c.version === undefined) c.version = await client.version().catch(() => c.version);
        this.setHealth(c, c.health.probed({ ok: true }));
      } catch (err) {
        this.options.metrics.memberErrors.inc({ cluster: c.name, code: (err as { code?: string }).code ?? 'Error' });
        this.setHealth(c, c.health.probed({ ok: false, reachable: (err as { status?: number }).status !== undefined, message: (err as Error).message }));
      }
    } finally {
      c.probing = false;
      if (this.clusters.get(c.name) === c && c.client === client) this.schedule(c, periodSeconds * 1000);
    }
  }

  /**
   * The agent's tenant against the label: injects the label when absent, and re-decides readiness
   * when a mismatch appears or goes (reported in the status, the log and the mismatch gauge).
   */
  private checkTenant(c: Cluster, obj: KubeObject): void {
    const before = c.tenantMismatch;
    c.agentTenant = this.options.links?.agentTenantOf?.(c.name);
    const after = tenantMismatch(c);
    c.tenantMismatch = after;
    this.options.metrics.tenantMismatch.set({ cluster: c.name }, after ? 1 : 0);
    if (after && !before) this.options.log.warn({ cluster: c.name, label: labelTenant(c.labels), agentTenant: c.agentTenant }, `tenant mismatch: ${mismatchMessage(c)}`);
    if (!after && before) this.options.log.info({ cluster: c.name, tenant: labelTenant(c.labels) }, 'tenant mismatch resolved');
    if (after !== before) this.setHealth(c, c.health.current);
    if (c.agentTenant !== undefined && labelTenant(c.labels) === undefined && !obj.metadata.deletionTimestamp) void this.injectTenant(obj, c.agentTenant);
  }

  /** A write of the hub itself (no user): admission lets it set the label an admin-only rule guards. */
  private async injectTenant(obj: KubeObject, tenant: string): Promise<void> {
    const name = obj.metadata.name!;
    try {
      await this.options.resources.update(KUBEFED_CLUSTER, KUBEFED_NAMESPACE, name, { ...obj, metadata: { ...obj.metadata, labels: { ...(obj.metadata.labels ?? {}), [TENANT_LABEL]: tenant } } });
      this.options.log.info({ cluster: name, tenant }, "tenant label injected from the agent's certificate");
    } catch (err) {
      // Conflict: a newer version is on its way to the informer, and is checked again.
      if (!(err instanceof ApiError && (err.reason === 'Conflict' || err.reason === 'NotFound'))) this.options.log.warn({ cluster: name, err: (err as Error).message }, 'tenant label injection failed');
    }
  }

  private setHealth(c: Cluster, state: HealthState): void {
    const ready = state.phase === 'Ready' && !tenantMismatch(c);
    const changed = ready !== c.ready;
    c.ready = ready;
    if (changed) {
      this.options.log.info({ cluster: c.name, phase: state.phase, reason: state.reason }, ready ? 'cluster ready' : 'cluster not ready');
      this.emit('changed', c.name);
    }
    void this.writeStatus(c, state);
  }

  private async writeStatus(c: Cluster, state: HealthState): Promise<void> {
    const obj = this.clusterInformer.get(`${KUBEFED_NAMESPACE}/${c.name}`);
    if (!obj) return;
    const current = (obj.status ?? {}) as { conditions?: unknown[]; kubernetesVersion?: string };
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const healthConditions = clusterConditions(state, (current.conditions ?? []) as never[], now);
    const conditions = tenantMismatch(c) ? withTenantMismatch(healthConditions, (current.conditions ?? []) as never[], mismatchMessage(c), now) : healthConditions;
    const next: Record<string, unknown> = { ...current, conditions };
    if (c.version) next.kubernetesVersion = c.version;
    // Probe times alone are not a change worth a write (KubeFed's status write loop, kubefed#1373).
    const strip = (s: unknown): string => stableJson(JSON.parse(JSON.stringify(s ?? {}), (k, v) => (k === 'lastProbeTime' ? undefined : v)));
    if (strip(current) === strip(next)) return;
    try {
      await this.options.resources.update(KUBEFED_CLUSTER, KUBEFED_NAMESPACE, c.name, { ...obj, status: next }, { status: true });
      this.options.metrics.statusWrites.inc({ kind: 'KubeFedCluster' });
    } catch (err) {
      if (!(err instanceof ApiError && (err.reason === 'Conflict' || err.reason === 'NotFound'))) this.options.log.warn({ cluster: c.name, err: (err as Error).message }, 'cluster status write failed');
    }
  }
}
