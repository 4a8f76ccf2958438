#!/usr/bin/env node
// The federation API server process: flags → store → HTTPS API server → signals. Prints one JSON
// "apiserver ready" line with the bound port once it serves requests (tests wait for it).
import fs from 'node:fs';
import { createLogger } from '../../wire/log.js';
import { exitOnSignals, parseOrExit } from '../../wire/flags.js';
import { openStore } from '../store/open.js';
import { createApiServer } from './server.js';
import { MEMBER_TYPES, TypeRegistry } from './types.js';
import { NAMESPACES } from './resources.js';
import { APISERVER_HELP, parseApiServerOptions } from './options.js';

const options = parseOrExit('apiserver', APISERVER_HELP, parseApiServerOptions);
const log = createLogger('apiserver', options.logLevel);
const registry = new TypeRegistry();
if (options.member) for (const type of MEMBER_TYPES) registry.add(type);
else registry.add(NAMESPACES);

try {
  const store = await openStore(options.store, options.mysqlTablePrefix ? { mysql: { tablePrefix: options.mysqlTablePrefix } } : {});
  const api = await createApiServer({
    store,
    registry,
    log,
    tls: { ca: fs.readFileSync(options.caFile), cert: fs.readFileSync(options.certFile), key: fs.readFileSync(options.keyFile) },
    maxBodyBytes: options.maxBodyBytes,
    bookmarkIntervalMs: options.bookmarkIntervalMs,
  });
  const port = await api.listen(options.listen.host, options.listen.port);
  log.info({ port, host: options.listen.host, store: options.store.split(':', 1)[0], member: options.member }, 'apiserver ready');
  exitOnSignals(log, async (signal) => {
    log.info({ signal }, 'apiserver stopping');
    await api.close();
    await store.close();
  });
} catch (error) {
  // The store URL may carry a password: log the message, never the URL.
  log.fatal({ err: (error as Error).message }, 'apiserver failed to start');
  process.exit(1);
}
