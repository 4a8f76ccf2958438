// Prometheus text of a registry as an HTTP answer, and a plain-HTTP listener that serves only that
// (`--metrics-listen` of the API server, for scrapers on the pod network), behind the listener
// guard like every listener.
import http from 'node:http';
import type { ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { ListenerGuard, type ListenerLimits } from './listener-guard.js';
import type { Logger } from './log.js';

/** Answers 200 with the registry's metrics, or 500 naming why they could not be collected. */
export function sendMetrics(registry: Registry, res: ServerResponse): void {
  registry.metrics().then(
    (text) => res.writeHead(200, { 'Content-Type': registry.contentType, 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-cache, private' }).end(text),
    (error: Error) => res.writeHead(500, { 'Content-Type': 'text/plain' }).end(error.message),
  );
}

/** GET /metrics and nothing else, unauthenticated: bind it to loopback or the pod network only. */
export function createMetricsServer(registry: Registry, guard: { listener: string; limits: ListenerLimits; log: Logger }): http.Server {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
      return;
    }
    if (req.method !== 'GET') {
      res.writeHead(405, { Allow: 'GET' }).end();
      return;
    }
    sendMetrics(registry, res);
  });
  new ListenerGuard({ listener: guard.listener, limits: guard.limits, registry, log: guard.log }).protect(server);
  return server;
}
