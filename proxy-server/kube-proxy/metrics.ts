// Metrics of the /clusters proxy. Requests and durations carry the cluster only once the request
// was authorized for a joined cluster (bounded cardinality); refusals before that carry none, as
// the refused client chose the name.
import { Counter, Histogram, type Registry } from 'prom-client';
import { perRegistry } from '../../common/metrics.js';

export class KubeProxyMetrics {
  readonly requests: Counter<'cluster' | 'verb' | 'code'>;
  readonly duration: Histogram<'cluster' | 'verb'>;
  readonly refusals: Counter<'reason' | 'code'>;

  private constructor(registry: Registry) {
    const registers = [registry];
    this.requests = new Counter({
      name: 'fedtunnel_kubeproxy_requests_total',
      help: 'Requests proxied to member clusters through /clusters/<name>/, by cluster, Kubernetes verb and HTTP status (499: the client went away)',
      labelNames: ['cluster', 'verb', 'code'],
      registers,
    });
    this.duration = new Histogram({
      name: 'fedtunnel_kubeproxy_request_duration_seconds',
      help: 'Duration of proxied requests, to the end of the response (watches and upgrades: their whole life)',
      labelNames: ['cluster', 'verb'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600],
      registers,
    });
    this.refusals = new Counter({
      name: 'fedtunnel_kubeproxy_refusals_total',
      help: 'Requests to /clusters answered by the hub itself (bad path, unauthenticated, forbidden, not joined, no agent…), by Status reason and code',
      labelNames: ['reason', 'code'],
      registers,
    });
  }

  static readonly of = perRegistry((registry) => new KubeProxyMetrics(registry));
}
