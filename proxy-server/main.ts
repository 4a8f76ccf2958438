#!/usr/bin/env -S node --initial-old-space-size=64
// proxy-server process: flags → ProxyServer → signals. Prints one "ready" log line with the bound
// ports (tests and the sandbox wait for it instead of sleeping).
import { createLogger } from '../common/log.js';
import { exitOnSignals, parseOrExit, reloadCertificatesOnSighup } from '../common/flags.js';
import { ProxyServer } from './server.js';
import { SERVER_HELP, parseServerOptions } from './options.js';

const options = parseOrExit('proxy-server', SERVER_HELP, parseServerOptions);
const log = createLogger('proxy-server', options.logLevel);
let server: ProxyServer;
try {
  server = new ProxyServer(options, log);
  const ports = await server.start();
  log.info({ ...ports, instance: options.instance }, 'proxy-server ready');
} catch (error) {
  log.fatal({ err: (error as Error).message }, 'proxy-server failed to start');
  process.exit(1);
}
reloadCertificatesOnSighup(log, () => server.reloadCertificates());
process.on('SIGHUP', () => {
  server.reloadRevocations();
  server.reloadBootstrapTokens();
});
exitOnSignals(log, async (signal) => {
  log.info({ signal, drainMs: options.drainTimeoutMs }, 'shutting down');
  await server.stop();
  log.info({}, 'proxy-server stopped');
});
