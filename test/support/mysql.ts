// The MySQL/MariaDB the tests use: DSN from FEDTUNNEL_MYSQL_URL, by default the MariaDB that
// these machines and CI start on 127.0.0.1:3306.
import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';

export const MYSQL_URL = process.env.FEDTUNNEL_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';

/** Null if the server answers, else why not. */
export async function mysqlUnreachable(): Promise<string | null> {
  try {
    const connection = await mysql.createConnection({ uri: MYSQL_URL, connectTimeout: 3000 });
    await connection.end();
    return null;
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

/** One statement on a connection of its own; the rows of a SELECT. */
export async function mysqlQuery(sql: string): Promise<unknown[]> {
  const connection = await mysql.createConnection({ uri: MYSQL_URL });
  try {
    const [rows] = await connection.query(sql);
    return rows as unknown[];
  } finally {
    await connection.end();
  }
}

/** A MySQL database of its own on the test server: its name, URL and how to drop it. */
export async function scratchDatabase(prefix = 'fedtunnel_test'): Promise<{ name: string; url: string; drop(): Promise<void> }> {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  await mysqlQuery(`CREATE DATABASE \`${name}\``);
  const url = new URL(MYSQL_URL);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    async drop() {
      await mysqlQuery(`DROP DATABASE IF EXISTS \`${name}\``);
    },
  };
}
