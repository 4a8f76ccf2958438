// Picks the backend from the store URL:
//   sqlite:///absolute/path/to/file.db   sqlite::memory:   mysql://user:password@host:3306/database
import { openMysqlStore, type MysqlStoreOptions } from './mysql.js';
import { SqliteStore, type SqliteStoreOptions } from './sqlite.js';
import type { Store } from './types.js';

export interface OpenStoreOptions {
  sqlite?: SqliteStoreOptions;
  mysql?: MysqlStoreOptions;
}

export async function openStore(url: string, options: OpenStoreOptions = {}): Promise<Store> {
  if (url === 'sqlite::memory:') return new SqliteStore(':memory:', options.sqlite);
  if (url.startsWith('sqlite://')) {
    const path = decodeURIComponent(url.slice('sqlite://'.length));
    if (!path.startsWith('/')) throw new TypeError('SQLite store URL must be sqlite:///absolute/path or sqlite::memory:');
    return new SqliteStore(path, options.sqlite);
  }
  if (url.startsWith('mysql://')) return openMysqlStore(url, options.mysql);
  // Only the scheme is echoed: the rest of the URL may hold a password.
  throw new TypeError(`unsupported store URL scheme ${JSON.stringify(url.split(':', 1)[0])}`);
}
