#!/usr/bin/env -S node --initial-old-space-size=64
// cluster-agent process: flags → ClusterAgent (+ health endpoint) → signals.
import type http from 'node:http';
import { createLogger } from '../common/log.js';
import { exitOnSignals, parseOrExit, reloadCertificatesOnSighup } from '../common/flags.js';
import { ClusterAgent } from './agent.js';
import { createHealthServer } from './health.js';
import { AGENT_HELP, parseAgentOptions } from './options.js';
import { CertificateRenewal, obtainCertificate } from './cert-lifecycle.js';
import type { CertificateInfo, EnrolmentFailure } from './enrolment.js';

const options = parseOrExit('cluster-agent', AGENT_HELP, parseAgentOptions);
const log = createLogger('cluster-agent', options.logLevel);
let certificate: CertificateInfo | null = null;
if (options.enrolment) {
  // Until the first certificate: SIGTERM simply stops the wait (there is nothing to drain yet).
  const stopEnrolment = new AbortController();
  const onSignal = (): void => stopEnrolment.abort();
  process.once('SIGTERM', onSignal).once('SIGINT', onSignal);
  try {
    certificate = await obtainCertificate(options, log, stopEnrolment.signal);
  } catch (error) {
    if (stopEnrolment.signal.aborted) process.exit(0);
    log.fatal({ code: (error as EnrolmentFailure).code, err: (error as Error).message }, 'enrolment failed');
    process.exit(1);
  }
  process.off('SIGTERM', onSignal).off('SIGINT', onSignal);
}
const agent = new ClusterAgent(options, log);
const renewal = certificate ? new CertificateRenewal(options, agent, log.child({ part: 'renewal' })) : null;
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
if (certificate) renewal?.start(certificate);
reloadCertificatesOnSighup(log, () => agent.reloadCertificates());
exitOnSignals(log, async (signal) => {
  log.info({ signal, drainMs: options.drainTimeoutMs }, 'draining');
  renewal?.stop();
  await agent.drain();
  health?.close();
  health?.closeAllConnections();
  log.info({}, 'cluster-agent stopped');
});
