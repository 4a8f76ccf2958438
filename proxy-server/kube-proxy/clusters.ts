// Joined clusters as the /clusters proxy sees them: each KubeFedCluster with its credential Secret
// (kube-federation-system, decrypted by the store's encryption layer) turned into a MemberConfig
// once, when either changes — two informers on the embedded federation, so no request reads the
// store. Per cluster its HTTP/2 sessions (member-sessions.ts: every plain request and watch a
// stream of one TLS-over-tunnel connection) and, for members that speak only HTTP/1.1, a keep-alive
// pool of TLS-over-tunnel connections (TunnelAgent); both rebuilt when the config changes.
// Upgrades get a fresh HTTP/1.1 connection of their own.
import type { Logger } from 'pino';
import type { Resources } from '../../federation/apiserver/resources.js';
import type { KubeObject } from '../../federation/apiserver/storage.js';
import { SECRETS } from '../../federation/apiserver/types.js';
import { KUBEFED_CLUSTER, KUBEFED_NAMESPACE } from '../../federation/kubefed/api.js';
import { labelTenant } from '../../federation/kubefed/tenancy.js';
import { Informer } from '../../federation/controller/informer.js';
import { localListWatch } from '../../federation/controller/sources.js';
import { memberConfig, type MemberConfig } from '../../federation/controller/member-config.js';
import { TunnelAgent, type ClusterDial } from '../../federation/controller/tunnel-agent.js';
import { MemberSessions } from './member-sessions.js';

export interface JoinedCluster {
  name: string;
  /** The KubeFedCluster's fedtunnel.io/tenant label. */
  tenantLabel: string | undefined;
  /** How to reach and authenticate to it, or why that cannot be worked out. */
  config: MemberConfig | null;
  configError: string | null;
  /** Changes whenever the KubeFedCluster or its Secret changes (pools are rebuilt). */
  version: string;
}

/**
 * Idle pooled connections kept per cluster. Connections at once are not capped: a watch holds its
 * connection for as long as it runs, so a cap would leave the next watch (or GET) queued forever.
 * The agent's stream limit and the hub's pending-dial limit bound them instead.
 */
const POOL_IDLE_SOCKETS = 64;
export const KUBE_PROXY_REQUESTER = 'kube-proxy';

export class ClusterDirectory {
  private readonly clusters = new Map<string, JoinedCluster>();
  private readonly clusterInformer: Informer;
  private readonly secretInformer: Informer;
  private readonly pools = new Map<string, { version: string; agent: TunnelAgent }>();
  private readonly sessions = new Map<string, { version: string; sessions: MemberSessions }>();
  private readonly synced: Promise<void>;

  constructor(
    resources: Resources,
    private readonly dial: ClusterDial,
    private readonly log: Logger,
    private readonly dialTimeoutMs: number,
  ) {
    let clustersSynced!: () => void;
    let secretsSynced!: () => void;
    this.synced = Promise.all([new Promise<void>((r) => (clustersSynced = r)), new Promise<void>((r) => (secretsSynced = r))]).then(() => undefined);
    this.clusterInformer = new Informer(localListWatch(resources, KUBEFED_CLUSTER, KUBEFED_NAMESPACE), {
      added: (o) => this.rebuild(o),
      updated: (o) => this.rebuild(o),
      deleted: (o) => this.remove(o.metadata.name!),
      synced: clustersSynced,
    });
    this.secretInformer = new Informer(localListWatch(resources, SECRETS, KUBEFED_NAMESPACE), {
      added: (s) => this.secretChanged(s),
      updated: (s) => this.secretChanged(s),
      deleted: (s) => this.secretChanged(s),
      synced: secretsSynced,
    });
  }

  start(): void {
    this.secretInformer.start();
    this.clusterInformer.start();
  }

  stop(): void {
    this.clusterInformer.stop();
    this.secretInformer.stop();
    for (const pool of this.pools.values()) pool.agent.destroy();
    this.pools.clear();
    for (const entry of this.sessions.values()) entry.sessions.destroy();
    this.sessions.clear();
  }

  /** Resolves once both informers listed (at once after start-up): before that no cluster is known. */
  ready(): Promise<void> {
    return this.synced;
  }

  get(name: string): JoinedCluster | undefined {
    return this.clusters.get(name);
  }

  /** The keep-alive pool of a joined cluster with a usable config. */
  pool(cluster: JoinedCluster & { config: MemberConfig }): TunnelAgent {
    const current = this.pools.get(cluster.name);
    if (current?.version === cluster.version) return current.agent;
    if (current) retire(current.agent);
    const agent = new TunnelAgent(cluster.config, this.dial, { maxSockets: Infinity, maxFreeSockets: POOL_IDLE_SOCKETS, dialTimeoutMs: this.dialTimeoutMs, requester: KUBE_PROXY_REQUESTER });
    this.pools.set(cluster.name, { version: cluster.version, agent });
    return agent;
  }

  /** The HTTP/2 sessions of a joined cluster with a usable config. */
  http2(cluster: JoinedCluster & { config: MemberConfig }): MemberSessions {
    const current = this.sessions.get(cluster.name);
    if (current?.version === cluster.version) return current.sessions;
    current?.sessions.retire();
    const sessions = new MemberSessions(cluster.config, this.dial, { dialTimeoutMs: this.dialTimeoutMs, requester: KUBE_PROXY_REQUESTER, log: this.log });
    this.sessions.set(cluster.name, { version: cluster.version, sessions });
    return sessions;
  }

  /** A one-connection agent (no keep-alive) for an upgrade: its socket leaves with the 101. */
  upgradeAgent(cluster: JoinedCluster & { config: MemberConfig }): TunnelAgent {
    return new TunnelAgent(cluster.config, this.dial, { maxSockets: 1, dialTimeoutMs: this.dialTimeoutMs, requester: KUBE_PROXY_REQUESTER, keepAlive: false });
  }

  private rebuild(obj: KubeObject): void {
    const name = obj.metadata.name!;
    const secretName = (obj.spec as { secretRef?: { name?: unknown } } | undefined)?.secretRef?.name;
    const secret = typeof secretName === 'string' ? this.secretInformer.get(`${KUBEFED_NAMESPACE}/${secretName}`) : undefined;
    let config: MemberConfig | null = null;
    let configError: string | null = null;
    try {
      config = memberConfig(obj, secret);
    } catch (error) {
      configError = (error as Error).message;
      this.log.warn({ cluster: name, err: configError }, 'kube-proxy: cluster config not usable');
    }
    // The spec and the Secret make the config: status writes (health, every probe period at worst)
    // and label changes must not retire the pool, whose connections carry open watches.
    const version = `${JSON.stringify(obj.spec ?? {})}/${secret?.metadata.resourceVersion ?? '-'}`;
    this.clusters.set(name, { name, tenantLabel: labelTenant(obj.metadata.labels), config, configError, version });
  }

  private remove(name: string): void {
    this.clusters.delete(name);
    const pool = this.pools.get(name);
    if (pool) retire(pool.agent);
    this.pools.delete(name);
    this.sessions.get(name)?.sessions.retire();
    this.sessions.delete(name);
  }

  private secretChanged(secret: KubeObject): void {
    for (const obj of this.clusterInformer.list()) {
      const ref = (obj.spec as { secretRef?: { name?: unknown } } | undefined)?.secretRef?.name;
      if (ref === secret.metadata.name) this.rebuild(obj);
    }
  }
}

/**
 * A pool whose config changed or whose cluster left: idle connections close now; requests in
 * flight (watches, logs -f) keep theirs until they end, and those close instead of going back.
 */
function retire(agent: TunnelAgent): void {
  (agent as unknown as { keepAlive: boolean }).keepAlive = false;
  for (const sockets of Object.values(agent.freeSockets)) for (const socket of sockets ?? []) socket.destroy();
}
