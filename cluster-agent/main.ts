#!/usr/bin/env node
// cluster-agent process: flags → ClusterAgent (+ health endpoint) → signals.
import type http from 'node:http';
import { createLogger } from '../common/log.js';
import { exitOnSignals, parseOrExit, reloadCertificatesOnSighup } from '../common/flags.js';
import { ClusterAgent } from './agent.js';
import { createHealthServer } from './health.js';
import { AGENT_HELP, parseAgentOptions } from './options.js';

const options = parseOrExit('cluster-agent', AGENT_HELP, parseAgentOptions);
const log = createLogger('cluster-agent', options.logLevel);
const agent = new ClusterAgent(options, log);
let health: http.Server | null = null;
if (options.healthListen) {
  const { host, port } = options.healthListen;
  const server = createHealthServer(agent, options.healthLimits, log);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
  } catch (error) {
    log.fatal({ err: (error as Error).message }, 'health listener failed');
    process.exit(1);
  }
  health = server;
}
const healthPort = health ? (health.address() as { port: number }).port : null;
log.info({ healthPort, server: options.server, carrier: options.carrier, allow: options.policy.rules }, 'cluster-agent started');
agent.start();
reloadCertificatesOnSighup(log, () => agent.reloadCertificates());
exitOnSignals(log, async (signal) => {
  log.info({ signal, drainMs: options.drainTimeoutMs }, 'draining');
  await agent.drain();
  health?.close();
  health?.closeAllConnections();
  log.info({}, 'cluster-agent stopped');
});
