// Child processes, temp dirs, ports and Debian packages for the benchmark, with a
// safety net that kills leftover children and removes temp dirs when the process exits.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { connectTcp, LOOPBACK } from './measure.js';

const liveChildren = new Set<ChildProcess>();
const liveTempDirs = new Set<string>();

/** Last resort for an exit that skipped the regular close() calls (crash, Ctrl-C). */
export function installExitCleanup(): void {
  process.once('exit', () => {
    for (const child of liveChildren) child.kill('SIGKILL');
    for (const dir of liveTempDirs) rmSync(dir, { recursive: true, force: true });
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    // Without a handler these signals end the process without running 'exit' handlers.
    process.once(signal, () => process.exit(128 + os.constants.signals[signal]));
  }
}

export function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export async function makeTempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  liveTempDirs.add(dir);
  return dir;
}

export async function removeTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  liveTempDirs.delete(dir);
}

export interface ChildOptions {
  /**
   * 'pipe' keeps a pipe open that the child can watch to exit together with this process;
   * the default 'ignore' gives it /dev/null. stdin is never inherited.
   */
  stdin?: 'pipe' | 'ignore';
  env?: NodeJS.ProcessEnv;
  /** Opens a Node IPC channel (process.send / 'message') as the child's fourth stdio entry. */
  ipc?: boolean;
}

const OUTPUT_KEPT_CHARS = 16 * 1024;
const STOP_GRACE_MS = 5_000;

/**
 * A child process whose stdout and stderr are always drained (a full pipe would stall it)
 * and kept as a short transcript for readiness checks and error messages.
 */
export class ManagedChild {
  readonly process: ChildProcess;
  private transcript = '';
  private closed = false;
  private readonly events = new EventEmitter();
  private readonly exited: Promise<void>;

  constructor(command: string, args: string[], options: ChildOptions = {}) {
    const stdio: Array<'pipe' | 'ignore' | 'ipc'> = [options.stdin ?? 'ignore', 'pipe', 'pipe'];
    if (options.ipc) stdio.push('ipc');
    this.process = spawn(command, args, { stdio, env: options.env });
    liveChildren.add(this.process);
    const append = (chunk: Buffer) => {
      this.transcript = (this.transcript + chunk.toString()).slice(-OUTPUT_KEPT_CHARS);
      this.events.emit('output');
    };
    this.process.stdout!.on('data', append);
    this.process.stderr!.on('data', append);
    this.exited = new Promise((resolve) => {
      this.process.once('close', () => {
        this.closed = true;
        liveChildren.delete(this.process);
        this.events.emit('output');
        resolve();
      });
      // A failed spawn emits 'error' and then 'close'; the error shows up as a missing match.
      this.process.once('error', (err) => append(Buffer.from(`spawn failed: ${err.message}\n`)));
    });
  }

  get output(): string {
    return this.transcript;
  }

  get hasExited(): boolean {
    return this.closed;
  }

  /** Resolves with the first match of `pattern` in the child's output; rejects if it exits or times out first. */
  waitForOutput(pattern: RegExp, timeoutMs: number, what: string): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const match = pattern.exec(this.transcript);
        if (match) finish(() => resolve(match));
        else if (this.hasExited) finish(() => reject(this.failure(`exited before ${what}`)));
      };
      const timer = setTimeout(() => finish(() => reject(this.failure(`no ${what} within ${timeoutMs} ms`))), timeoutMs);
      const finish = (settle: () => void) => {
        clearTimeout(timer);
        this.events.off('output', check);
        settle();
      };
      this.events.on('output', check);
      check();
    });
  }

  failure(problem: string): Error {
    const command = this.process.spawnargs.join(' ');
    return new Error(`${command}: ${problem}\n${this.transcript.trim()}`);
  }

  /** Sends `signal` and resolves with the exit code (null: killed by a signal) once the child is gone; no escalation. */
  async signalAndWait(signal: NodeJS.Signals): Promise<number | null> {
    if (!this.hasExited) this.process.kill(signal);
    await this.exited;
    return this.process.exitCode;
  }

  /** SIGTERM, then SIGKILL if the child is still there after a grace period. */
  async stop(): Promise<void> {
    if (this.hasExited) return;
    this.process.kill('SIGTERM');
    const grace = setTimeout(() => this.process.kill('SIGKILL'), STOP_GRACE_MS);
    await this.exited;
    clearTimeout(grace);
  }
}

/** Runs a command to completion and returns its combined output; rejects on a non-zero exit. */
export async function runCommand(command: string, args: string[], timeoutMs = 60_000, env?: NodeJS.ProcessEnv): Promise<string> {
  const child = new ManagedChild(command, args, { env });
  const timer = setTimeout(() => child.process.kill('SIGKILL'), timeoutMs);
  const exitCode = await new Promise<number | null>((resolve) => child.process.once('close', (code) => resolve(code)));
  clearTimeout(timer);
  if (exitCode !== 0) throw child.failure(`exit code ${exitCode}`);
  return child.output;
}

const APT_TIMEOUT_MS = 10 * 60_000;

export async function ensureDebianPackages(packages: string[]): Promise<void> {
  const missing: string[] = [];
  for (const name of packages) {
    if (!(await isDebianPackageInstalled(name))) missing.push(name);
  }
  if (missing.length === 0) return;
  log(`installing ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => runCommand('apt-get', ['install', '-y', ...missing], APT_TIMEOUT_MS, env);
  try {
    await install();
  } catch {
    // Usually a stale or absent package index; refresh once and retry.
    await runCommand('apt-get', ['update'], APT_TIMEOUT_MS, env);
    await install();
  }
}

async function isDebianPackageInstalled(name: string): Promise<boolean> {
  try {
    const status = await runCommand('dpkg-query', ['--show', '--showformat=${Status}', name]);
    return status.includes('install ok installed');
  } catch {
    return false; // dpkg-query fails for packages it has never heard of
  }
}

/** A port that was free a moment ago, for programs that cannot listen on port 0 and report back. */
export async function findFreePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, LOOPBACK, resolve);
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Polls until `port` accepts a connection: for programs that give no readiness event. */
export async function waitForPort(port: number, owner: ManagedChild, timeoutMs = 15_000): Promise<void> {
  const giveUpAt = Date.now() + timeoutMs;
  for (let backoffMs = 10; ; backoffMs = Math.min(backoffMs * 2, 250)) {
    if (owner.hasExited) throw owner.failure(`exited before port ${port} accepted connections`);
    try {
      (await connectTcp({ host: LOOPBACK, port })).destroy();
      return;
    } catch {
      if (Date.now() + backoffMs > giveUpAt) throw owner.failure(`port ${port} not accepting connections after ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, backoffMs));
    }
  }
}
