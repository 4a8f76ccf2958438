// The status page's live feed: server-sent events. Each viewer first gets a full `snapshot`
// (state + history, filtered for them), then at each collector tick a `sample` (the new history
// point) and a `state` when their view of the state changed. A viewer whose connection does not
// keep up is dropped (the browser's EventSource reconnects and starts from a fresh snapshot), so
// one slow client never holds memory for the hub; the number of viewers is capped.
import type http from 'node:http';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { perRegistry } from '../../common/metrics.js';
import type { StatusCollector } from './collector.js';
import { historyFor, viewerUpdate, viewFor, type Access, type Snapshot } from './model.js';
import { sendStatus } from './respond.js';

export interface StatusStreamLimits {
  /** Event streams open at once; more get 503. */
  maxClients: number;
  /** Bytes queued on one stream's socket beyond which the viewer is dropped. */
  maxBufferedBytes: number;
}

export const STATUS_STREAM_LIMITS: StatusStreamLimits = { maxClients: 64, maxBufferedBytes: 256 * 1024 };

/** The EventSource reconnect delay the page is told (ms). */
const RETRY_MS = 2000;

class StatusMetrics {
  readonly clients: Gauge;
  readonly events: Counter<'event'>;
  readonly dropped: Counter<'reason'>;

  private constructor(registry: Registry) {
    const registers = [registry];
    this.clients = new Gauge({ name: 'fedtunnel_status_clients', help: 'Status page event streams open', registers });
    this.events = new Counter({ name: 'fedtunnel_status_events_total', help: 'Server-sent events written to status page viewers, by event (snapshot, state, sample)', labelNames: ['event'], registers });
    this.dropped = new Counter({
      name: 'fedtunnel_status_refused_total',
      help: 'Status page event streams refused (too_many_clients) or dropped (slow_client)',
      labelNames: ['reason'],
      registers,
    });
  }

  static readonly of = perRegistry((registry) => new StatusMetrics(registry));
}

interface Viewer {
  user: string;
  res: http.ServerResponse;
  access: Access;
  /** The JSON of the last state sent, to send only changes. */
  lastState: string;
}

export class StatusStream {
  private readonly viewers = new Set<Viewer>();
  private readonly metrics: StatusMetrics;
  private closed = false;

  constructor(
    private readonly collector: StatusCollector,
    registry: Registry,
    private readonly log: Logger,
    private readonly limits: StatusStreamLimits = STATUS_STREAM_LIMITS,
  ) {
    this.metrics = StatusMetrics.of(registry);
    this.metrics.clients.set(0);
    collector.on('tick', this.onTick);
  }

  /** A full snapshot for one viewer (also the body of /status/snapshot). */
  snapshot(user: string, access: Access): Snapshot {
    return {
      user,
      generatedAt: new Date().toISOString(),
      sampleIntervalMs: this.collector.sampleIntervalMs,
      ...viewFor(this.collector.state(), access),
      history: historyFor(this.collector.samples, access),
    };
  }

  /** Starts an event stream on `res`, or answers 503 when the hub has as many as it takes. */
  open(res: http.ServerResponse, user: string, access: Access): void {
    if (this.closed) {
      // Shutting down: a browser reconnecting now must not hold the listener open.
      sendStatus(res, 503, 'ServiceUnavailable', 'the hub is shutting down', { connection: 'close' });
      return;
    }
    if (this.viewers.size >= this.limits.maxClients) {
      this.metrics.dropped.inc({ reason: 'too_many_clients' });
      this.log.warn({ user, limit: this.limits.maxClients }, 'status page: event stream refused, too many viewers');
      sendStatus(res, 503, 'ServiceUnavailable', `the hub serves at most ${this.limits.maxClients} status page streams; retry later`, { 'retry-after': '5' });
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      // The stream ends with the connection: a later request opens a fresh one.
      connection: 'close',
      'x-content-type-options': 'nosniff',
    });
    res.write(`retry: ${RETRY_MS}\n\n`);
    const snapshot = this.snapshot(user, access);
    const viewer: Viewer = { user, res, access, lastState: viewerUpdate('', this.collector.state(), undefined, access).stateJson };
    this.viewers.add(viewer);
    this.collector.watchers++;
    this.metrics.clients.set(this.viewers.size);
    res.once('close', () => this.forget(viewer));
    this.send(viewer, 'snapshot', JSON.stringify(snapshot));
    // The federation part may be a second old; the next tick refreshes it for everyone.
    if (this.collector.watchers === 1) void this.collector.refreshFederation();
  }

  /** Ends every stream (shutdown): responses complete, so the listener can close. */
  close(): void {
    this.closed = true;
    this.collector.off('tick', this.onTick);
    for (const viewer of [...this.viewers]) {
      this.forget(viewer);
      viewer.res.end();
    }
  }

  private readonly onTick = (): void => {
    if (this.viewers.size === 0) return;
    const state = this.collector.state();
    const sample = this.collector.latestSample;
    for (const viewer of [...this.viewers]) {
      const update = viewerUpdate(viewer.lastState, state, sample, viewer.access);
      if (update.changed) {
        viewer.lastState = update.stateJson;
        if (!this.send(viewer, 'state', update.stateJson)) continue;
      }
      if (update.sample) this.send(viewer, 'sample', JSON.stringify(update.sample));
    }
  };

  /** Writes one event; false when the viewer was dropped for not keeping up. */
  private send(viewer: Viewer, event: 'snapshot' | 'state' | 'sample', data: string): boolean {
    const { res } = viewer;
    if (res.destroyed) return false;
    if (res.writableLength > this.limits.maxBufferedBytes) {
      this.metrics.dropped.inc({ reason: 'slow_client' });
      this.log.warn({ user: viewer.user, buffered: res.writableLength, limit: this.limits.maxBufferedBytes }, 'status page: slow viewer dropped');
      this.forget(viewer);
      res.destroy();
      return false;
    }
    res.write(`event: ${event}\ndata: ${data}\n\n`);
    this.metrics.events.inc({ event });
    return true;
  }

  private forget(viewer: Viewer): void {
    if (!this.viewers.delete(viewer)) return;
    this.collector.watchers--;
    this.metrics.clients.set(this.viewers.size);
  }
}
