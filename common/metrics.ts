// Prometheus plumbing every binary shares: one set of metrics per registry, and the text of a
// registry as an HTTP answer.
import type { ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';

/**
 * `create` once per registry: several servers of a process (or of a test) counting into one
 * registry share the same metrics instead of registering a name twice, which prom-client refuses.
 */
export function perRegistry<T>(create: (registry: Registry) => T): (registry: Registry) => T {
  const made = new WeakMap<Registry, T>();
  return (registry) => {
    let metrics = made.get(registry);
    if (metrics === undefined) {
      metrics = create(registry);
      made.set(registry, metrics);
    }
    return metrics;
  };
}

/** Answers 200 with the registry's metrics, or 500 naming why they could not be collected. */
export function sendMetrics(registry: Registry, res: ServerResponse): void {
  registry.metrics().then(
    (text) => res.writeHead(200, { 'Content-Type': registry.contentType, 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-cache, private' }).end(text),
    (error: Error) => res.writeHead(500, { 'Content-Type': 'text/plain' }).end(error.message),
  );
}
