// Metrics of member mode's pod streaming: sessions by kind and protocol, open sessions, forwarded
// connections and their bytes, refusals. Labels come from fixed sets only.
import { Counter, Gauge, type Registry } from 'prom-client';
import { perRegistry } from '../../../common/metrics.js';

export type StreamKind = 'exec' | 'attach' | 'portforward' | 'log';
/** spdy: SPDY/3.1 upgrade; websocket_v5/v4: channel protocols; websocket_spdy: SPDY/3.1 tunnelled in WebSocket; http: chunked logs. */
export type StreamProtocol = 'spdy' | 'websocket_v5' | 'websocket_v4' | 'websocket_spdy' | 'http';

export class PodStreamMetrics {
  static readonly of = perRegistry((registry: Registry) => new PodStreamMetrics(registry));

  readonly sessions: Counter<'kind' | 'protocol'>;
  readonly open: Gauge<'kind'>;
  readonly refusals: Counter<'kind' | 'reason'>;
  readonly forwardedConnections: Counter<'result'>;
  readonly forwardedBytes: Counter<'direction'>;

  private constructor(registry: Registry) {
    const registers = [registry];
    this.sessions = new Counter({ name: 'apiserver_pod_stream_sessions_total', help: 'Pod exec, attach, port-forward and log-follow sessions started, by protocol', labelNames: ['kind', 'protocol'], registers });
    this.open = new Gauge({ name: 'apiserver_pod_stream_sessions_open', help: 'Pod streaming sessions open now', labelNames: ['kind'], registers });
    this.refusals = new Counter({ name: 'apiserver_pod_stream_refusals_total', help: 'Pod streaming requests refused before the upgrade, by reason', labelNames: ['kind', 'reason'], registers });
    this.forwardedConnections = new Counter({ name: 'apiserver_pod_portforward_connections_total', help: 'Port-forward connections, by result (ok, refused: nothing listened, invalid: bad stream headers)', labelNames: ['result'], registers });
    this.forwardedBytes = new Counter({ name: 'apiserver_pod_portforward_bytes_total', help: 'Port-forward bytes, to_pod or from_pod', labelNames: ['direction'], registers });
  }
}
