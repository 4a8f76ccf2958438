#!/usr/bin/env node
// cluster-agent process: flags → ClusterAgent (+ health endpoint) → signals.
import type http from 'node:http';
import { createLogger } from '../wire/log.js';
import { UsageError } from '../wire/flags.js';
import { ClusterAgent } from './agent.js';
import { createHealthServer } from './health.js';
import { AGENT_HELP, parseAgentOptions } from './options.js';

async function main(): Promise<void> {
  let options;
  try {
    options = parseAgentOptions(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`cluster-agent: ${error.message}\n${AGENT_HELP}\n`);
    process.exit(error.exitCode);
  }
  if (options === 'help') {
    process.stdout.write(`${AGENT_HELP}\n`);
    return;
  }
  const log = createLogger('cluster-agent', options.logLevel);
  const agent = new ClusterAgent(options, log);
  let health: http.Server | null = null;
  if (options.healthListen) {
    const { host, port } = options.healthListen;
    health = createHealthServer(agent);
    const server = health;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    }).catch((error: Error) => {
      log.fatal({ err: error.message }, 'health listener failed');
      process.exit(1);
    });
  }
  const healthPort = health ? (health.address() as { port: number }).port : null;
  log.info({ healthPort, server: options.server, carrier: options.carrier, allow: options.policy.rules }, 'cluster-agent started');
  agent.start();

  let signals = 0;
  const shutdown = (signal: string): void => {
    if (++signals > 1) {
      log.warn({ signal }, 'second signal: exiting without drain');
      process.exit(1);
    }
    log.info({ signal, drainMs: options.drainTimeoutMs }, 'draining');
    agent.drain().then(() => {
      health?.close();
      log.info('cluster-agent stopped');
      process.exit(0);
    });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

void main();
