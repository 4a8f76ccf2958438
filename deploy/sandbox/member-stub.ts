#!/usr/bin/env node
// Stand-in for a member cluster's API server in the sandbox, until the federation's member-mode
// API server takes its place: answers /version, /healthz and anything else with JSON that names
// the cluster, so a request through the tunnel visibly lands in the right cluster.
import http from 'node:http';

const cluster = process.argv[2] ?? 'member';
const server = http.createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  if (path === '/healthz' || path === '/readyz') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    return;
  }
  const body = path === '/version' ? { major: '1', minor: '32', gitVersion: 'v1.32.0-sandbox', platform: `sandbox/${cluster}` } : { cluster, path, method: req.method };
  res.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify(body)}\n`);
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ msg: 'member ready', cluster, port: (server.address() as { port: number }).port })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
process.on('SIGINT', () => server.close(() => process.exit(0)));
