// Prometheus metrics of KubeFed admission, on the API server's registry (the hub's admin /metrics
// for the embedded federation).
import { Counter, type Registry } from 'prom-client';
import { perRegistry } from '../../common/metrics.js';
import type { TenantRefusal } from './tenancy.js';

export class KubeFedAdmissionMetrics {
  readonly tenantRefusals: Counter<'reason'>;

  private constructor(registry: Registry) {
    this.tenantRefusals = new Counter({
      name: 'fedtunnel_federation_tenant_refusals_total',
      help: 'Writes refused by tenant admission, by reason: TopologyLabelChanged, TenantContradictsAgent, CrossTenantPlacement, NamespaceTenantChanged',
      labelNames: ['reason'],
      registers: [registry],
    });
  }

  static readonly of = perRegistry((registry) => new KubeFedAdmissionMetrics(registry));

  refused(refusal: TenantRefusal): void {
    this.tenantRefusals.inc({ reason: refusal.reason });
  }
}
