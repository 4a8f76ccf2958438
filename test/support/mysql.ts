// The MySQL/MariaDB the tests use: DSN from FEDTUNNEL_MYSQL_URL, by default the MariaDB that
// these machines and CI start on 127.0.0.1:3306.
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
