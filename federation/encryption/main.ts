#!/usr/bin/env node
// fedtunnel-encryption rotate: re-encrypts the stored Secrets (and other configured resources)
// under the current first provider. Logs one JSON "rotation done" line with the counts.
import { createLogger } from '../../common/log.js';
import { parseOrExit } from '../../common/flags.js';
import { openStore } from '../store/open.js';
import { EncryptedStore } from './encrypted-store.js';
import { ENCRYPTION_HELP, parseEncryptionCommand } from './options.js';
import { rotateEncryptedObjects } from './rotate.js';
import { withEncryption } from './setup.js';

const options = parseOrExit('fedtunnel-encryption', ENCRYPTION_HELP, parseEncryptionCommand);
const log = createLogger('encryption', options.logLevel);
let exitCode = 0;
try {
  const raw = await openStore(options.store, options.mysqlTablePrefix ? { mysql: { tablePrefix: options.mysqlTablePrefix } } : {});
  const store = await withEncryption(raw, options.store, options.encryptionConfig, log).catch(async (err) => {
    await raw.close();
    throw err;
  });
  try {
    if (!(store instanceof EncryptedStore)) throw new Error('no encryption configuration applies to this store');
    const result = await rotateEncryptedObjects(store, log);
    log.info(result, 'rotation done');
  } finally {
    await store.close();
  }
} catch (error) {
  // The store URL may carry a password: log the message, never the URL.
  log.error({ err: (error as Error).message, code: (error as { code?: string }).code }, 'rotation failed');
  exitCode = 1;
}
process.exitCode = exitCode;
