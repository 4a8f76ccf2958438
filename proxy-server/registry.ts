// Which agent links serve which cluster. Identity comes from the agent's certificate only (see
// agent-listener.ts), so a link registered under a cluster was proven to belong to it.
import type { AgentIdentity } from '../certs/identity.js';
import type { MuxSession } from '../wire/session.js';
import { DialError } from '../wire/errors.js';

export type CarrierKind = 'tls' | 'ws';

export interface AgentLink {
  /** Unique per process, for logs and the debug endpoint. */
  readonly linkId: number;
  readonly identity: AgentIdentity;
  /** The agent's self-reported instance name: informational, never trusted for routing. */
  readonly instance: string;
  readonly carrier: CarrierKind;
  readonly remoteAddress: string;
  readonly connectedAt: Date;
  readonly session: MuxSession;
}

export interface AgentLinkSummary {
  linkId: number;
  cluster: string;
  tenant: string;
  instance: string;
  carrier: CarrierKind;
  remoteAddress: string;
  connectedAt: string;
  streams: number;
  draining: boolean;
  rttMs: number | null;
}

function isDraining(link: AgentLink): boolean {
  return link.session.remoteDraining || link.session.localDraining;
}

export type ClusterLinkListener = (cluster: string, connected: boolean) => void;

export class AgentRegistry {
  private readonly byCluster = new Map<string, Set<AgentLink>>();
  private readonly listeners = new Set<ClusterLinkListener>();
  /** Clusters that had an agent since start: a dial to one of them is NO_AGENT, not UNKNOWN_CLUSTER. */
  private readonly seenClusters = new Set<string>();
  /** The tenant of the latest agent certificate of each cluster since start (kept after it disconnects). */
  private readonly tenants = new Map<string, string>();
  private readonly startedAt: number;
  /** HA: whether another replica ever had an agent of the cluster (the shared membership store). */
  private seenElsewhere: (cluster: string) => boolean = () => false;

  /**
   * @param rejoinWindowMs after a (re)start the hub has forgotten every cluster while their agents
   *   are still backing off: for this long an unknown name is NO_AGENT (503, retry), not
   *   UNKNOWN_CLUSTER (404, a misconfiguration), so clients don't give up on a restart
   */
  constructor(
    private readonly maxStreamsPerAgent: number,
    private readonly rejoinWindowMs = 0,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.startedAt = now();
  }

  add(link: AgentLink): void {
    const { cluster } = link.identity;
    let links = this.byCluster.get(cluster);
    if (!links) this.byCluster.set(cluster, (links = new Set()));
    links.add(link);
    this.seenClusters.add(cluster);
    this.tenants.set(cluster, link.identity.tenant);
    if (links.size === 1) this.notify(cluster, true);
  }

  remove(link: AgentLink): void {
    const links = this.byCluster.get(link.identity.cluster);
    if (!links?.delete(link)) return;
    if (links.size === 0) {
      this.byCluster.delete(link.identity.cluster);
      this.notify(link.identity.cluster, false);
    }
  }

  /** Whether any agent link of the cluster is up (the federation's health checks use it). */
  isConnected(cluster: string): boolean {
    return (this.byCluster.get(cluster)?.size ?? 0) > 0;
  }

  /**
   * The tenant of the cluster's latest agent certificate since the hub started, also while it is
   * disconnected (the federation checks KubeFedCluster tenant labels against it); undefined: none seen.
   */
  agentTenantOf(cluster: string): string | undefined {
    return this.tenants.get(cluster);
  }

  /** HA replicas: a cluster any replica has seen is NO_AGENT here too, not UNKNOWN_CLUSTER. */
  setSeenElsewhere(seen: (cluster: string) => boolean): void {
    this.seenElsewhere = seen;
  }

  /** Clusters with at least one link on this replica (written to the membership table). */
  connectedClusters(): string[] {
    return [...this.byCluster.keys()];
  }

  /** Called when a cluster's first link registers or its last one goes; returns the unsubscribe. */
  onChange(listener: ClusterLinkListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private notify(cluster: string, connected: boolean): void {
    for (const listener of this.listeners) listener(cluster, connected);
  }

  /** The usable link with the fewest open streams; throws a DialError saying why there is none. */
  pick(cluster: string): AgentLink {
    const links = this.byCluster.get(cluster);
    if (!links || links.size === 0) {
      if (this.seenClusters.has(cluster)) throw new DialError('NO_AGENT', `no agent of cluster ${cluster} is connected`);
      if (this.seenElsewhere(cluster)) throw new DialError('NO_AGENT', `no agent of cluster ${cluster} is connected to this replica or a live peer`);
      const sinceStartMs = this.now() - this.startedAt;
      if (sinceStartMs < this.rejoinWindowMs) {
        throw new DialError('NO_AGENT', `no agent of cluster ${cluster} has registered since the hub started ${Math.round(sinceStartMs / 1000)} s ago; agents may still be reconnecting`);
      }
      throw new DialError('UNKNOWN_CLUSTER', `no agent has ever registered for cluster ${cluster}`);
    }
    let best: AgentLink | undefined;
    let draining = 0;
    let closed = 0;
    for (const link of links) {
      if (link.session.isClosed) {
        closed++;
        continue;
      }
      if (isDraining(link)) {
        draining++;
        continue;
      }
      if (link.session.streamCount >= this.maxStreamsPerAgent) continue;
      if (!best || link.session.streamCount < best.session.streamCount) best = link;
    }
    if (best) return best;
    if (closed === links.size) throw new DialError('NO_AGENT', `no agent of cluster ${cluster} is connected`);
    if (draining + closed === links.size) throw new DialError('AGENT_DRAINING', `every agent of cluster ${cluster} is draining`);
    throw new DialError('STREAM_LIMIT', `every agent of cluster ${cluster} is at its limit of ${this.maxStreamsPerAgent} streams`);
  }

  links(): AgentLink[] {
    return [...this.byCluster.values()].flatMap((links) => [...links]);
  }

  get linkCount(): number {
    let n = 0;
    for (const links of this.byCluster.values()) n += links.size;
    return n;
  }

  summary(): AgentLinkSummary[] {
    return this.links().map((link) => ({
      linkId: link.linkId,
      cluster: link.identity.cluster,
      tenant: link.identity.tenant,
      instance: link.instance,
      carrier: link.carrier,
      remoteAddress: link.remoteAddress,
      connectedAt: link.connectedAt.toISOString(),
      streams: link.session.streamCount,
      draining: isDraining(link),
      rttMs: Number.isNaN(link.session.rttMs) ? null : link.session.rttMs,
    }));
  }
}
