// Which encryption a federation store gets: the configuration file given (--encryption-provider-
// config / --federation-encryption-config); with none, a SQLite file store gets a generated local
// key and configuration next to the database (secrets encrypted by default); MySQL without one
// stays plaintext with a warning; sqlite::memory: keeps nothing at rest.
import fs from 'node:fs';
import type { Registry } from 'prom-client';
import type { Logger } from '../../common/log.js';
import type { Store } from '../store/types.js';
import { defaultLocalKeyConfig, parseEncryptionConfig, type EncryptionConfig } from './config.js';
import { EncryptedStore } from './encrypted-store.js';
import { EncryptionError } from './errors.js';
import { createKeyFile } from './local-key.js';
import { EncryptionMetrics } from './metrics.js';
import { buildTransformers } from './transformer.js';

export function readEncryptionConfig(file: string): EncryptionConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new EncryptionError('INVALID_CONFIG', `encryption configuration ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parseEncryptionConfig(text);
}

/** The SQLite database path of a store URL, or null (memory, MySQL). */
export function sqlitePath(storeUrl: string): string | null {
  if (!storeUrl.startsWith('sqlite://') || storeUrl === 'sqlite::memory:') return null;
  return decodeURIComponent(storeUrl.slice('sqlite://'.length));
}

/** The configuration file to use: the one given, a generated one for a SQLite file, or null. */
export function encryptionConfigFile(storeUrl: string, configFile: string | null, log: Logger): string | null {
  if (configFile) return configFile;
  const db = sqlitePath(storeUrl);
  if (db === null) {
    if (storeUrl.startsWith('mysql://')) log.warn('no encryption configuration: Secrets are stored in MySQL without encryption at rest');
    return null;
  }
  const keyPath = `${db}.key`;
  const configPath = `${db}.encryption.yaml`;
  // An existing configuration is kept as it is: it may have been edited (rotation), and the key
  // it names may protect data already stored.
  if (fs.existsSync(configPath)) return configPath;
  if (createKeyFile(keyPath)) log.info({ path: keyPath }, 'generated a local key for encrypting Secrets at rest');
  try {
    fs.writeFileSync(configPath, defaultLocalKeyConfig(keyPath), { mode: 0o600, flag: 'wx' });
    log.info({ path: configPath }, 'wrote the default encryption configuration');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return configPath;
}

/** Wraps `store` per the configuration (or the default above); the store itself when none applies. */
export async function withEncryption(store: Store, storeUrl: string, configFile: string | null, log: Logger, registry?: Registry): Promise<Store> {
  const file = encryptionConfigFile(storeUrl, configFile, log);
  if (file === null) return store;
  const config = readEncryptionConfig(file);
  const transformers = await buildTransformers(config, { log, metrics: new EncryptionMetrics(registry) });
  log.info({ config: file, resources: config.rules.flatMap((r) => r.resources) }, 'encryption at rest enabled');
  return new EncryptedStore(store, transformers);
}
