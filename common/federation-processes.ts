// Starting a federation from its real binaries: the hub (proxy-server with the federation API
// server and controller), member clusters (member-mode federation API servers) and their
// cluster-agents, optionally inside a network namespace; and the kubeconfig that reaches them.
// Used by the test harness, the sandbox and the benchmark.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import type { PkiPaths } from '../certs/bundle.js';
import { LoggedProcess, spawnNode, spawnNodeChild, type LogLine } from './spawn.js';

/** dist/ of the compiled project (this file lives in dist/common/). */
export const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const HUB_BIN = path.join(DIST, 'proxy-server', 'main.js');
export const AGENT_BIN = path.join(DIST, 'cluster-agent', 'main.js');
export const APISERVER_BIN = path.join(DIST, 'federation', 'apiserver', 'main.js');

export interface HubPorts {
  agentPort: number;
  connectPort: number;
  adminPort: number;
  federationPort: number;
  connectUds: string | null;
}

export interface HubOptions {
  pki: PkiPaths;
  /** --federation-store: sqlite:///abs/path.db, sqlite::memory: or mysql://… */
  store: string;
  /** Listen hosts (default 127.0.0.1); the agent listener may need 0.0.0.0 to be reachable from network namespaces. */
  agentHost?: string;
  host?: string;
  /** Explicit ports (a restart on the same ports); 0 or absent = any free port. */
  ports?: Partial<Omit<HubPorts, 'connectUds'>>;
  connectUds?: string;
  instance?: string;
  drainTimeoutMs?: number;
  /** --federation-untenanted-placement (default: the hub's, untenanted). */
  untenantedPlacement?: 'untenanted' | 'all';
  extraArgs?: string[];
  logFile?: string;
  /** How long to wait for the ready line. */
  timeoutMs?: number;
}

export class HubProcess extends LoggedProcess {
  ports: HubPorts = { agentPort: 0, connectPort: 0, adminPort: 0, federationPort: 0, connectUds: null };

  agentRegistered(cluster: string, since = 0, timeoutMs?: number): Promise<LogLine> {
    return this.waitForLog((l) => l.msg === 'agent registered' && l.cluster === cluster, { since, ...(timeoutMs ? { timeoutMs } : {}) });
  }

  agentUnregistered(cluster: string, since = 0, timeoutMs?: number): Promise<LogLine> {
    return this.waitForLog((l) => l.msg === 'agent unregistered' && l.cluster === cluster, { since, ...(timeoutMs ? { timeoutMs } : {}) });
  }
}

/** Starts the hub and resolves once it logged 'proxy-server ready' (ports read from that line). */
export async function startHub(options: HubOptions): Promise<HubProcess> {
  const { pki } = options;
  const host = options.host ?? '127.0.0.1';
  const p = options.ports ?? {};
  const args = [
    '--ca', pki.ca.cert, '--cert', pki.server.cert, '--key', pki.server.key,
    '--agent-listen', `${options.agentHost ?? host}:${p.agentPort ?? 0}`,
    '--connect-listen', `${host}:${p.connectPort ?? 0}`,
    '--admin-listen', `${host}:${p.adminPort ?? 0}`,
    '--federation-listen', `${host}:${p.federationPort ?? 0}`,
    '--federation-store', options.store,
    '--instance', options.instance ?? 'hub',
    '--drain-timeout', String(options.drainTimeoutMs ?? 1000),
    ...(options.connectUds ? ['--connect-uds', options.connectUds] : []),
    ...(options.untenantedPlacement ? ['--federation-untenanted-placement', options.untenantedPlacement] : []),
    ...(options.extraArgs ?? []),
  ];
  const hub = new HubProcess('hub', spawnNodeChild(HUB_BIN, args), options.logFile ? { logFile: options.logFile } : {});
  try {
    const ready = await hub.waitForLog((l) => l.msg === 'proxy-server ready', options.timeoutMs ? { timeoutMs: options.timeoutMs } : {});
    if (typeof ready.federationPort !== 'number') throw new Error('hub started without its federation API server');
    hub.ports = {
      agentPort: ready.agentPort as number,
      connectPort: ready.connectPort as number,
      adminPort: ready.adminPort as number,
      federationPort: ready.federationPort,
      connectUds: (ready.connectUds as string | null) ?? null,
    };
  } catch (error) {
    await hub.kill('SIGKILL');
    throw error;
  }
  return hub;
}

export interface MemberApiServerOptions {
  name: string;
  pki: PkiPaths;
  /** --store of the member (default sqlite::memory:); a file keeps its data across agent restarts. */
  store?: string;
  /** Listen address inside its namespace (default 127.0.0.1:0). */
  listen?: string;
  netns?: string | null;
  extraArgs?: string[];
  logFile?: string;
  timeoutMs?: number;
}

export interface MemberApiServer {
  process: LoggedProcess;
  /** Bound port (inside the member's network namespace when it has one). */
  port: number;
}

/** Starts a member-mode federation API server; resolves with its port from the 'apiserver ready' line. */
export async function startMemberApiServer(options: MemberApiServerOptions): Promise<MemberApiServer> {
  const { pki } = options;
  const args = [
    '--member', '--listen', options.listen ?? '127.0.0.1:0', '--store', options.store ?? 'sqlite::memory:',
    '--ca', pki.ca.cert, '--cert', pki.server.cert, '--key', pki.server.key,
    ...(options.extraArgs ?? []),
  ];
  const proc = spawnNode(`member-${options.name}`, APISERVER_BIN, args, { netns: options.netns ?? null, ...(options.logFile ? { logFile: options.logFile } : {}) });
  try {
    const ready = await proc.waitForLog((l) => l.msg === 'apiserver ready', options.timeoutMs ? { timeoutMs: options.timeoutMs } : {});
    return { process: proc, port: ready.port as number };
  } catch (error) {
    await proc.kill('SIGKILL');
    throw error;
  }
}

export interface MemberAgentOptions {
  cluster: string;
  pki: PkiPaths;
  /** The hub's agent listener as seen from the agent, HOST:PORT. */
  server: string;
  /** Name expected in the hub's certificate (default localhost). */
  serverName?: string;
  /** The member API server, HOST:PORT as seen from the agent; always allowed as a destination. */
  apiserver: string;
  netns?: string | null;
  drainTimeoutMs?: number;
  /** Reconnect backoff; default 50 ms doubling to 500 ms (quick re-registration), null for the agent's own defaults. */
  backoff?: { initialMs: number; maxMs: number } | null;
  extraArgs?: string[];
  logFile?: string;
}

/** Spawns a member's cluster-agent (wait for the hub's 'agent registered' to know it is up). */
export function spawnMemberAgent(options: MemberAgentOptions): LoggedProcess {
  const cert = options.pki.agents[options.cluster];
  if (!cert) throw new Error(`no agent certificate for cluster ${options.cluster} (ensurePki must list it)`);
  const backoff = options.backoff === undefined ? { initialMs: 50, maxMs: 500 } : options.backoff;
  const args = [
    '--server', options.server, '--server-name', options.serverName ?? 'localhost',
    '--ca', options.pki.ca.cert, '--cert', cert.cert, '--key', cert.key,
    '--apiserver', options.apiserver, '--health-listen', '127.0.0.1:0',
    ...(backoff ? ['--backoff-initial', String(backoff.initialMs), '--backoff-max', String(backoff.maxMs)] : []),
    '--instance', `${options.cluster}-agent`, '--drain-timeout', String(options.drainTimeoutMs ?? 1000),
    ...(options.extraArgs ?? []),
  ];
  return spawnNode(`agent-${options.cluster}`, AGENT_BIN, args, { netns: options.netns ?? null, ...(options.logFile ? { logFile: options.logFile } : {}) });
}

/** Spawns a member's agent and resolves once the hub registered it. */
export async function startMemberAgent(hub: HubProcess, options: MemberAgentOptions & { timeoutMs?: number }): Promise<LoggedProcess> {
  const since = hub.mark;
  const agent = spawnMemberAgent(options);
  try {
    await Promise.race([
      hub.agentRegistered(options.cluster, since, options.timeoutMs),
      agent.exited.then(() => Promise.reject(new Error(`agent of ${options.cluster} exited before it registered\n${agent.stderr}`))),
    ]);
  } catch (error) {
    await agent.kill('SIGKILL');
    throw error;
  }
  return agent;
}

export interface KubeconfigCluster {
  /** Context and cluster name. */
  name: string;
  /** https://host:port */
  server: string;
  caFile: string;
  /** kubectl proxy-url, e.g. https://<cluster>@127.0.0.1:<connectPort> (the CONNECT frontend routes on the user name). */
  proxyUrl?: string;
}

/** Writes a kubeconfig (mode 0600) with one context per cluster, all as one client-certificate user. */
export function writeKubeconfig(file: string, clusters: KubeconfigCluster[], user: { cert: string; key: string; name?: string }, current: string): void {
  const userName = user.name ?? 'admin';
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: clusters.map((c) => ({
      name: c.name,
      cluster: { server: c.server, 'certificate-authority': c.caFile, ...(c.proxyUrl ? { 'proxy-url': c.proxyUrl } : {}) },
    })),
    users: [{ name: userName, user: { 'client-certificate': user.cert, 'client-key': user.key } }],
    contexts: clusters.map((c) => ({ name: c.name, context: { cluster: c.name, user: userName } })),
    'current-context': current,
  };
  fs.writeFileSync(file, YAML.stringify(config), { mode: 0o600 });
}

/**
 * The proxy-url that reaches `cluster` through the hub's CONNECT frontend. The empty password
 * (`<cluster>:@`) matters: kubectl ≥ 1.30 dials exec and port-forward WebSockets with
 * gorilla/websocket, which sends Proxy-Authorization only when the proxy URL has a password.
 */
export function connectProxyUrl(cluster: string, connectPort: number, host = '127.0.0.1'): string {
  return `https://${cluster}:@${host}:${connectPort}`;
}
