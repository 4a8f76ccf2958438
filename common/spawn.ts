// Child processes that log JSON lines (proxy-server, cluster-agent, apiserver), followed so that
// callers wait for the event they need ("agent registered", "apiserver ready") instead of
// sleeping. Shared by the tests, the sandbox and the benchmark. Every child started here is
// tracked, so killAllChildren() can make sure none outlives its parent's test run.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import fs from 'node:fs';
import readline from 'node:readline';
import { NODE_HEAP_FLAGS } from './node-flags.js';

export interface LogLine {
  msg: string;
  level: number;
  [key: string]: unknown;
}

export type LogPredicate = (line: LogLine) => boolean;

export const DEFAULT_WAIT_MS = 20_000;

/** Every child started through LoggedProcess that has not exited yet. */
const children = new Set<ChildProcess>();
/** The same, as LoggedProcess (a check may look at the other processes, e.g. the hub of an agent). */
const running = new Set<LoggedProcess>();

export function runningProcesses(): LoggedProcess[] {
  return [...running];
}

type StopCheck = (process: LoggedProcess) => Promise<void>;
let stopCheck: StopCheck | null = null;

/**
 * Installs a check that kill() runs before it signals a graceful stop (SIGTERM, SIGINT) to a running
 * child: the tests ask each child, while it still runs, whether it holds anything it should not
 * (test/support/idle-check.ts). Simulated crashes (SIGKILL) are not checked.
 */
export function setStopCheck(check: StopCheck | null): void {
  stopCheck = check;
}

/** SIGKILLs every tracked child (SIGCONT first, so a stopped one dies too) and waits for the exits. */
export async function killAllChildren(): Promise<void> {
  await Promise.all(
    [...children].map((child) => {
      if (child.exitCode !== null || child.signalCode !== null) return undefined;
      child.kill('SIGCONT');
      child.kill('SIGKILL');
      return once(child, 'exit');
    }),
  );
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class LoggedProcess {
  readonly lines: LogLine[] = [];
  private readonly events = new EventEmitter();
  readonly exited: Promise<ExitStatus>;
  stderr = '';

  /**
   * `logFile`: also append every stdout and stderr line there (the sandbox keeps one log per
   * process). The stream is closed when the child exits.
   */
  constructor(
    readonly name: string,
    readonly child: ChildProcess,
    options: { logFile?: string } = {},
  ) {
    const file = options.logFile ? fs.createWriteStream(options.logFile, { flags: 'a' }) : null;
    readline.createInterface({ input: child.stdout! }).on('line', (text) => {
      file?.write(`${text}\n`);
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        line = { msg: text, level: 30 };
      }
      this.lines.push(line);
      this.events.emit('line', line);
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      file?.write(chunk);
      this.stderr += chunk.toString();
    });
    children.add(child);
    running.add(this);
    // 'close', not 'exit': stdout and stderr are drained by then, so every line has been seen
    // and the pipes are released (the leak check counts them).
    this.exited = once(child, 'close').then(async ([code, signal]) => {
      children.delete(child);
      running.delete(this);
      if (file) {
        file.end();
        await once(file, 'close');
      }
      return { code: code as number | null, signal: signal as NodeJS.Signals | null };
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves with the first log line (past or future, after `since`) matching the predicate. */
  waitForLog(predicate: LogPredicate, { since = 0, timeoutMs = DEFAULT_WAIT_MS } = {}): Promise<LogLine> {
    const seen = this.lines.slice(since).find(predicate);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const onLine = (line: LogLine): void => {
        if (!predicate(line)) return;
        cleanup();
        resolve(line);
      };
      const onExit = (): void => {
        cleanup();
        reject(new Error(`${this.name} exited while waiting for a log line\n${this.stderr}`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`${this.name}: no matching log line within ${timeoutMs} ms; last lines:\n${this.lines.slice(-5).map((l) => JSON.stringify(l)).join('\n')}\n${this.stderr}`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.events.off('line', onLine);
        this.child.off('exit', onExit);
      };
      this.events.on('line', onLine);
      this.child.once('exit', onExit);
    });
  }

  /** Count of log lines so far; pass as `since` to wait only for later lines. */
  get mark(): number {
    return this.lines.length;
  }

  /** Sends a signal without waiting (SIGSTOP/SIGCONT to freeze and thaw a process). */
  signal(signal: NodeJS.Signals): void {
    if (this.running) this.child.kill(signal);
  }

  /** Signals the child and waits for its exit; a failed stop check (setStopCheck) is thrown once the child is gone. */
  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<ExitStatus> {
    let checkFailure: unknown = null;
    if (stopCheck && this.running && (signal === 'SIGTERM' || signal === 'SIGINT')) {
      await stopCheck(this).catch((error: unknown) => (checkFailure = error));
    }
    if (this.running) this.child.kill(signal);
    const status = await this.exited;
    if (checkFailure) throw checkFailure;
    return status;
  }
}

export interface SpawnNodeOptions {
  /** Run inside this network namespace (`ip netns exec NS node …`; ip execs node, so the pid is node's). */
  netns?: string | null;
  logFile?: string;
  env?: NodeJS.ProcessEnv;
}

/** Starts `node script args…` (in a network namespace if asked) with piped stdout/stderr; wrap it in a LoggedProcess (or subclass). */
export function spawnNodeChild(script: string, args: string[], options: SpawnNodeOptions = {}): ChildProcess {
  const argv = [...NODE_HEAP_FLAGS, script, ...args];
  return options.netns
    ? spawn('ip', ['netns', 'exec', options.netns, process.execPath, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env: options.env })
    : spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: options.env });
}

/** Starts `node script args…` as a LoggedProcess, tracked for killAllChildren(). */
export function spawnNode(name: string, script: string, args: string[], options: SpawnNodeOptions = {}): LoggedProcess {
  return new LoggedProcess(name, spawnNodeChild(script, args, options), options.logFile ? { logFile: options.logFile } : {});
}

/** Synchronous last resort for a process 'exit' handler: SIGKILLs every tracked child without waiting. */
export function killAllChildrenSync(): void {
  for (const child of children) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    child.kill('SIGCONT');
    child.kill('SIGKILL');
  }
}
