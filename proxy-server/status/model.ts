// The status page's data (pure): what the hub knows now (agents per replica, dial failures,
// replicas and the controller lease, federation health and propagation), the throughput/RTT
// history, and the view one user may see of it. No I/O: the collector feeds it, the SSE stream
// and the JSON endpoint send what viewFor() returns.
import type { AgentLinkSummary } from '../registry.js';

/**
 * One agent link as a replica sees it (the registry's summary without the cluster, which groups
 * the links). `replica` is the hub instance holding the link.
 */
export interface AgentView extends Omit<AgentLinkSummary, 'cluster'> {
  replica: string;
  /** Carrier bytes since the link came up, from the agent / to the agent. */
  bytesIn: number;
  bytesOut: number;
}

export interface DialFailure {
  at: string;
  code: string;
  message: string;
  replica: string;
}

export interface ClusterView {
  name: string;
  agents: AgentView[];
  /** The latest dial failures, newest first. */
  errors: DialFailure[];
}

export interface ReplicaView {
  instance: string;
  /** The replica that answered this request. */
  self: boolean;
  /** When this replica started; null for peers (the membership table does not record it). */
  startedAt: string | null;
  /** HA: the address agents dial to reach the replica (--advertise-agent-address). */
  address?: string;
  /** HA: how many clusters the replica reported agent links for at its latest heartbeat. */
  agentClusters?: number;
}

/**
 * Who runs the federation controller: `mode` "lease": the holder of the store's controller lease
 * (null while nobody holds it); "off": this hub runs no controller.
 */
export interface LeaseView {
  mode: 'off' | 'lease';
  holder: string | null;
  note: string;
}

export interface ClusterHealthView {
  name: string;
  /** KubeFedCluster conditions: Ready and Offline status ("True"/"False"/"Unknown"), or "" when the controller has not written them yet. */
  ready: string;
  offline: string;
  reason: string;
  message: string;
  lastProbeTime: string;
}

export interface PropagationView {
  cluster: string;
  /** '' when propagated, else KubeFed's per-cluster status (e.g. ClusterNotReady, WaitingForRemoval). */
  status: string;
  message: string;
}

export interface FederatedObjectView {
  kind: string;
  group: string;
  plural: string;
  namespace: string;
  name: string;
  /** The Propagation condition: "True", "False", or "" before the controller wrote one. */
  propagation: string;
  reason: string;
  clusters: PropagationView[];
}

export interface FederationView {
  enabled: boolean;
  clusters: ClusterHealthView[];
  objects: FederatedObjectView[];
  /** More federated objects exist than the page shows (kubectl lists them all). */
  truncated: boolean;
  /** Why the federation could not be read, if it could not. */
  error?: string;
}

/** Everything the hub shows, before filtering for a viewer. */
export interface HubState {
  replicas: ReplicaView[];
  lease: LeaseView;
  clusters: ClusterView[];
  federation: FederationView;
}

/** One point of the history: per cluster, the RTT (best link) and carrier throughput in bytes/s. */
export interface HistorySample {
  t: number;
  clusters: Record<string, { rttMs: number | null; inBps: number; outBps: number }>;
}

/** A full snapshot as sent to a viewer: state plus the history the page plots. */
export interface Snapshot extends HubState {
  user: string;
  generatedAt: string;
  sampleIntervalMs: number;
  history: HistorySample[];
}

/** What a viewer may see; built from RBAC by the caller (proxy-server/status/access.ts). */
export interface Access {
  /** Verb proxy on clusters.core.kubefed.io named `cluster`. */
  mayReach(cluster: string): boolean;
  /** Verb list on a federated type in a namespace ('' for a cluster-scoped type). */
  mayList(group: string, plural: string, namespace: string): boolean;
}

/**
 * The part of the state a viewer may see: clusters (agents, errors, health, history) only where
 * RBAC lets them proxy; federated objects only of types they may list, with the per-cluster rows
 * of reachable clusters. Replicas and the lease holder are the hub's own facts, shown to every
 * authenticated user.
 */
export function viewFor(state: HubState, access: Access): HubState {
  const reach = memo(access.mayReach);
  return {
    replicas: state.replicas,
    lease: state.lease,
    clusters: state.clusters.filter((c) => reach(c.name)),
    federation: {
      ...state.federation,
      clusters: state.federation.clusters.filter((c) => reach(c.name)),
      objects: state.federation.objects
        .filter((o) => access.mayList(o.group, o.plural, o.namespace))
        .map((o) => ({ ...o, clusters: o.clusters.filter((c) => reach(c.cluster)) })),
    },
  };
}

export function historyFor(samples: readonly HistorySample[], access: Access): HistorySample[] {
  const reach = memo(access.mayReach);
  return samples.map((s) => ({ t: s.t, clusters: Object.fromEntries(Object.entries(s.clusters).filter(([name]) => reach(name))) }));
}

/** What one viewer is sent at a tick: their view of the state if it changed since `lastState`, and the new history point. */
export interface ViewerUpdate {
  /** The JSON of the viewer's state now (the next `lastState`). */
  stateJson: string;
  changed: boolean;
  sample: HistorySample | undefined;
}

export function viewerUpdate(lastState: string, state: HubState, sample: HistorySample | undefined, access: Access): ViewerUpdate {
  const stateJson = JSON.stringify(viewFor(state, access));
  return { stateJson, changed: stateJson !== lastState, sample: sample && historyFor([sample], access)[0] };
}

function memo(f: (cluster: string) => boolean): (cluster: string) => boolean {
  const seen = new Map<string, boolean>();
  return (cluster) => {
    let v = seen.get(cluster);
    if (v === undefined) seen.set(cluster, (v = f(cluster)));
    return v;
  };
}

/** The clusters with an agent or a recorded failure, sorted, with their agents and errors. */
export function clusterViews(agents: ReadonlyArray<{ cluster: string; agent: AgentView }>, failures: ReadonlyMap<string, readonly DialFailure[]>): ClusterView[] {
  const byName = new Map<string, ClusterView>();
  const get = (name: string): ClusterView => {
    let c = byName.get(name);
    if (!c) byName.set(name, (c = { name, agents: [], errors: [] }));
    return c;
  };
  for (const { cluster, agent } of agents) get(cluster).agents.push(agent);
  for (const [name, errors] of failures) get(name).errors = [...errors];
  return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** Counters of one link at one instant, to turn into rates. */
export interface LinkCounters {
  linkId: number;
  cluster: string;
  rttMs: number | null;
  bytesIn: number;
  bytesOut: number;
}

/**
 * A history point from two readings `dtMs` apart: per cluster, the sum of its links' byte rates
 * (a link that is new since the last reading counts from zero: its bytes are since it came up) and
 * the lowest RTT among its links.
 */
export function sampleOf(t: number, previous: ReadonlyMap<number, LinkCounters>, current: readonly LinkCounters[], dtMs: number): HistorySample {
  const clusters: HistorySample['clusters'] = {};
  const seconds = Math.max(dtMs, 1) / 1000;
  for (const link of current) {
    const before = previous.get(link.linkId);
    const c = (clusters[link.cluster] ??= { rttMs: null, inBps: 0, outBps: 0 });
    c.inBps += Math.max(0, link.bytesIn - (before?.bytesIn ?? 0)) / seconds;
    c.outBps += Math.max(0, link.bytesOut - (before?.bytesOut ?? 0)) / seconds;
    if (link.rttMs !== null && (c.rttMs === null || link.rttMs < c.rttMs)) c.rttMs = link.rttMs;
  }
  for (const c of Object.values(clusters)) {
    c.inBps = Math.round(c.inBps);
    c.outBps = Math.round(c.outBps);
    if (c.rttMs !== null) c.rttMs = Math.round(c.rttMs * 1000) / 1000;
  }
  return { t, clusters };
}

/** A fixed-size FIFO: the newest `capacity` items, oldest first. */
export class RingBuffer<T> {
  private readonly items: T[] = [];
  private start = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('ring buffer capacity must be a positive integer');
  }

  push(item: T): void {
    if (this.items.length < this.capacity) {
      this.items.push(item);
      return;
    }
    this.items[this.start] = item;
    this.start = (this.start + 1) % this.capacity;
  }

  get size(): number {
    return this.items.length;
  }

  toArray(): T[] {
    return [...this.items.slice(this.start), ...this.items.slice(0, this.start)];
  }

  last(): T | undefined {
    return this.items.length === 0 ? undefined : this.items[(this.start + this.items.length - 1) % this.items.length];
  }
}

/**
 * The latest dial failures per cluster, newest first, `perCluster` each. Cluster names come from
 * clients (a typo is a cluster too), so at most `maxClusters` are kept: the one failing longest ago goes.
 */
export class RecentFailures {
  private readonly byCluster = new Map<string, DialFailure[]>();

  constructor(
    private readonly perCluster: number,
    private readonly maxClusters: number,
  ) {}

  record(cluster: string, failure: DialFailure): void {
    const list = this.byCluster.get(cluster) ?? [];
    // Re-inserted: Map order is then "least recently failed first".
    this.byCluster.delete(cluster);
    this.byCluster.set(cluster, [failure, ...list].slice(0, this.perCluster));
    if (this.byCluster.size > this.maxClusters) this.byCluster.delete(this.byCluster.keys().next().value!);
  }

  get all(): ReadonlyMap<string, readonly DialFailure[]> {
    return this.byCluster;
  }
}

interface Condition {
  type?: unknown;
  status?: unknown;
  reason?: unknown;
  message?: unknown;
  lastProbeTime?: unknown;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function conditionsOf(obj: { status?: unknown }): Condition[] {
  const status = obj.status as { conditions?: unknown } | undefined;
  return Array.isArray(status?.conditions) ? (status.conditions as Condition[]).filter((c) => typeof c === 'object' && c !== null) : [];
}

/** A KubeFedCluster's health as the controller wrote it (health.ts clusterConditions). */
export function clusterHealthOf(obj: { metadata: { name?: string }; status?: unknown }): ClusterHealthView {
  const conditions = conditionsOf(obj);
  const ready = conditions.find((c) => c.type === 'Ready');
  const offline = conditions.find((c) => c.type === 'Offline');
  return {
    name: obj.metadata.name ?? '',
    ready: str(ready?.status),
    offline: str(offline?.status),
    reason: str(ready?.reason),
    message: str(ready?.message),
    lastProbeTime: str(ready?.lastProbeTime),
  };
}

/** A Federated<Kind>'s propagation as the controller wrote it (status.ts federatedStatus). */
export function federatedObjectOf(type: { kind: string; group: string; plural: string }, obj: { metadata: { name?: string; namespace?: string }; status?: unknown }): FederatedObjectView {
  const propagation = conditionsOf(obj).find((c) => c.type === 'Propagation');
  const status = obj.status as { clusters?: unknown } | undefined;
  const clusters = Array.isArray(status?.clusters) ? (status.clusters as Array<Record<string, unknown>>) : [];
  return {
    kind: type.kind,
    group: type.group,
    plural: type.plural,
    namespace: obj.metadata.namespace ?? '',
    name: obj.metadata.name ?? '',
    propagation: str(propagation?.status),
    reason: str(propagation?.reason),
    clusters: clusters
      .filter((c) => typeof c === 'object' && c !== null && typeof c.name === 'string')
      .map((c) => ({ cluster: c.name as string, status: str(c.status), message: str(c.message) })),
  };
}
