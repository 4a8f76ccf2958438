#!/usr/bin/env node
// The federation API server process: flags → store → HTTPS API server → signals. Prints one JSON
// "apiserver ready" line with the bound port once it serves requests (tests wait for it).
import fs from 'node:fs';
import { Registry } from 'prom-client';
import { createLogger } from '../../common/log.js';
import { exitOnSignals, parseOrExit, UsageError } from '../../common/flags.js';
import { closeServer, listenTcp } from '../../common/listen.js';
import { openStore } from '../store/open.js';
import { withEncryption } from '../encryption/setup.js';
import { createApiServer } from './server.js';
import { createMetricsServer } from './metrics.js';
import { MEMBER_TYPES, NAMESPACES, SECRETS, TypeRegistry } from './types.js';
import { APISERVER_HELP, parseApiServerOptions } from './options.js';
import { parseTokenFile, TokenAuthenticator } from './authn.js';
import { RevocationList, loadRevocationFile } from '../../certs/revocation.js';
import { OidcAuthenticator } from './oidc.js';
import { oidcOptions } from './oidc-flags.js';

const options = parseOrExit('apiserver', APISERVER_HELP, parseApiServerOptions);
const log = createLogger('apiserver', options.logLevel);
// The token file is read at start-up only; a bad line exits 2 naming the line (never its text).
const tokens = options.tokenFile === null ? undefined : parseOrExit('apiserver', APISERVER_HELP, () => {
  let text: string;
  try {
    text = fs.readFileSync(options.tokenFile!, 'utf8');
  } catch (error) {
    throw new UsageError(`--token-file: cannot read ${options.tokenFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  return new TokenAuthenticator(parseTokenFile(text, options.tokenFile!));
}, []);
// Discovery runs in the background: an issuer that is down delays OIDC users, not the server.
const oidcFlags = options.oidc;
const oidc = oidcFlags === null ? undefined : new OidcAuthenticator(parseOrExit('apiserver', APISERVER_HELP, () => oidcOptions(oidcFlags), []), log.child({ part: 'oidc' }));
oidc?.start();
const registry = new TypeRegistry();
if (options.member) for (const type of MEMBER_TYPES) registry.add(type);
else {
  // A federation control plane: KubeFed's API, with member credentials in Secrets.
  registry.add(NAMESPACES);
  registry.add(SECRETS);
}

// Loaded at start (a bad file exits 1 naming the line) and re-read on SIGHUP (a bad file keeps the old list).
let revoked = RevocationList.EMPTY;
const revokedFile = options.revokedFile;
if (revokedFile !== null) {
  try {
    revoked = loadRevocationFile(revokedFile);
  } catch (error) {
    log.fatal({ err: (error as Error).message }, 'apiserver failed to start');
    process.exit(1);
  }
  process.on('SIGHUP', () => {
    try {
      revoked = loadRevocationFile(revokedFile);
      log.info({ entries: revoked.size }, 'revocation list reloaded');
    } catch (error) {
      log.error({ err: (error as Error).message, entries: revoked.size }, 'revocation list reload failed; keeping the old one');
    }
  });
}

// Served on GET /metrics of the HTTPS listener: requests, storage refusals, watches, conversion webhooks, listener refusals, encryption.
const metrics = new Registry();
try {
  const raw = await openStore(options.store, options.mysqlTablePrefix ? { mysql: { tablePrefix: options.mysqlTablePrefix } } : {});
  // Secrets at rest: the given EncryptionConfiguration, or the default for the store (README).
  const store = await withEncryption(raw, options.store, options.encryptionProviderConfig, log, metrics);
  const api = await createApiServer({
    store,
    registry,
    log,
    tls: { ca: fs.readFileSync(options.caFile), cert: fs.readFileSync(options.certFile), key: fs.readFileSync(options.keyFile) },
    maxBodyBytes: options.maxBodyBytes,
    bookmarkIntervalMs: options.bookmarkIntervalMs,
    tokens,
    oidc,
    isRevoked: (serial) => revoked.isRevoked(serial),
    ...(options.member ? { pods: { execEnabled: options.enablePodExec }, http2: true } : { kubefed: { defaultTypes: true } }),
    listener: { name: options.member ? 'member_apiserver' : 'apiserver', limits: options },
    metrics,
    serveMetrics: true,
    logIdentities: options.logIdentities,
  });
  const metricsServer = options.metricsListen && createMetricsServer(metrics, { listener: 'apiserver_metrics', limits: options, log });
  const metricsPort = metricsServer ? await listenTcp(metricsServer, options.metricsListen!.host, options.metricsListen!.port) : null;
  const port = await api.listen(options.listen.host, options.listen.port);
  log.info({ port, metricsPort, host: options.listen.host, store: options.store.split(':', 1)[0], member: options.member, podExec: options.enablePodExec, tokens: tokens?.size ?? 0, oidcIssuer: oidcFlags?.issuerUrl ?? null }, 'apiserver ready');
  exitOnSignals(log, async (signal) => {
    log.info({ signal }, 'apiserver stopping');
    if (metricsServer) await closeServer(metricsServer);
    await api.close();
    await store.close();
  });
} catch (error) {
  // The store URL may carry a password: log the message, never the URL.
  log.fatal({ err: (error as Error).message }, 'apiserver failed to start');
  process.exit(1);
}
