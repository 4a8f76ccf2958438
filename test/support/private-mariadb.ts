// A private MariaDB server for fault tests: its own data directory, TCP port and Unix socket, so a
// test can kill -9 and restart it without touching the machine's shared MariaDB on 3306. It runs
// as a tracked child (the root hooks kill it if a test fails half-way); the data directory is
// removed by destroy().
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import { LoggedProcess } from '../../common/spawn.js';
import { scratchDir } from './paths.js';
import { freePort } from './ports.js';

const MARIADBD = '/usr/sbin/mariadbd';
const INSTALL_DB = '/usr/bin/mariadb-install-db';
/** How long a start (crash recovery included) may take before it counts as failed. */
const START_BOUND_MS = 30_000;

/** Null if a private server can be started here, else why not. */
export function privateMariadbUnavailable(): string | null {
  for (const bin of [MARIADBD, INSTALL_DB]) if (!fs.existsSync(bin)) return `${bin} is missing`;
  return null;
}

export class PrivateMariadb {
  private process: LoggedProcess | null = null;

  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  /** Initialises a data directory and starts the server; resolves when it accepts connections. */
  static async create(name: string): Promise<PrivateMariadb> {
    const dir = scratchDir(`mariadb-${name}-${process.pid}-${Date.now().toString(36)}`);
    const server = new PrivateMariadb(dir, await freePort());
    try {
      // --user=root: mariadbd refuses to run as root without it (the tests run as root here).
      await promisify(execFile)(INSTALL_DB, [
        '--no-defaults', `--datadir=${server.dataDir}`, '--auth-root-authentication-method=normal', '--skip-test-db',
        ...(process.getuid?.() === 0 ? ['--user=root'] : []),
      ], { timeout: START_BOUND_MS });
      await server.start();
      const admin = await mysql.createConnection({ host: '127.0.0.1', port: server.port, user: 'root' });
      try {
        await admin.query('CREATE DATABASE fault');
      } finally {
        await admin.end();
      }
    } catch (error) {
      await server.destroy();
      throw error;
    }
    return server;
  }

  get dataDir(): string {
    return path.join(this.dir, 'data');
  }

  /** The store URL of the test database. */
  get url(): string {
    return `mysql://root@127.0.0.1:${this.port}/fault`;
  }

  get running(): boolean {
    return this.process?.running ?? false;
  }

  get pid(): number {
    return this.process?.pid ?? -1;
  }

  /** Starts mariadbd on the data directory (crash recovery runs first after a kill) and waits until it accepts a connection. */
  async start(): Promise<void> {
    if (this.running) throw new Error('mariadbd is already running');
    const args = [
      '--no-defaults', `--datadir=${this.dataDir}`, `--socket=${path.join(this.dir, 'mysqld.sock')}`,
      `--pid-file=${path.join(this.dir, 'mysqld.pid')}`, `--port=${this.port}`, '--bind-address=127.0.0.1',
      '--skip-name-resolve', '--innodb-buffer-pool-size=16M',
      // Durability as in production: every commit is fsynced before it is acknowledged.
      '--innodb-flush-log-at-trx-commit=1',
      ...(process.getuid?.() === 0 ? ['--user=root'] : []),
    ];
    const proc = new LoggedProcess('mariadbd', spawn(MARIADBD, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    this.process = proc;
    const deadline = Date.now() + START_BOUND_MS;
    for (;;) {
      if (!proc.running) throw new Error(`mariadbd exited during start:\n${proc.stderr.slice(-2000)}`);
      try {
        const probe = await mysql.createConnection({ host: '127.0.0.1', port: this.port, user: 'root', connectTimeout: 1000 });
        await probe.end();
        return;
      } catch (error) {
        if (Date.now() > deadline) {
          await proc.kill('SIGKILL');
          throw new Error(`mariadbd did not accept connections within ${START_BOUND_MS} ms (${String(error)}):\n${proc.stderr.slice(-2000)}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  /** Sends the signal (SIGKILL: a crash, nothing flushed beyond what commits already fsynced) and waits for the exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await this.process?.kill(signal);
    this.process = null;
  }

  /** Stops the server and removes its data directory. */
  async destroy(): Promise<void> {
    await this.stop('SIGKILL');
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
