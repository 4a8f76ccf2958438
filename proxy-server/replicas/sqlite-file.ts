// The replicas' own tables on a SQLite store file: WAL so the processes sharing the file read
// while one writes, a busy timeout so a writer waits for another's lock instead of failing.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';

/** Opens (creating its folder) the file and runs `schema`; a file that cannot take it is closed and the error thrown. */
export function openReplicaSqlite(file: string, schema: string): Database.Database {
  if (file !== ':memory:') fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('busy_timeout = 5000');
    db.exec(schema);
  } catch (error) {
    db.close();
    throw error;
  }
  return db;
}
