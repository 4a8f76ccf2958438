// Flags of the fedtunnel-encryption command (exit 2 with a message for a bad one).
import type { LevelWithSilent } from 'pino';
import { LOG_LEVELS } from '../../common/log.js';
import { UsageError, logLevelFlag, parseFlags } from '../../common/flags.js';

export interface RotateOptions {
  command: 'rotate';
  store: string;
  /** null: the default configuration next to a SQLite store (<db>.encryption.yaml). */
  encryptionConfig: string | null;
  mysqlTablePrefix: string | null;
  logLevel: LevelWithSilent;
}

export const ENCRYPTION_HELP = `usage: fedtunnel-encryption rotate --store URL [options]
  Rewrites every object of the encrypted resources (Secrets, FederatedSecrets by default) under the
  first provider of the encryption configuration. Put the new key first, restart the API servers,
  run this, then remove the old provider.
  --store URL                         sqlite:///path.db | mysql://user:pass@host:3306/db
  --encryption-provider-config FILE   EncryptionConfiguration [for SQLite: <db>.encryption.yaml]
  --mysql-table-prefix P              table name prefix in a shared MySQL database [kv_]
  --log-level LEVEL                   ${LOG_LEVELS.join('|')} [info]`;

export function parseEncryptionCommand(argv: string[]): RotateOptions | 'help' {
  const [command, ...rest] = argv;
  if (command === '--help' || command === '-h' || command === 'help') return 'help';
  if (command !== 'rotate') throw new UsageError(`expected the command "rotate"${command ? `, got "${command}"` : ''}`);
  const v = parseFlags(rest, {
    store: { type: 'string' },
    'encryption-provider-config': { type: 'string' },
    'mysql-table-prefix': { type: 'string' },
    'log-level': { type: 'string' },
  });
  if (v.help) return 'help';
  const store = v.store;
  if (!store || !/^(sqlite:\/\/\/|mysql:\/\/)/.test(store)) throw new UsageError('--store: expected sqlite:///path or mysql://…');
  const encryptionConfig = v['encryption-provider-config'] || null;
  if (encryptionConfig === null && !store.startsWith('sqlite:')) throw new UsageError('--encryption-provider-config is required for a MySQL store');
  return { command: 'rotate', store, encryptionConfig, mysqlTablePrefix: v['mysql-table-prefix'] ?? null, logLevel: logLevelFlag(v['log-level']) };
}
