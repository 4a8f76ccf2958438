// The API server binary:
//   node dist/federation/apiserver/main.js --listen 127.0.0.1:0 --store sqlite::memory: \
//     --ca ca.crt --cert server.crt --key server.key [--member]
// Prints a JSON "apiserver ready" line with the bound port once it serves requests.
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { createLogger, LOG_LEVELS } from '../../wire/log.js';
import { openStore } from '../store/open.js';
import { createApiServer } from './server.js';
import { MEMBER_TYPES, TypeRegistry } from './types.js';
import { NAMESPACES } from './resources.js';
import { DEFAULT_MAX_BODY_BYTES } from './body.js';

function usage(message: string): never {
  process.stderr.write(`apiserver: ${message}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        listen: { type: 'string', default: '127.0.0.1:6443' },
        store: { type: 'string', default: 'sqlite::memory:' },
        ca: { type: 'string' },
        cert: { type: 'string' },
        key: { type: 'string' },
        member: { type: 'boolean', default: false },
        'max-body-bytes': { type: 'string', default: String(DEFAULT_MAX_BODY_BYTES) },
        'bookmark-interval-ms': { type: 'string', default: '10000' },
        'mysql-table-prefix': { type: 'string' },
        'log-level': { type: 'string', default: 'info' },
      },
      strict: true,
    }));
  } catch (err) {
    usage((err as Error).message);
  }
  if (!values.ca || !values.cert || !values.key) usage('--ca, --cert and --key are required');
  const level = values['log-level'] as (typeof LOG_LEVELS)[number];
  if (!LOG_LEVELS.includes(level)) usage(`unknown log level ${level}`);
  const m = /^(.*):(\d+)$/.exec(values.listen);
  if (!m) usage('--listen must be host:port');
  const maxBodyBytes = Number(values['max-body-bytes']);
  const bookmarkIntervalMs = Number(values['bookmark-interval-ms']);
  if (!Number.isInteger(maxBodyBytes) || maxBodyBytes <= 0) usage('--max-body-bytes must be a positive integer');
  if (!Number.isInteger(bookmarkIntervalMs) || bookmarkIntervalMs <= 0) usage('--bookmark-interval-ms must be a positive integer');
  const log = createLogger('apiserver', level);

  const registry = new TypeRegistry();
  if (values.member) for (const t of MEMBER_TYPES) registry.add(t);
  else registry.add(NAMESPACES);

  const store = await openStore(values.store, values['mysql-table-prefix'] ? { mysql: { tablePrefix: values['mysql-table-prefix'] } } : {});
  const api = await createApiServer({
    store,
    registry,
    log,
    tls: { ca: fs.readFileSync(values.ca), cert: fs.readFileSync(values.cert), key: fs.readFileSync(values.key) },
    maxBodyBytes,
    bookmarkIntervalMs,
  });
  const host = m[1]!.replace(/^\[(.*)\]$/, '$1');
  const port = await api.listen(host, Number(m[2]));
  log.info({ port, host, store: values.store.split(':', 1)[0], member: values.member }, 'apiserver ready');

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'apiserver stopping');
    void api
      .close()
      .then(() => store.close())
      .finally(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`apiserver: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
