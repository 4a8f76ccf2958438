// kubectl end to end through the hub: a hub with its embedded federation, member-mode API servers
// started with --enable-pod-exec (each in its own network namespace, behind its cluster-agent),
// joined as KubeFedClusters whose Secret holds the hub's own credential (user fedtunnel-hub,
// allowed on each member by RBAC objects to impersonate, nothing more), and real kubectl of a
// chosen version with one kubeconfig per frontend and user:
//   connect  — `proxy-url: https://<cluster>:@hub` (the CONNECT frontend; TLS to the member end to end)
//   clusters — `server: https://hub/clusters/<cluster>` (the hub's Kubernetes API proxy)
// Also the stream counts of the hub and every agent, for "nothing left behind" checks.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import tls from 'node:tls';
import { setTimeout as pause } from 'node:timers/promises';
import YAML from 'yaml';
import type { AgentDebugState } from '../../cluster-agent/agent.js';
import type { DebugState } from '../../proxy-server/admin.js';
import { connectProxyUrl } from '../../common/federation-processes.js';
import { getJson } from '../../common/http-get.js';
import { runCommand, startFederation, type Federation } from './federation-harness.js';
import { FEDCTL_BIN } from './paths.js';
import { spawnOnPty } from './pty.js';

export type Frontend = 'connect' | 'clusters';
export const FRONTENDS: Frontend[] = ['connect', 'clusters'];

/** The user the hub authenticates as toward members (the KubeFedCluster Secret's certificate). */
export const HUB_USER = 'fedtunnel-hub';

/** What the hub's credential may do on a member: impersonate, and nothing else. */
export const MEMBER_HUB_RBAC = `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: fedtunnel-hub-impersonator}
rules:
- apiGroups: [""]
  resources: [users, groups, serviceaccounts]
  verbs: [impersonate]
- apiGroups: [authentication.k8s.io]
  resources: [uids, userextras/scopes, userextras/reason]
  verbs: [impersonate]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: fedtunnel-hub-impersonator}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: fedtunnel-hub-impersonator}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: ${HUB_USER}}
`;

/** The directory of the kubectl on PATH after resolving symlinks, where kubectl.1.27 … kubectl.1.33 sit. */
export function kubectlDir(): string {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, 'kubectl');
    if (fs.existsSync(candidate)) return path.dirname(fs.realpathSync(candidate));
  }
  throw new Error('no kubectl on PATH');
}

export interface Run {
  code: number;
  stdout: Buffer;
  stderr: string;
}

export interface Running {
  child: ChildProcess;
  /** Resolves with the exit code once kubectl (or its terminal driver) has exited. */
  exited: Promise<number | null>;
  output(): string;
  waitFor(re: RegExp, timeoutMs?: number): Promise<void>;
  /** SIGKILL (unless exited) and wait for the exit. */
  kill(): Promise<void>;
}

function follow(child: ChildProcess): Running {
  let out = '';
  const waiters = new Set<() => void>();
  const onData = (d: Buffer): void => {
    out += d.toString();
    for (const w of [...waiters]) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  child.stdin?.on('error', () => undefined);
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return {
    child,
    exited,
    output: () => out,
    waitFor: (re, timeoutMs = 30_000) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          if (!re.test(out)) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`kubectl output never matched ${re}:\n${out}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** One kubectl binary with one kubeconfig and context, its own discovery cache. */
export class Kubectl {
  constructor(
    readonly bin: string,
    readonly kubeconfig: string,
    readonly context: string,
    readonly cacheDir: string,
  ) {}

  private argv(args: string[]): string[] {
    return ['--kubeconfig', this.kubeconfig, '--context', this.context, '--cache-dir', this.cacheDir, ...args];
  }

  private env(): NodeJS.ProcessEnv {
    return { ...process.env, HOME: this.cacheDir };
  }

  /** Runs to completion (SIGKILL after 60 s); never rejects on a non-zero exit. */
  run(args: string[], input?: Buffer | string): Promise<Run> {
    return new Promise((resolve, reject) => {
      const child = spawn(this.bin, this.argv(args), { env: this.env(), stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      let err = '';
      child.stdout!.on('data', (d: Buffer) => out.push(d));
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      child.stdin!.on('error', () => undefined);
      child.stdin!.end(input ?? '');
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.once('error', reject);
      child.once('close', (code) => {
        clearTimeout(timer);
        resolve({ code: code ?? -1, stdout: Buffer.concat(out), stderr: err });
      });
    });
  }

  /** Starts a long-running kubectl (watch, logs -f, port-forward, exec); stdout and stderr are followed together. */
  start(args: string[]): Running {
    return follow(spawn(this.bin, this.argv(args), { env: this.env(), stdio: ['pipe', 'pipe', 'pipe'] }));
  }

  /** Starts kubectl on a pseudo-terminal (for -t); SIGUSR1 to `child` resizes the terminal to `resized`. */
  startOnPty(args: string[], initial: { rows: number; cols: number }, resized: { rows: number; cols: number }): Running {
    return follow(spawnOnPty(this.bin, this.argv(args), initial, resized, this.env()));
  }
}

export interface KubeThroughHubOptions {
  /** Member name → labels of its KubeFedCluster (e.g. fedtunnel.io/tenant=retail) and its agent certificate's tenant. */
  members: Record<string, { tenant?: string; labels?: string[] }>;
  /** Test users (client certificates) besides admin (system:masters) and the hub's own. */
  users?: Array<{ user: string; groups: string[] }>;
  /** Extra flags of the hub (e.g. short listener limits, --oidc-*). */
  hubArgs?: string[];
  /** Extra flags of every member API server besides --member --enable-pod-exec. */
  memberArgs?: string[];
}

export interface KubeThroughHub {
  fed: Federation;
  /** A kubectl of version `minor` (27 … 33) for `user` through `frontend` to `cluster`. */
  kubectl(minor: number, frontend: Frontend, cluster: string, user?: string): Kubectl;
  /** The kubeconfig of `user` for `frontend`: one context per member, named after it. */
  kubeconfig(frontend: Frontend, user?: string): string;
  /**
   * One HTTPS request to `cluster`'s API through `frontend` as `user` (no kubectl; agent: false):
   * resolves with the response as it starts (read it as a stream), or rejects when the CONNECT is
   * refused (ConnectRefusedError). `urlPath` is sent as written (path tricks go through unchanged).
   */
  request(frontend: Frontend, cluster: string, urlPath: string, options?: RawRequestOptions): Promise<http.IncomingMessage>;
  hubState(): Promise<DebugState>;
  agentState(member: string): Promise<AgentDebugState>;
  /** Open streams: the hub's and each agent's. */
  streams(): Promise<StreamCounts>;
  /** Waits (bounded) until no stream count is above `baseline`; throws with both when one stays above. */
  streamsBackTo(baseline: StreamCounts, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export interface RawRequestOptions {
  /** Client certificate of this test user (default admin); null: none (bearer tokens). */
  user?: string | null;
  /** /clusters frontend: send `urlPath` as the whole request target (path tricks), not under /clusters/<cluster>. */
  asIs?: boolean;
  method?: string;
  /** Header lines as sent, in order (repeat a name for duplicates; any case). */
  headers?: Array<[string, string]>;
  body?: string;
  /** Give up after this long (default 15 s). */
  timeoutMs?: number;
}

export class ConnectRefusedError extends Error {
  constructor(readonly status: number, readonly head: string) {
    super(`CONNECT refused with ${status}: ${head}`);
  }
}

/** Reads one HTTP response head from a socket; the bytes after it are pushed back. */
function readHead(socket: tls.TLSSocket): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end < 0) return;
      cleanup();
      socket.pause();
      if (buffered.length > end + 4) socket.unshift(buffered.subarray(end + 4));
      resolve(buffered.subarray(0, end).toString('latin1'));
    };
    const onEnd = (): void => {
      cleanup();
      reject(new Error('the hub closed the connection before answering CONNECT'));
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(error);
    };
    const cleanup = (): void => {
      socket.off('data', onData).off('end', onEnd).off('error', onError);
    };
    socket.on('data', onData).once('end', onEnd).once('error', onError);
  });
}

export interface StreamCounts {
  hub: number;
  agents: Record<string, number>;
}

/** JSON of a process's debug endpoint inside a network namespace (only processes there reach its loopback). */
function readInNetns<T>(netns: string | null, port: number, urlPath: string): Promise<T> {
  if (!netns) return getJson(port, urlPath) as Promise<T>;
  return new Promise((resolve, reject) =>
    execFile('ip', ['netns', 'exec', netns, 'curl', '-sS', '--max-time', '5', `http://127.0.0.1:${port}${urlPath}`], (error, out) => (error ? reject(error) : resolve(JSON.parse(out) as T))),
  );
}

export async function startKubeThroughHub(options: KubeThroughHubOptions): Promise<KubeThroughHub> {
  const names = Object.keys(options.members);
  const users = [{ user: HUB_USER, groups: [] }, ...(options.users ?? [])];
  const fed = await startFederation({
    members: names,
    isolation: 'netns',
    users,
    tenants: Object.fromEntries(names.map((n) => [n, options.members[n]!.tenant ?? `tenant-${n}`])),
    extraServerArgs: options.hubArgs ?? [],
    extraMemberArgs: ['--enable-pod-exec', ...(options.memberArgs ?? [])],
  });
  try {
    const hubCert = fed.pki.users[HUB_USER]!;
    await Promise.all(names.map(async (name) => {
      // The member's operator lets the hub impersonate (directly through CONNECT as admin).
      const rbac = await fed.kubectlMember(name, ['apply', '-f', '-'], MEMBER_HUB_RBAC);
      if (rbac.code !== 0) throw new Error(`member RBAC on ${name}: ${rbac.stderr}`);
      const m = fed.members[name]!;
      const joined = await runCommand(process.execPath, [
        FEDCTL_BIN, 'join', name, '--kubeconfig', fed.kubeconfig, '--context', 'federation',
        '--api-endpoint', m.apiEndpoint, '--ca-file', fed.pki.ca.cert, '--client-cert', hubCert.cert, '--client-key', hubCert.key,
        ...(options.members[name]!.labels ?? []).flatMap((l) => ['--label', l]),
      ]);
      if (joined.code !== 0) throw new Error(`fedctl join ${name}: ${joined.stderr}`);
      const ready = await fed.kubectl('federation', ['wait', '--for=condition=Ready', '--timeout=60s', '-n', 'kube-federation-system', `kubefedcluster/${name}`]);
      if (ready.code !== 0) throw new Error(`kubefedcluster/${name} not Ready: ${ready.stderr}`);
    }));
  } catch (error) {
    await fed.stop();
    throw error;
  }

  const dir = kubectlDir();
  const hub = (): Federation['hub'] => fed.hub;
  const kubeconfigs = new Map<string, string>();
  const kubeconfig = (frontend: Frontend, user = 'admin'): string => {
    const key = `${frontend}-${user}`;
    const known = kubeconfigs.get(key);
    if (known) return known;
    const cert = fed.pki.users[user];
    if (!cert) throw new Error(`no test certificate for ${user}`);
    const { connectPort } = hub().ports;
    const config = {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: names.map((name) => ({
        name,
        cluster:
          frontend === 'connect'
            ? { server: fed.members[name]!.apiEndpoint, 'certificate-authority': fed.pki.ca.cert, 'proxy-url': connectProxyUrl(name, connectPort) }
            : { server: `https://127.0.0.1:${connectPort}/clusters/${name}`, 'certificate-authority': fed.pki.ca.cert },
      })),
      users: [{ name: user, user: { 'client-certificate': cert.cert, 'client-key': cert.key } }],
      contexts: names.map((name) => ({ name, context: { cluster: name, user } })),
      'current-context': names[0],
    };
    const file = path.join(fed.dir, `kubeconfig-${key}`);
    fs.writeFileSync(file, YAML.stringify(config), { mode: 0o600 });
    kubeconfigs.set(key, file);
    return file;
  };

  const identity = (user: string): { ca: Buffer; cert: Buffer; key: Buffer } => {
    const pair = fed.pki.users[user];
    if (!pair) throw new Error(`no test certificate for ${user}`);
    return { ca: fs.readFileSync(fed.pki.ca.cert), cert: fs.readFileSync(pair.cert), key: fs.readFileSync(pair.key) };
  };
  /** A TLS connection to the member's API server, tunnelled through a CONNECT as `user`. */
  const connectTunnel = async (cluster: string, user: string): Promise<tls.TLSSocket> => {
    const id = identity(user);
    const proxy = tls.connect({ host: '127.0.0.1', port: hub().ports.connectPort, servername: 'localhost', ...id });
    await new Promise<void>((resolve, reject) => proxy.once('secureConnect', resolve).once('error', reject));
    const target = fed.members[cluster]?.apiAddress ?? '127.0.0.1:443';
    proxy.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\nProxy-Authorization: Basic ${Buffer.from(`${cluster}:`).toString('base64')}\r\n\r\n`);
    const head = await readHead(proxy).catch((error: unknown) => {
      proxy.destroy();
      throw error;
    });
    const status = Number(head.split(' ')[1]);
    if (status !== 200) {
      proxy.destroy();
      throw new ConnectRefusedError(status, head);
    }
    const inner = tls.connect({ socket: proxy, servername: 'localhost', ...id });
    inner.once('close', () => proxy.destroy());
    await new Promise<void>((resolve, reject) => inner.once('secureConnect', resolve).once('error', reject));
    return inner;
  };
  const request = async (frontend: Frontend, cluster: string, urlPath: string, options: RawRequestOptions = {}): Promise<http.IncomingMessage> => {
    const user = options.user === undefined ? 'admin' : options.user;
    if (frontend === 'connect' && user === null) throw new Error('the CONNECT frontend needs a client certificate');
    const tunnel = frontend === 'connect' ? await connectTunnel(cluster, user!) : null;
    return new Promise((resolve, reject) => {
      // Through CONNECT the TLS session to the member is the connection: no agent (agent: false
      // would make Node ignore createConnection); otherwise a fresh TLS connection to the hub.
      const req = (tunnel ? http.request : https.request)({
        host: '127.0.0.1',
        port: hub().ports.connectPort,
        servername: 'localhost',
        method: options.method ?? 'GET',
        path: frontend === 'connect' || options.asIs ? urlPath : `/clusters/${cluster}${urlPath}`,
        ...(tunnel ? { createConnection: () => tunnel } : { agent: false, ...(user === null ? { ca: fs.readFileSync(fed.pki.ca.cert) } : identity(user)) }),
        // Raw header lines keep case, order and duplicates (and then Node adds no Host of its own).
        headers: [...((options.headers ?? []).some(([h]) => h.toLowerCase() === 'host') ? [] : [['Host', 'localhost']]), ...(options.headers ?? [])].flat(),
      } as https.RequestOptions, resolve);
      req.setTimeout(options.timeoutMs ?? 15_000, () => req.destroy(new Error(`no answer within ${options.timeoutMs ?? 15_000} ms`)));
      req.once('error', (error) => {
        tunnel?.destroy();
        reject(error);
      });
      req.end(options.body);
    });
  };

  const hubState = (): Promise<DebugState> => getJson(hub().ports.adminPort, '/debug/agents') as Promise<DebugState>;
  const agentState = (member: string): Promise<AgentDebugState> => {
    const m = fed.members[member]!;
    const started = m.agent?.lines.find((l) => l.msg === 'cluster-agent started');
    if (typeof started?.healthPort !== 'number') throw new Error(`agent of ${member} has no health port`);
    return readInNetns<AgentDebugState>(m.netns, started.healthPort, '/debug/state');
  };
  const streams = async (): Promise<StreamCounts> => {
    const counts = await Promise.all(names.map(async (n) => [n, (await agentState(n)).streams] as const));
    return { hub: (await hubState()).streams, agents: Object.fromEntries(counts) };
  };

  return {
    fed,
    kubeconfig,
    request,
    kubectl: (minor, frontend, cluster, user = 'admin') => {
      const cache = path.join(fed.dir, 'kubectl', `1.${minor}-${frontend}-${user}-${cluster}`);
      fs.mkdirSync(cache, { recursive: true });
      return new Kubectl(path.join(dir, `kubectl.1.${minor}`), kubeconfig(frontend, user), cluster, cache);
    },
    hubState,
    agentState,
    streams,
    async streamsBackTo(baseline, timeoutMs = 10_000) {
      // At most the baseline: the API proxy may have let pooled keep-alive streams go meanwhile.
      const within = (c: StreamCounts): boolean => c.hub <= baseline.hub && names.every((n) => (c.agents[n] ?? 0) <= (baseline.agents[n] ?? 0));
      const deadline = Date.now() + timeoutMs;
      let now = await streams();
      while (!within(now)) {
        if (Date.now() > deadline) throw new Error(`streams left open: ${JSON.stringify(now)}, baseline ${JSON.stringify(baseline)}`);
        await pause(50);
        now = await streams();
      }
    },
    stop: () => fed.stop(),
  };
}
