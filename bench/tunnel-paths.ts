// The tunnel under test as benchmark paths: a real proxy-server process and a real cluster-agent
// process (carrier tls, ws or http2), and a client that asks the server's CONNECT frontend on its Unix
// socket for each connection. The Unix socket keeps the client→proxy hop plain, like the entry
// hop of the ssh -R and tls_relay baselines. (The `ha` bench also CONNECTs over TLS, through a load balancer.)
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { ensurePki, type PkiPaths } from '../certs/bundle.js';
import { NODE_HEAP_FLAGS } from '../common/node-flags.js';
import { ClosedEarly, ConnectRefused, RequestTimeout } from '../common/request-failures.js';
import type { Endpoint, Path, PathFactory } from './scenario.js';
import { makeTempDir, ManagedChild, removeTempDir } from './system.js';

export const SERVER_BIN = fileURLToPath(new URL('../proxy-server/main.js', import.meta.url));
export const AGENT_BIN = fileURLToPath(new URL('../cluster-agent/main.js', import.meta.url));

/** The cluster every benchmark agent serves. */
export const BENCH_CLUSTER = 'bench';
const BENCH_TENANT = 'bench';

const READY_TIMEOUT_MS = 20_000;
const CONNECT_TIMEOUT_MS = 15_000;
/** A CONNECT response head is a few hundred bytes; anything far larger is not our server. */
const MAX_RESPONSE_HEAD = 16 * 1024;

/** A user of the CONNECT TLS frontend: system:masters may reach every cluster. */
export const BENCH_ADMIN = 'bench-admin';

/** Creates (or reuses) the benchmark's CA, server cert and agent cert for BENCH_CLUSTER in `dir`; with `admin`, also BENCH_ADMIN's client cert. */
export function benchPki(dir: string, options: { admin?: boolean } = {}): PkiPaths {
  const users = options.admin ? [{ user: BENCH_ADMIN, groups: ['system:masters'] }] : [];
  return ensurePki(dir, { clusters: [{ name: BENCH_CLUSTER, tenant: BENCH_TENANT }], users });
}

export type BenchCarrier = 'tls' | 'ws' | 'http2';

/** `drainTimeoutMs`: also how long a link the agent replaces (HA link dedupe) keeps its open streams; 0 suits a bench that never replaces links. */
export function agentArgs(pki: PkiPaths, agentPort: number, carrier: BenchCarrier, extra: string[] = [], drainTimeoutMs = 0): string[] {
  const agentCert = pki.agents[BENCH_CLUSTER]!;
  return [
    '--server', `127.0.0.1:${agentPort}`,
    '--carrier', carrier,
    '--ca', pki.ca.cert, '--cert', agentCert.cert, '--key', agentCert.key,
    '--allow', '127.0.0.1:*',
    '--health-listen', 'off',
    '--drain-timeout', String(drainTimeoutMs),
    '--log-level', 'warn',
    '--instance', 'bench-agent',
    ...extra,
  ];
}

export interface LogLine {
  msg?: string;
  [field: string]: unknown;
}

/**
 * Follows a child's pino JSON lines on stdout until stop(). ManagedChild keeps draining stdout
 * afterwards, so a chatty child never blocks on a full pipe.
 */
export class LogFollower {
  private partial = '';
  private readonly seen: LogLine[] = [];
  private readonly listeners = new Set<(line: LogLine) => void>();
  private stopped = false;

  constructor(private readonly child: ManagedChild) {
    child.process.stdout!.on('data', this.onData);
  }

  /** Resolves with the first line (already seen or still to come) that matches. */
  waitFor(predicate: (line: LogLine) => boolean, timeoutMs: number, what: string): Promise<LogLine> {
    const earlier = this.seen.find(predicate);
    if (earlier) return Promise.resolve(earlier);
    return new Promise((resolve, reject) => {
      const finish = (settle: () => void): void => {
        clearTimeout(timer);
        this.listeners.delete(onLine);
        this.child.process.off('close', onClose);
        settle();
      };
      const onLine = (line: LogLine): void => {
        if (predicate(line)) finish(() => resolve(line));
      };
      const onClose = (): void => finish(() => reject(this.child.failure(`exited before ${what}`)));
      const timer = setTimeout(() => finish(() => reject(this.child.failure(`no ${what} within ${timeoutMs} ms`))), timeoutMs);
      this.listeners.add(onLine);
      this.child.process.once('close', onClose);
      if (this.child.hasExited) onClose();
    });
  }

  /** Stops parsing: per-stream log lines during measurements cost the benchmark process nothing more than a drain. */
  stop(): void {
    this.stopped = true;
    this.child.process.stdout!.off('data', this.onData);
    this.seen.length = 0;
    this.listeners.clear();
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.stopped) return;
    const lines = (this.partial + chunk.toString('utf8')).split('\n');
    this.partial = lines.pop() ?? '';
    if (this.partial.length > 1024 * 1024) this.partial = ''; // not JSON lines; do not grow without bound
    for (const text of lines) {
      if (!text.startsWith('{')) continue;
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        continue;
      }
      if (this.seen.length < 1000) this.seen.push(line);
      for (const listener of [...this.listeners]) listener(line);
    }
  };
}

export interface TunnelRigOptions {
  carrier: BenchCarrier;
  serverArgs?: string[];
  agentArgs?: string[];
}

/** A running proxy-server plus one registered cluster-agent. */
export interface TunnelRig {
  cluster: string;
  udsPath: string;
  adminPort: number;
  server: ManagedChild;
  agent: ManagedChild;
  /** A CONNECT tunnel through the Unix-socket frontend to `target` inside the cluster. */
  connect(target: Endpoint): Promise<net.Socket>;
  /** What the server's /debug/agents says. */
  debugState(): Promise<{ agents: Array<{ streams: number; carrier: string }>; streams: number; pendingDials: number }>;
  close(): Promise<void>;
}

export async function startTunnelRig(options: TunnelRigOptions): Promise<TunnelRig> {
  const workDir = await makeTempDir(`bench-tunnel-${options.carrier}-`);
  const children: ManagedChild[] = [];
  const close = async (): Promise<void> => {
    // The agent first, so the server sees a clean GOAWAY rather than a lost link.
    for (const child of [...children].reverse()) await child.stop();
    await removeTempDir(workDir);
  };
  try {
    const pki = benchPki(path.join(workDir, 'pki'));
    const udsPath = path.join(workDir, 'connect.sock');
    const server = new ManagedChild(process.execPath, [
      ...NODE_HEAP_FLAGS,
      SERVER_BIN,
      '--ca', pki.ca.cert, '--cert', pki.server.cert, '--key', pki.server.key,
      '--agent-listen', '127.0.0.1:0',
      '--connect-listen', '127.0.0.1:0',
      '--connect-uds', udsPath,
      '--admin-listen', '127.0.0.1:0',
      '--drain-timeout', '0',
      '--instance', 'bench-server',
      // info, for the "agent registered" line; it also logs two lines per stream, which is
      // what a default deployment pays too.
      '--log-level', 'info',
      ...(options.serverArgs ?? []),
    ]);
    children.push(server);
    const serverLog = new LogFollower(server);
    const ready = await serverLog.waitFor((line) => line.msg === 'proxy-server ready', READY_TIMEOUT_MS, '"proxy-server ready" line');
    const agentPort = ready.agentPort as number;
    const adminPort = ready.adminPort as number;
    if ((ready.connectUds as string | null) !== udsPath) throw server.failure(`ready line names Unix socket ${String(ready.connectUds)}, expected ${udsPath}`);

    const agent = new ManagedChild(process.execPath, [...NODE_HEAP_FLAGS, AGENT_BIN, ...agentArgs(pki, agentPort, options.carrier, options.agentArgs)]);
    children.push(agent);
    const registered = serverLog.waitFor(
      (line) => line.msg === 'agent registered' && line.cluster === BENCH_CLUSTER,
      READY_TIMEOUT_MS,
      '"agent registered" line',
    );
    // An agent that dies (bad flag, bad cert) fails the wait at once instead of after the timeout.
    const agentExited = new Promise<never>((_, reject) => {
      agent.process.once('close', () => reject(agent.failure('exited before registering')));
    });
    agentExited.catch(() => {});
    await Promise.race([registered, agentExited]);
    serverLog.stop();

    return {
      cluster: BENCH_CLUSTER,
      udsPath,
      adminPort,
      server,
      agent,
      connect: (target) => connectThroughTunnel(udsPath, BENCH_CLUSTER, target),
      debugState: async () => JSON.parse(await httpGet(adminPort, '/debug/agents')),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * Opens the Unix socket, sends `CONNECT <host>.<cluster>.tunnel:<port>`, and resolves with the
 * socket once a 200 head has been read; bytes after the head are put back for the caller. The
 * socket is left neither flowing nor explicitly paused, so a later 'data' listener starts it.
 * Fails with the typed errors of common/request-failures.ts (ConnectRefused, ClosedEarly, RequestTimeout).
 */
export function connectThroughTunnel(udsPath: string, cluster: string, target: Endpoint): Promise<net.Socket> {
  return connectThrough(net.connect(udsPath), 'connect', cluster, target);
}

/** The same through the CONNECT TLS frontend at 127.0.0.1:`port`, as BENCH_ADMIN. */
export function connectThroughTls(pki: PkiPaths, port: number, cluster: string, target: Endpoint): Promise<net.Socket> {
  const admin = pki.users[BENCH_ADMIN];
  if (!admin) throw new Error(`no ${BENCH_ADMIN} certificate: benchPki(dir, { admin: true })`);
  const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: fs.readFileSync(pki.ca.cert), cert: fs.readFileSync(admin.cert), key: fs.readFileSync(admin.key) });
  return connectThrough(socket, 'secureConnect', cluster, target);
}

function connectThrough(socket: net.Socket, ready: 'connect' | 'secureConnect', cluster: string, target: Endpoint): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    let head: Buffer = Buffer.alloc(0);
    const fail = (error: Error): void => {
      cleanup();
      socket.destroy();
      reject(error);
    };
    const timer = setTimeout(() => fail(new RequestTimeout(`no CONNECT answer within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS);
    const onReadable = (): void => {
      let chunk: Buffer | null;
      while ((chunk = socket.read() as Buffer | null) !== null) {
        head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) {
          if (head.length > MAX_RESPONSE_HEAD) return fail(new Error('CONNECT response head too large'));
          continue;
        }
        const [statusLine = '', ...headerLines] = head.toString('latin1', 0, end).split('\r\n');
        if (!/^HTTP\/1\.[01] 200 /.test(statusLine)) {
          const status = Number(/^HTTP\/1\.[01] (\d{3}) /.exec(statusLine)?.[1] ?? 0);
          const code = headerLines.find((l) => /^tunnel-error:/i.test(l))?.slice('tunnel-error:'.length).trim();
          return fail(new ConnectRefused(status, code, head.toString('utf8', end + 4)));
        }
        cleanup();
        const rest = head.subarray(end + 4);
        if (rest.length > 0) socket.unshift(rest);
        resolve(socket);
        return;
      }
    };
    const onEnd = (): void => fail(new ClosedEarly('connection ended before the CONNECT answer'));
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('error', fail);
      socket.off('end', onEnd);
    };
    socket.on('readable', onReadable);
    socket.on('error', fail);
    socket.on('end', onEnd);
    socket.once(ready, () => {
      socket.write(`CONNECT ${target.host}.${cluster}.tunnel:${target.port} HTTP/1.1\r\nHost: x\r\n\r\n`);
    });
  });
}

function httpGet(port: number, urlPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = http.get({ host: '127.0.0.1', port, path: urlPath, agent: false, timeout: 10_000 }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => (response.statusCode === 200 ? resolve(body) : reject(new Error(`GET ${urlPath}: ${response.statusCode}`))));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error(`GET ${urlPath} timed out`)));
    request.on('error', reject);
  });
}

/** `name` is the path's key suffix (tunnel.throughput_MBps.<name>). */
function tunnelFactory(carrier: BenchCarrier, name: string = carrier): PathFactory {
  return {
    name,
    async start(): Promise<Path> {
      const rig = await startTunnelRig({ carrier });
      return {
        name,
        connect: (target): Promise<Duplex> => rig.connect(target),
        close: () => rig.close(),
      };
    },
  };
}

export const tlsTunnel: PathFactory = tunnelFactory('tls');
export const wsTunnel: PathFactory = tunnelFactory('ws');
export const h2Tunnel: PathFactory = tunnelFactory('http2', 'h2');
