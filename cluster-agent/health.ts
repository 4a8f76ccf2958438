// Health endpoint of the agent: /healthz while the process runs, /readyz while a link to the
// server is up and not draining (what a kubelet readiness probe wants); /debug/state lists its
// links, streams, pending dials and process handles (the tests' leak check reads it).
import http from 'node:http';
import { Registry } from 'prom-client';
import type { Logger } from '../common/log.js';
import { ListenerGuard, type ListenerLimits } from '../common/listener-guard.js';
import { activeResourceCounts } from '../common/resources.js';
import type { ClusterAgent } from './agent.js';

/** The agent has no /metrics: its refusals are counted in a registry of their own and logged at warn. */
export function createHealthServer(agent: ClusterAgent, limits: ListenerLimits, log: Logger): http.Server {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const status = agent.status();
    if (path === '/healthz' || path === '/livez') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(status));
    } else if (path === '/readyz') {
      const ready = status.connected && !status.draining;
      res.writeHead(ready ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(status));
    } else if (path === '/debug/state') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ...agent.debugState(), resources: activeResourceCounts() }));
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
  new ListenerGuard({ listener: 'health', limits, registry: new Registry(), log }).protect(server);
  return server;
}
