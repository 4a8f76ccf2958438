// Runs proxy-server and cluster-agent as real child processes and follows their JSON logs, so a
// test waits for the event it needs ("agent registered", "link established") instead of sleeping.
import { spawn } from 'node:child_process';
import { getJson, getText } from '../../common/http-get.js';
import { LoggedProcess, spawnNode, type LogLine } from '../../common/spawn.js';
import { AGENT_BIN, SERVER_BIN } from './paths.js';
import { testPki } from './pki.js';

// The process plumbing lives in common/ (the sandbox and the benchmark use it too).
export { LoggedProcess, killAllChildren, spawnNode, type LogLine, type LogPredicate } from '../../common/spawn.js';

export interface ServerState {
  agents: Array<{ linkId: number; cluster: string; tenant: string; streams: number; draining: boolean; carrier: string }>;
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

/** agentHost: where the agent listener binds (0.0.0.0 for agents in network namespaces; default 127.0.0.1). */
export async function startServer(options: { uds?: string; agentPort?: number; agentHost?: string; extraArgs?: string[] } = {}): Promise<ServerProcess> {
  const pki = testPki();
  const args = [
    '--ca', pki.ca.cert, '--cert', pki.server.cert, '--key', pki.server.key,
    '--agent-listen', `${options.agentHost ?? '127.0.0.1'}:${options.agentPort ?? 0}`,
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
  carrier?: 'tls' | 'ws' | 'http2';
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

export { getJson, getText };
