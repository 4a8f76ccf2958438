// Gathers the status page's state once a second: reads the agent links' counters into the
// history ring (kept always, so a fresh page shows the last minutes), and, while someone watches,
// re-reads the federation. Listeners of 'tick' (the SSE stream) then send what changed.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { AgentRegistry } from '../registry.js';
import {
  clusterViews,
  RecentFailures,
  RingBuffer,
  sampleOf,
  type FederationView,
  type HistorySample,
  type HubState,
  type LeaseView,
  type LinkCounters,
  type ReplicaView,
} from './model.js';

export interface CollectorOptions {
  /** This replica's --instance. */
  instance: string;
  agents: AgentRegistry;
  /** Who runs the federation controller, asked at each tick. */
  lease: () => LeaseView;
  /** HA: the live replicas from the membership table; absent or null: this replica alone. */
  replicas?: () => ReplicaView[] | null;
  /** Reads the federation's clusters and objects; null while (or when) the hub has no embedded federation. */
  federation: () => Promise<FederationView> | null;
  log: Logger;
  sampleIntervalMs?: number;
  /** History points kept (300 × 1 s = 5 minutes). */
  historySize?: number;
}

export const SAMPLE_INTERVAL_MS = 1000;
export const HISTORY_SIZE = 300;
/** Dial failures kept per cluster, and clusters with failures kept. */
const FAILURES_PER_CLUSTER = 10;
const FAILURE_CLUSTERS = 256;

const NO_FEDERATION: FederationView = { enabled: false, clusters: [], objects: [], truncated: false };

export class StatusCollector extends EventEmitter<{ tick: [] }> {
  readonly sampleIntervalMs: number;
  private readonly history: RingBuffer<HistorySample>;
  private readonly failures = new RecentFailures(FAILURES_PER_CLUSTER, FAILURE_CLUSTERS);
  private readonly startedAt = new Date().toISOString();
  private previous = new Map<number, LinkCounters>();
  private previousAt = performance.now();
  private timer: NodeJS.Timeout | undefined;
  private federation: FederationView;
  private reading: Promise<void> | null = null;
  /** Viewers connected to the event stream: the federation is read only while there are some. */
  watchers = 0;

  constructor(private readonly options: CollectorOptions) {
    super();
    this.sampleIntervalMs = options.sampleIntervalMs ?? SAMPLE_INTERVAL_MS;
    this.history = new RingBuffer(options.historySize ?? HISTORY_SIZE);
    this.federation = NO_FEDERATION;
  }

  start(): void {
    this.timer ??= setInterval(() => void this.tick(), this.sampleIntervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** A dial failed (dialer.ts): kept as the cluster's latest errors. */
  recordDialFailure(cluster: string, code: string, message: string): void {
    this.failures.record(cluster, { at: new Date().toISOString(), code, message, replica: this.options.instance });
  }

  get samples(): HistorySample[] {
    return this.history.toArray();
  }

  get latestSample(): HistorySample | undefined {
    return this.history.last();
  }

  state(): HubState {
    const agents = this.options.agents.links().map((link) => ({
      cluster: link.identity.cluster,
      agent: {
        replica: this.options.instance,
        linkId: link.linkId,
        instance: link.instance,
        tenant: link.identity.tenant,
        carrier: link.carrier,
        remoteAddress: link.remoteAddress,
        connectedAt: link.connectedAt.toISOString(),
        streams: link.session.streamCount,
        draining: link.session.localDraining || link.session.remoteDraining,
        rttMs: Number.isNaN(link.session.rttMs) ? null : Math.round(link.session.rttMs * 1000) / 1000,
        bytesIn: link.session.bytesIn,
        bytesOut: link.session.bytesOut,
      },
    }));
    return {
      // With HA replicas the membership table lists them all; this one keeps its own start time.
      replicas: this.options.replicas?.()?.map((r) => (r.self ? { ...r, startedAt: this.startedAt } : r)) ?? [{ instance: this.options.instance, self: true, startedAt: this.startedAt }],
      lease: this.options.lease(),
      clusters: clusterViews(agents, this.failures.all),
      federation: this.federation,
    };
  }

  /** Re-reads the federation (one read at a time; callers share a read in progress). */
  refreshFederation(): Promise<void> {
    if (this.reading) return this.reading;
    const read = this.options.federation();
    if (!read) return Promise.resolve();
    this.reading = read
      .then(
        (view) => void (this.federation = view),
        (err: unknown) => {
          this.options.log.warn({ err: (err as Error).message }, 'status page: reading the federation failed');
          this.federation = { ...this.federation, error: (err as Error).message };
        },
      )
      .finally(() => (this.reading = null));
    return this.reading;
  }

  private async tick(): Promise<void> {
    const now = performance.now();
    const counters: LinkCounters[] = this.options.agents.links().map((link) => ({
      linkId: link.linkId,
      cluster: link.identity.cluster,
      rttMs: Number.isNaN(link.session.rttMs) ? null : link.session.rttMs,
      bytesIn: link.session.bytesIn,
      bytesOut: link.session.bytesOut,
    }));
    this.history.push(sampleOf(Date.now(), this.previous, counters, now - this.previousAt));
    this.previous = new Map(counters.map((c) => [c.linkId, c]));
    this.previousAt = now;
    if (this.watchers > 0) await this.refreshFederation();
    if (this.timer) this.emit('tick');
  }
}
