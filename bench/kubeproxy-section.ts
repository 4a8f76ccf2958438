// The `kubeproxy` section: kubectl-style traffic to a member cluster's API server, three ways in
// one run — directly, through the hub's CONNECT frontend (kubectl proxy-url: TLS to the hub, then
// TLS to the member inside the tunnel), and through the hub's /clusters/<name>/ API proxy (the hub
// authenticates, impersonates and forwards over its keep-alive pool of tunnel streams). Keys
// (kubeproxy.*):
//   get_p50_ms.{direct,connect,clusters}, get_p99_ms.*   sequential GETs of one ConfigMap over one
//                                                        keep-alive connection per path, the paths
//                                                        taking turns request by request
//   rps.{direct,connect,clusters}                        GETs per second, 16 keep-alive connections
//   clusters_minus_connect_p50_ms                        the API proxy's own cost (target ≤ 0.2 ms)
//   hub_cpu_ms_per_get.{connect,clusters}                hub process CPU time (user + system, all
//                                                        threads) per GET of the rps run: steadier
//                                                        than latency on a shared machine
//   watch_bytes_per_idle                                 hub RSS growth per open idle watch through
//                                                        /clusters, watches as streams of a few h2
//                                                        client connections (kubectl/client-go);
//                                                        _http1: one HTTP/1.1 connection per watch;
//   watch_heap_bytes_per_idle[_http1]                    the same, V8 heap + external only
//                                                        (kubeproxy-watch-memory.ts: in-process hub,
//                                                        full GC before each sample)
//   portforward_MBps, tunnel_MBps, portforward_ratio     kubectl port-forward through /clusters vs
//                                                        a raw CONNECT stream to the same sink
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { ensurePki } from '../certs/bundle.js';
import { startHub, startMemberAgent, startMemberApiServer, writeKubeconfig, type HubProcess } from '../common/federation-processes.js';
import { killAllChildrenSync, type LoggedProcess } from '../common/spawn.js';
import { KubeHttp } from './kube-http.js';
import { measureWatchMemory } from './kubeproxy-watch-memory.js';
import { connectTcp, measureThroughput } from './measure.js';
import type { Section } from './scenario.js';
import { errorMessage, log, makeTempDir, removeTempDir } from './system.js';

const CLUSTER = 'm00';
const PKI_DIR = path.join(os.tmpdir(), 'fedtunnel-bench-federation-pki');
const RPS_CONNECTIONS = 16;
const MiB = 1024 * 1024;
/** Alternating port-forward / tunnel transfers of half the configured size each. */
const PORT_FORWARD_ROUNDS = 5;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

export const KUBEPROXY_KEYS = {
  clustersOverConnect: 'kubeproxy.clusters_minus_connect_p50_ms',
  watchBytes: 'kubeproxy.watch_bytes_per_idle',
  portForwardRatio: 'kubeproxy.portforward_ratio',
};

interface Tls {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

/** An https.Agent that reaches the member the way kubectl's proxy-url does: CONNECT to the hub (mTLS), then TLS to the member inside. */
class ConnectAgent extends https.Agent {
  constructor(
    private readonly hub: { port: number },
    private readonly credentials: Tls,
    options: https.AgentOptions,
  ) {
    super(options);
  }

  override createConnection(options: { host?: string; port?: number }, callback: (err: Error | null, socket?: Duplex) => void): undefined {
    const { ca, cert, key } = this.credentials;
    const outer = tls.connect({ host: '127.0.0.1', port: this.hub.port, ca, cert, key, servername: 'localhost', ALPNProtocols: ['http/1.1'] });
    const fail = (err: Error): void => {
      outer.destroy();
      callback(err);
    };
    outer.once('error', fail);
    outer.once('secureConnect', () => {
      outer.write(`CONNECT ${options.host}:${options.port} HTTP/1.1\r\nHost: ${options.host}:${options.port}\r\nProxy-Authorization: Basic ${Buffer.from(`${CLUSTER}:`).toString('base64')}\r\n\r\n`);
      let head = Buffer.alloc(0);
      const onData = (chunk: Buffer): void => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        outer.off('data', onData);
        outer.pause();
        if (!/^HTTP\/1\.1 200 /.test(head.toString('latin1', 0, 16))) return fail(new Error(`CONNECT refused: ${head.toString('latin1', 0, head.indexOf('\r\n'))}`));
        if (end + 4 < head.length) outer.unshift(head.subarray(end + 4));
        outer.off('error', fail);
        callback(null, tls.connect({ socket: outer, ca, cert, key, servername: 'localhost' }));
      };
      outer.on('data', onData);
    });
    return undefined;
  }
}

function get(agent: https.Agent, port: number, urlPath: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: urlPath, agent, servername: 'localhost', headers: { accept: 'application/json' } }, (res) => {
      res.resume();
      res.once('end', () => (res.statusCode === 200 ? resolve(res.statusCode) : reject(new Error(`GET ${urlPath}: HTTP ${res.statusCode}`))));
      res.once('error', reject);
    });
    req.once('error', reject);
    req.end();
  });
}

/**
 * Sequential GETs, each path over its own keep-alive connection, p50/p99 in ms per path, the first
 * tenth as warm-up. The paths take turns request by request: on a shared, noisy machine a burst of
 * load then hits all of them alike instead of whichever path happened to be measured during it,
 * so their differences (the targets) compare like with like.
 */
async function latency(paths: Record<string, { agent: https.Agent; port: number; urlPath: string }>, requests: number): Promise<Record<string, { p50: number; p99: number }>> {
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(paths).map((name) => [name, []]));
  const warmup = Math.floor(requests / 10);
  for (let i = 0; i < requests + warmup; i++) {
    for (const [name, p] of Object.entries(paths)) {
      const started = performance.now();
      await get(p.agent, p.port, p.urlPath);
      if (i >= warmup) samples[name]!.push(performance.now() - started);
    }
  }
  return Object.fromEntries(
    Object.entries(samples).map(([name, s]) => {
      s.sort((a, b) => a - b);
      return [name, { p50: percentile(s, 0.5), p99: percentile(s, 0.99) }];
    }),
  );
}

/**
 * CPU time (user + system, every thread) a process has used so far, in ms, from /proc/<pid>/stat
 * (fields 14 and 15, in clock ticks: USER_HZ is 100 on Linux whatever the kernel's HZ).
 */
function cpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** GETs per second with RPS_CONNECTIONS keep-alive connections busy at once. */
async function throughput(agent: https.Agent, port: number, urlPath: string, requests: number): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: RPS_CONNECTIONS }, async () => {
      while (next++ < requests) await get(agent, port, urlPath);
    }),
  );
  return requests / ((performance.now() - started) / 1000);
}

/** `kubectl port-forward pod/<pod> :<port>` with the given kubeconfig; resolves with the local port once it forwards. */
function portForward(kubeconfig: string, pod: string, port: number): Promise<{ child: ChildProcess; localPort: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn('kubectl', ['--kubeconfig', kubeconfig, 'port-forward', `pod/${pod}`, `:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`kubectl port-forward did not forward within 30 s: ${out}`));
    }, 30_000);
    const onData = (chunk: Buffer): void => {
      out += chunk.toString();
      const match = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(out);
      if (!match) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.stdout!.resume();
      resolve({ child, localPort: Number(match[1]) });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`kubectl port-forward exited ${code}: ${out}`));
    });
  });
}

export function createKubeProxySection(): Section {
  return {
    name: 'kubeproxy',
    async run(ctx) {
      const keys = [
        ...['direct', 'connect', 'clusters'].flatMap((p) => [`kubeproxy.get_p50_ms.${p}`, `kubeproxy.get_p99_ms.${p}`, `kubeproxy.rps.${p}`]),
        'kubeproxy.hub_cpu_ms_per_get.connect',
        'kubeproxy.hub_cpu_ms_per_get.clusters',
        KUBEPROXY_KEYS.clustersOverConnect,
        KUBEPROXY_KEYS.watchBytes,
        'kubeproxy.watch_bytes_per_idle_http1',
        'kubeproxy.watch_heap_bytes_per_idle',
        'kubeproxy.watch_heap_bytes_per_idle_http1',
        'kubeproxy.portforward_MBps',
        'kubeproxy.tunnel_MBps',
        KUBEPROXY_KEYS.portForwardRatio,
      ];
      const sizes = ctx.sizes.kubeproxy;
      const recorded = new Set<string>();
      const record = (k: string, v: number): void => {
        recorded.add(k);
        ctx.record(k, v);
      };
      let dir: string | null = null;
      let hub: HubProcess | null = null;
      const children: LoggedProcess[] = [];
      const agents: https.Agent[] = [];
      let forward: ChildProcess | null = null;
      let hubClient: KubeHttp | null = null;
      const onExit = (): void => killAllChildrenSync();
      process.once('exit', onExit);
      try {
        dir = await makeTempDir('fedtunnel-bench-kubeproxy-');
        const pki = ensurePki(PKI_DIR, { clusters: [{ name: CLUSTER, tenant: 'bench' }], users: [{ user: 'admin', groups: ['system:masters'] }] });
        const admin = pki.users.admin!;
        const credentials: Tls = { ca: fs.readFileSync(pki.ca.cert), cert: fs.readFileSync(admin.cert), key: fs.readFileSync(admin.key) };
        hub = await startHub({ pki, store: `sqlite://${path.join(dir, 'federation.db')}`, instance: 'bench-kubeproxy-hub', extraArgs: ['--federation-controller', 'off'], timeoutMs: 60_000 });
        const member = await startMemberApiServer({ name: CLUSTER, pki, extraArgs: ['--enable-pod-exec'], timeoutMs: 60_000 });
        children.push(member.process);
        const memberPort = member.port;
        children.push(
          await startMemberAgent(hub, {
            cluster: CLUSTER,
            pki,
            server: `127.0.0.1:${hub.ports.agentPort}`,
            apiserver: `127.0.0.1:${memberPort}`,
            // The raw-tunnel baseline for port-forward reads the same sink.
            extraArgs: ['--allow', `127.0.0.1:${ctx.destinations.sinkPort}`],
            timeoutMs: 60_000,
          }),
        );
        // Join the member: the hub's credential on it is the admin certificate (system:masters may impersonate).
        hubClient = new KubeHttp({ base: `https://127.0.0.1:${hub.ports.federationPort}`, ca: pki.ca.cert, cert: admin.cert, key: admin.key });
        const b64 = (file: string): string => fs.readFileSync(file).toString('base64');
        await hubClient.request('POST', '/api/v1/namespaces/kube-federation-system/secrets', { apiVersion: 'v1', kind: 'Secret', metadata: { name: `${CLUSTER}-credentials` }, data: { 'tls.crt': b64(admin.cert), 'tls.key': b64(admin.key) } });
        await hubClient.request('POST', '/apis/core.kubefed.io/v1beta1/namespaces/kube-federation-system/kubefedclusters', {
          apiVersion: 'core.kubefed.io/v1beta1',
          kind: 'KubeFedCluster',
          metadata: { name: CLUSTER },
          spec: { apiEndpoint: `https://127.0.0.1:${memberPort}`, caBundle: b64(pki.ca.cert), secretRef: { name: `${CLUSTER}-credentials` } },
        });
        const memberClient = new KubeHttp({ base: `https://127.0.0.1:${memberPort}`, ca: pki.ca.cert, cert: admin.cert, key: admin.key });
        try {
          await memberClient.request('POST', '/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'bench' }, data: { color: 'blue' } });
          await memberClient.request('POST', '/api/v1/namespaces/default/pods', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'box' }, spec: { containers: [{ name: 'box', image: 'none' }] } });
        } finally {
          memberClient.close();
        }

        const object = '/api/v1/namespaces/default/configmaps/bench';
        const agentOptions = (maxSockets: number): https.AgentOptions => ({ keepAlive: true, maxSockets, ...credentials, servername: 'localhost' });
        const paths = {
          direct: { port: memberPort, prefix: '', agent: (n: number) => new https.Agent(agentOptions(n)) },
          connect: { port: memberPort, prefix: '', agent: (n: number) => new ConnectAgent({ port: hub!.ports.connectPort }, credentials, agentOptions(n)) },
          clusters: { port: hub.ports.connectPort, prefix: `/clusters/${CLUSTER}`, agent: (n: number) => new https.Agent(agentOptions(n)) },
        };
        log(`kubeproxy: ${sizes.requests} GETs each, ${Object.keys(paths).join(', ')} taking turns`);
        const single = Object.fromEntries(Object.entries(paths).map(([name, p]) => [name, { agent: p.agent(1), port: p.port, urlPath: p.prefix + object }]));
        agents.push(...Object.values(single).map((p) => p.agent));
        const latencies = await latency(single, sizes.requests);
        for (const [name, l] of Object.entries(latencies)) {
          record(`kubeproxy.get_p50_ms.${name}`, l.p50);
          record(`kubeproxy.get_p99_ms.${name}`, l.p99);
        }
        for (const p of Object.values(single)) p.agent.destroy();
        for (const [name, p] of Object.entries(paths)) {
          log(`kubeproxy: ${sizes.requests * 2} GETs ${name}, ${RPS_CONNECTIONS} connections`);
          const many = p.agent(RPS_CONNECTIONS);
          agents.push(many);
          const hubPid = hub.child.pid!;
          const cpu0 = cpuMs(hubPid);
          record(`kubeproxy.rps.${name}`, await throughput(many, p.port, p.prefix + object, sizes.requests * 2));
          // (Direct GETs do not touch the hub.)
          if (name !== 'direct') record(`kubeproxy.hub_cpu_ms_per_get.${name}`, (cpuMs(hubPid) - cpu0) / (sizes.requests * 2));
          many.destroy();
        }
        record(KUBEPROXY_KEYS.clustersOverConnect, latencies.clusters!.p50 - latencies.connect!.p50);

        const memory = await measureWatchMemory({ pki, cluster: CLUSTER, memberPort, storeFile: path.join(dir, 'probe-federation.db'), watches: sizes.watches });
        record(KUBEPROXY_KEYS.watchBytes, memory.h2);
        record('kubeproxy.watch_bytes_per_idle_http1', memory.http1);
        record('kubeproxy.watch_heap_bytes_per_idle', memory.h2Heap);
        record('kubeproxy.watch_heap_bytes_per_idle_http1', memory.http1Heap);

        log(`kubeproxy: port-forward vs tunnel, ${sizes.portForwardBytes / MiB} MiB`);
        const kubeconfig = path.join(dir, 'kubeconfig');
        writeKubeconfig(kubeconfig, [{ name: CLUSTER, server: `https://127.0.0.1:${hub.ports.connectPort}/clusters/${CLUSTER}`, caFile: pki.ca.cert }], { cert: admin.cert, key: admin.key }, CLUSTER);
        const pf = await portForward(kubeconfig, 'box', ctx.destinations.sinkPort);
        forward = pf.child;
        // Alternating rounds, median of each: a burst of load from elsewhere on a shared machine
        // then skews one round of one path, not the whole ratio.
        const pfRounds: number[] = [];
        const tunnelRounds: number[] = [];
        for (let round = 0; round < PORT_FORWARD_ROUNDS; round++) {
          pfRounds.push(await measureThroughput(() => connectTcp({ host: '127.0.0.1', port: pf.localPort }), sizes.portForwardBytes / 2, 1));
          tunnelRounds.push(await measureThroughput(() => rawConnect(hub!.ports.connectPort, credentials, `127.0.0.1:${ctx.destinations.sinkPort}`), sizes.portForwardBytes / 2, 1));
        }
        const viaPortForward = median(pfRounds);
        const viaTunnel = median(tunnelRounds);
        record('kubeproxy.portforward_MBps', viaPortForward);
        record('kubeproxy.tunnel_MBps', viaTunnel);
        record(KUBEPROXY_KEYS.portForwardRatio, viaPortForward / viaTunnel);
      } catch (error) {
        log(`kubeproxy: failed: ${errorMessage(error)}`);
        for (const k of keys) if (!recorded.has(k)) ctx.record(k, NaN);
      } finally {
        for (const agent of agents) agent.destroy();
        forward?.kill('SIGTERM');
        hubClient?.close();
        for (const child of children.reverse()) await child.kill('SIGTERM');
        await hub?.kill('SIGTERM');
        process.off('exit', onExit);
        if (dir) await removeTempDir(dir);
      }
    },
  };
}

/**
 * A raw CONNECT tunnel over mTLS to `target` in the bench cluster (the port-forward baseline). The
 * head is read with 'readable', so the socket is handed over neither flowing nor paused: the
 * caller's 'data' listener starts it and nothing is lost.
 */
function rawConnect(port: number, credentials: Tls, target: string): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ...credentials, servername: 'localhost', ALPNProtocols: ['http/1.1'] });
    let head = Buffer.alloc(0);
    const fail = (error: Error): void => {
      socket.off('readable', onReadable);
      socket.destroy();
      reject(error);
    };
    const onReadable = (): void => {
      let chunk: Buffer | null;
      while ((chunk = socket.read() as Buffer | null) !== null) {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) continue;
        if (!/^HTTP\/1\.1 200 /.test(head.toString('latin1', 0, 16))) return fail(new Error(`CONNECT refused: ${head.toString('latin1', 0, head.indexOf('\r\n'))}`));
        socket.off('readable', onReadable);
        socket.off('error', fail);
        if (end + 4 < head.length) socket.unshift(head.subarray(end + 4));
        resolve(socket);
        return;
      }
    };
    socket.once('error', fail);
    socket.once('secureConnect', () => {
      socket.on('readable', onReadable);
      socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\nProxy-Authorization: Basic ${Buffer.from(`${CLUSTER}:`).toString('base64')}\r\n\r\n`);
    });
  });
}
