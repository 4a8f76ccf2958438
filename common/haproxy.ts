// HAProxy (Debian package) as the L4 load balancer in front of hub replicas: TCP frontends for
// the agent, CONNECT and (when the replicas serve it) federation ports, each backend
// health-checked on the replica's admin /readyz, with retries and redispatch so a connection
// refused by a replica that is going away is tried on another. The runtime API (a Unix socket)
// tells which servers HAProxy considers up. Shared by the rolling-restart test and the `ha` bench.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { LoggedProcess } from './spawn.js';

export const HAPROXY_BIN = '/usr/sbin/haproxy';

export interface BackendServer {
  name: string;
  agentPort: number;
  connectPort: number;
  /** Absent when the replicas run without the federation API server: no federation frontend then. */
  federationPort?: number;
  adminPort: number;
}

export interface HaproxyPorts {
  agentPort: number;
  connectPort: number;
  /** Ignored (no federation frontend) unless every server has a federationPort. */
  federationPort: number;
}

type BackendName = 'agents' | 'connect' | 'federation';

function backendsOf(servers: BackendServer[]): BackendName[] {
  return servers.every((s) => s.federationPort !== undefined) ? ['agents', 'connect', 'federation'] : ['agents', 'connect'];
}

/** The configuration (also shown in the README): one TCP frontend/backend pair per hub port. */
export function haproxyConfig(ports: HaproxyPorts, servers: BackendServer[], adminSocket: string, checkIntervalMs = 100): string {
  const backend = (name: string, port: number, serverPort: (s: BackendServer) => number): string =>
    [
      `frontend ${name}`,
      `  bind 127.0.0.1:${port}`,
      `  default_backend ${name}`,
      `backend ${name}`,
      '  option httpchk GET /readyz',
      '  http-check expect status 200',
      ...servers.map((s) => `  server ${s.name} 127.0.0.1:${serverPort(s)} check port ${s.adminPort} inter ${checkIntervalMs} fall 2 rise 1`),
      '',
    ].join('\n');
  return [
    'global',
    `  stats socket ${adminSocket} mode 600 level admin`,
    '  maxconn 4096',
    'defaults',
    '  mode tcp',
    '  timeout connect 2s',
    // A health check may take longer than its 100 ms interval on a loaded machine: without this
    // its timeout is the interval, and healthy replicas were marked DOWN mid-restart.
    '  timeout check 2s',
    '  timeout client 5m',
    '  timeout server 5m',
    '  retries 3',
    '  option redispatch 1',
    '',
    backend('agents', ports.agentPort, (s) => s.agentPort),
    backend('connect', ports.connectPort, (s) => s.connectPort),
    ...(backendsOf(servers).includes('federation') ? [backend('federation', ports.federationPort, (s) => s.federationPort!)] : []),
  ].join('\n');
}

export class Haproxy {
  private constructor(
    readonly process: LoggedProcess,
    readonly ports: HaproxyPorts,
    private readonly adminSocket: string,
    private readonly backends: BackendName[],
  ) {}

  /** `dir` takes the configuration and the runtime API socket; `ports` are the frontends' (free) ports. */
  static async start(servers: BackendServer[], dir: string, ports: HaproxyPorts): Promise<Haproxy> {
    fs.mkdirSync(dir, { recursive: true });
    const adminSocket = path.join(dir, 'admin.sock');
    const file = path.join(dir, 'haproxy.cfg');
    fs.writeFileSync(file, haproxyConfig(ports, servers, adminSocket));
    // -db: foreground, no daemon; -W: master-worker off by default in foreground.
    const child = spawn(HAPROXY_BIN, ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    const haproxy = new Haproxy(new LoggedProcess('haproxy', child), ports, adminSocket, backendsOf(servers));
    await haproxy.waitUntil((states) => states.size > 0, 10_000);
    return haproxy;
  }

  /** "backend/server" → status (UP, DOWN, MAINT, "UP 1/2"…), from the runtime API's show stat. */
  async states(): Promise<Map<string, string>> {
    const csv = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(this.adminSocket);
      let out = '';
      socket.setEncoding('utf8');
      socket.on('data', (d: string) => (out += d));
      socket.on('end', () => resolve(out));
      socket.on('error', reject);
      socket.write('show stat\n');
    });
    const lines = csv.split('\n').filter((l) => l && !l.startsWith('#'));
    const header = csv.split('\n')[0]!.replace(/^# /, '').split(',');
    const col = (name: string): number => header.indexOf(name);
    const out = new Map<string, string>();
    for (const line of lines) {
      const f = line.split(',');
      const sv = f[col('svname')]!;
      if (sv === 'FRONTEND' || sv === 'BACKEND') continue;
      out.set(`${f[col('pxname')]}/${sv}`, f[col('status')]!);
    }
    return out;
  }

  /** Waits (bounded; HAProxy's state is another process's) until `check` holds for the server states. */
  async waitUntil(check: (states: Map<string, string>) => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = new Map<string, string>();
    for (;;) {
      try {
        last = await this.states();
        if (check(last)) return;
      } catch {
        // the socket is not there yet
      }
      if (Date.now() > deadline) throw new Error(`HAProxy: condition not met within ${timeoutMs} ms; states ${JSON.stringify([...last])}\n${this.process.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Resolves once every backend has `server` in state UP (or, with up false, not UP). */
  serverUp(server: string, up = true, timeoutMs?: number): Promise<void> {
    return this.waitUntil((states) => this.backends.every((b) => (states.get(`${b}/${server}`) === 'UP') === up), timeoutMs);
  }

  async stop(): Promise<void> {
    await this.process.kill('SIGTERM');
  }
}
