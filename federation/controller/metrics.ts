// Prometheus metrics of the federation controller, registered on the registry it is given (the
// proxy-server's, so one /metrics shows the tunnel and the federation together).
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export class ControllerMetrics {
  readonly reconciles: Counter<'kind' | 'result'>;
  readonly clusterSyncs: Counter<'cluster' | 'action' | 'result'>;
  readonly queueDepth: Gauge<'queue'>;
  readonly propagationLatency: Histogram<'cluster'>;
  readonly memberErrors: Counter<'cluster' | 'code'>;
  readonly clusterReady: Gauge<'cluster'>;
  readonly statusWrites: Counter<'kind'>;
  readonly annotationWrites: Counter<'cluster' | 'change'>;
  readonly annotationOnlyUpdates: Counter<'cluster'>;
  readonly rolloutSyncs: Counter<'cluster' | 'mode'>;
  readonly versionWrites: Counter<'result'>;
  readonly tenantMismatch: Gauge<'cluster'>;

  private static readonly byRegistry = new WeakMap<Registry, ControllerMetrics>();
  /** Whose queues the depth gauge reads: the controller running now (a replica starts a new one each time it wins the lease). */
  private depths: () => Record<string, number> = () => ({});

  /** The metrics on `registry`, registered once however many controllers run there one after another. */
  static of(registry: Registry, depths: () => Record<string, number>): ControllerMetrics {
    let metrics = ControllerMetrics.byRegistry.get(registry);
    if (!metrics) ControllerMetrics.byRegistry.set(registry, (metrics = new ControllerMetrics(registry)));
    metrics.depths = depths;
    return metrics;
  }

  private constructor(registry: Registry) {
    const registers = [registry];
    const current = (): Record<string, number> => this.depths();
    this.reconciles = new Counter({ name: 'fedtunnel_federation_reconciles_total', help: 'Federated object reconciles by federated kind and result', labelNames: ['kind', 'result'], registers });
    this.clusterSyncs = new Counter({ name: 'fedtunnel_federation_cluster_syncs_total', help: 'Per-cluster sync decisions by action (none, create, update, delete, unmanage) and result', labelNames: ['cluster', 'action', 'result'], registers });
    this.queueDepth = new Gauge({
      name: 'fedtunnel_federation_queue_depth',
      help: 'Keys waiting in the controller work queues (objects, and each cluster)',
      labelNames: ['queue'],
      registers,
      collect() {
        this.reset();
        for (const [queue, depth] of Object.entries(current())) this.set({ queue }, depth);
      },
    });
    this.propagationLatency = new Histogram({
      name: 'fedtunnel_federation_propagation_seconds',
      help: 'Federated write seen by the controller → member write acknowledged, per cluster',
      labelNames: ['cluster'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.memberErrors = new Counter({ name: 'fedtunnel_federation_member_errors_total', help: 'Failed member requests by cluster and error code', labelNames: ['cluster', 'code'], registers });
    this.clusterReady = new Gauge({ name: 'fedtunnel_federation_cluster_ready', help: '1 when the member cluster is Ready, 0 otherwise', labelNames: ['cluster'], registers });
    this.annotationWrites = new Counter({ name: 'fedtunnel_federation_member_annotation_writes_total', help: 'Propagated annotation keys set (added or changed) or removed on member objects by updates, per cluster', labelNames: ['cluster', 'change'], registers });
    this.annotationOnlyUpdates = new Counter({ name: 'fedtunnel_federation_annotation_only_updates_total', help: 'Member updates that changed nothing but annotations (template annotation edits, repaired annotation drift), per cluster', labelNames: ['cluster'], registers });
    this.tenantMismatch = new Gauge({ name: 'fedtunnel_federation_cluster_tenant_mismatch', help: "1 when the cluster's tenant label disagrees with its agent certificate's tenant (nothing is propagated there), 0 otherwise", labelNames: ['cluster'], registers });
    this.statusWrites = new Counter({ name: 'fedtunnel_federation_status_writes_total', help: 'Status writes by kind (written only when the status changed)', labelNames: ['kind'], registers });
    this.rolloutSyncs = new Counter({ name: 'fedtunnel_federation_rollout_syncs_total', help: 'Per-cluster syncs by rollout mode: current, held (placementMask: kept at its applied revision), withheld (placementMask: nothing applied yet, nothing written)', labelNames: ['cluster', 'mode'], registers });
    this.versionWrites = new Counter({ name: 'fedtunnel_federation_propagated_version_writes_total', help: 'Writes of PropagatedVersion records (applied revision per cluster) by result (ok, conflict, error)', labelNames: ['result'], registers });
  }
}
