// Prometheus metrics of the topology conversion webhook: reviews by outcome, objects converted, and
// the time a review takes in the webhook (the hub's side of the round trip is
// fedtunnel_apiserver_conversion_webhook_* on the federation API server).
import { Counter, Histogram, type Registry } from 'prom-client';
import { perRegistry } from '../../common/metrics.js';
import type { ReviewAnswer } from './review.js';

export class TopologyWebhookMetrics {
  readonly reviews: Counter<'outcome'>;
  readonly objects: Counter;
  readonly duration: Histogram<'outcome'>;

  private constructor(registry: Registry) {
    const registers = [registry];
    this.reviews = new Counter({ name: 'fedtunnel_topology_conversions_total', help: 'ConversionReviews answered, by outcome (success, failed: an object could not be converted, bad_request)', labelNames: ['outcome'], registers });
    this.objects = new Counter({ name: 'fedtunnel_topology_converted_objects_total', help: 'Objects converted by successful ConversionReviews', registers });
    this.duration = new Histogram({
      name: 'fedtunnel_topology_conversion_seconds',
      help: 'Time from a ConversionReview request head to its answer, by outcome',
      labelNames: ['outcome'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    for (const outcome of ['success', 'failed', 'bad_request'] as const) this.reviews.inc({ outcome }, 0);
  }

  static readonly of = perRegistry((registry: Registry) => new TopologyWebhookMetrics(registry));

  answered(outcome: ReviewAnswer['outcome'], objects: number, seconds: number): void {
    this.reviews.inc({ outcome });
    if (outcome === 'success') this.objects.inc(objects);
    this.duration.observe({ outcome }, seconds);
  }
}
