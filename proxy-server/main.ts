#!/usr/bin/env node
// proxy-server process: flags → ProxyServer → signals. Prints one "ready" log line with the bound
// ports (tests and the sandbox wait for it instead of sleeping).
import { createLogger } from '../wire/log.js';
import { UsageError } from '../wire/flags.js';
import { ProxyServer } from './server.js';
import { SERVER_HELP, parseServerOptions } from './options.js';

async function main(): Promise<void> {
  let options;
  try {
    options = parseServerOptions(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`proxy-server: ${error.message}\n${SERVER_HELP}\n`);
    process.exit(error.exitCode);
  }
  if (options === 'help') {
    process.stdout.write(`${SERVER_HELP}\n`);
    return;
  }
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
  let signals = 0;
  const shutdown = (signal: string): void => {
    if (++signals > 1) {
      log.warn({ signal }, 'second signal: exiting without drain');
      process.exit(1);
    }
    log.info({ signal, drainMs: options.drainTimeoutMs }, 'shutting down');
    server.stop().then(
      () => {
        log.info('proxy-server stopped');
        log.flush?.();
        process.exit(0);
      },
      (error: Error) => {
        log.error({ err: error.message }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

void main();
