#!/usr/bin/env node
// The topology conversion webhook process (fedtunnel-topology-webhook): flags → HTTPS server →
// signals. Prints one JSON "topology-webhook ready" line with the bound port once it serves.
import fs from 'node:fs';
import { Registry } from 'prom-client';
import { exitOnSignals, parseOrExit, reloadCertificatesOnSighup } from '../../common/flags.js';
import { closeServer, listenTcp } from '../../common/listen.js';
import { createLogger } from '../../common/log.js';
import { TOPOLOGY_WEBHOOK_HELP, parseTopologyWebhookOptions } from './options.js';
import { createTopologyWebhookServer } from './server.js';

const options = parseOrExit('fedtunnel-topology-webhook', TOPOLOGY_WEBHOOK_HELP, parseTopologyWebhookOptions);
const log = createLogger('topology-webhook', options.logLevel);
const readTls = (): { cert: Buffer; key: Buffer } => ({ cert: fs.readFileSync(options.certFile), key: fs.readFileSync(options.keyFile) });

try {
  const registry = new Registry();
  const { server, guard } = createTopologyWebhookServer({ tls: readTls(), log, registry, limits: options, maxReviewBytes: options.maxReviewBytes });
  // New handshakes use a renewed certificate; open connections keep theirs.
  reloadCertificatesOnSighup(log, () => server.setSecureContext(readTls()));
  const port = await listenTcp(server, options.listen.host, options.listen.port);
  log.info({ port, host: options.listen.host }, 'topology-webhook ready');
  exitOnSignals(log, async (signal) => {
    log.info({ signal }, 'topology-webhook stopping');
    guard.closeUnauthenticated();
    await closeServer(server);
  });
} catch (error) {
  log.fatal({ err: (error as Error).message }, 'topology-webhook failed to start');
  process.exit(1);
}
