// Health, metrics and a debug view of the registry, on a plain HTTP listener meant for loopback
// or the pod network (like ANP's health and admin ports). Tests read /debug/agents to check that
// nothing leaked.
import http from 'node:http';
import type { Logger } from 'pino';
import { ListenerGuard, type ListenerLimits } from '../common/listener-guard.js';
import { activeResourceCounts } from '../common/resources.js';
import { sendMetrics } from '../common/metrics.js';
import type { AgentRegistry } from './registry.js';
import type { Dialer } from './dialer.js';
import type { ServerMetrics } from './metrics.js';

export interface DebugState {
  instance: string;
  agents: ReturnType<AgentRegistry['summary']>;
  streams: number;
  pendingDials: number;
  /** Streams opened through the dialer that are still open, by requester. */
  streamsByRequester: Record<string, number>;
  /** The process's handles by kind (sockets, timers): what the tests' leak check compares. */
  resources: Record<string, number>;
}

export function createAdminServer(
  instance: string,
  agents: AgentRegistry,
  dialer: Dialer,
  metrics: ServerMetrics,
  isReady: () => boolean,
  guard: { limits: ListenerLimits; log: Logger },
): http.Server {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' }).end();
      return;
    }
    switch (path) {
      case '/healthz':
      case '/livez':
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
        return;
      case '/readyz': {
        const ready = isReady();
        res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? `ok: ${agents.linkCount} agent links\n` : 'not ready\n');
        return;
      }
      case '/metrics':
        sendMetrics(metrics.registry, res);
        return;
      case '/debug/agents': {
        const summary = agents.summary();
        const state: DebugState = {
          instance,
          agents: summary,
          streams: summary.reduce((n, link) => n + link.streams, 0),
          pendingDials: dialer.pendingDials,
          streamsByRequester: dialer.openStreamsByRequester(),
          resources: activeResourceCounts(),
        };
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(state));
        return;
      }
      default:
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
  new ListenerGuard({ listener: 'admin', limits: guard.limits, registry: metrics.registry, log: guard.log }).protect(server);
  return server;
}
