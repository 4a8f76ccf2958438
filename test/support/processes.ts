// Runs proxy-server and cluster-agent as real child processes and follows their JSON logs, so a
// test waits for the event it needs ("agent registered", "link established") instead of sleeping.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import http from 'node:http';
import readline from 'node:readline';
import { AGENT_BIN, SERVER_BIN } from './paths.js';
import { testPki } from './pki.js';

export interface LogLine {
  msg: string;
  level: number;
  [key: string]: unknown;
}

type LogPredicate = (line: LogLine) => boolean;

const DEFAULT_WAIT_MS = 20_000;

/** Every child a test started, so a failed test cannot leave processes behind (see root-hooks). */
const children = new Set<ChildProcess>();

export async function killAllChildren(): Promise<void> {
  await Promise.all(
    [...children].map((child) => {
      if (child.exitCode !== null || child.signalCode !== null) return undefined;
      child.kill('SIGKILL');
      return once(child, 'exit');
    }),
  );
}

export class LoggedProcess {
  readonly lines: LogLine[] = [];
  private readonly events = new EventEmitter();
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr = '';

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    readline.createInterface({ input: child.stdout! }).on('line', (text) => {
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        line = { msg: text, level: 30 };
      }
      this.lines.push(line);
      this.events.emit('line', line);
    });
    child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    children.add(child);
    this.exited = once(child, 'exit').then(([code, signal]) => {
      children.delete(child);
      return { code: code as number | null, signal: signal as NodeJS.Signals | null };
    });
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

  kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}

function spawnNode(name: string, script: string, args: string[]): LoggedProcess {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new LoggedProcess(name, child);
}

export interface ServerState {
  agents: Array<{ cluster: string; tenant: string; streams: number; draining: boolean; carrier: string }>;
  streams: number;
  pendingDials: number;
}

export class ServerProcess extends LoggedProcess {
  agentPort = 0;
  connectPort = 0;
  adminPort = 0;
  connectUds = '';

  state(): Promise<ServerState> {
    return getJson(this.adminPort, '/debug/agents') as Promise<ServerState>;
  }

  metrics(): Promise<string> {
    return getText(this.adminPort, '/metrics');
  }

  /** Waits for the registration log of an agent of `cluster`. */
  agentRegistered(cluster: string, since = 0): Promise<LogLine> {
    return this.waitForLog((l) => l.msg === 'agent registered' && l.cluster === cluster, { since });
  }

  agentUnregistered(cluster: string, since = 0): Promise<LogLine> {
    return this.waitForLog((l) => l.msg === 'agent unregistered' && l.cluster === cluster, { since });
  }
}

export async function startServer(options: { uds?: string; agentPort?: number; extraArgs?: string[] } = {}): Promise<ServerProcess> {
  const pki = testPki();
  const args = [
    '--ca', pki.ca.cert, '--cert', pki.server.cert, '--key', pki.server.key,
    '--agent-listen', `127.0.0.1:${options.agentPort ?? 0}`,
    '--connect-listen', '127.0.0.1:0',
    '--admin-listen', '127.0.0.1:0',
    '--instance', 'test-server',
    ...(options.uds ? ['--connect-uds', options.uds] : []),
    ...(options.extraArgs ?? []),
  ];
  const child = spawn(process.execPath, [SERVER_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const server = new ServerProcess('proxy-server', child);
  const ready = await server.waitForLog((l) => l.msg === 'proxy-server ready');
  server.agentPort = ready.agentPort as number;
  server.connectPort = ready.connectPort as number;
  server.adminPort = ready.adminPort as number;
  server.connectUds = (ready.connectUds as string | null) ?? '';
  return server;
}

export interface AgentStartOptions {
  cluster: string;
  server: ServerProcess | { agentPort: number };
  allow?: string[];
  carrier?: 'tls' | 'ws';
  proxy?: string;
  /** Use another identity's certificate (to test that identity comes from it). */
  certOf?: string;
  extraArgs?: string[];
}

export function spawnAgent(options: AgentStartOptions): LoggedProcess {
  const pki = testPki();
  const cert = options.certOf ? pki.users[options.certOf] ?? pki.agents[options.certOf] : pki.agents[options.cluster];
  if (!cert) throw new Error(`no test certificate for ${options.certOf ?? options.cluster}`);
  const args = [
    '--server', `127.0.0.1:${options.server.agentPort}`,
    '--ca', pki.ca.cert, '--cert', cert.cert, '--key', cert.key,
    '--health-listen', '127.0.0.1:0',
    '--backoff-initial', '50', '--backoff-max', '500',
    '--instance', `agent-${options.cluster}`,
    '--carrier', options.carrier ?? 'tls',
    ...(options.proxy ? ['--proxy', options.proxy] : []),
    ...(options.allow ?? []).flatMap((rule) => ['--allow', rule]),
    ...(options.extraArgs ?? []),
  ];
  return spawnNode(`agent-${options.cluster}`, AGENT_BIN, args);
}

/** Starts an agent and resolves once the server has registered it. */
export async function startAgent(options: AgentStartOptions & { server: ServerProcess }): Promise<LoggedProcess> {
  const since = options.server.mark;
  const agent = spawnAgent(options);
  await options.server.agentRegistered(options.cluster, since);
  return agent;
}

export function getText(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

export async function getJson(port: number, path: string): Promise<unknown> {
  return JSON.parse(await getText(port, path));
}
