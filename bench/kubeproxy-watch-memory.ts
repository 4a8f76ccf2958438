// Hub memory per open idle watch through /clusters/<name>/, measured precisely: the hub runs in a
// memory probe (memory-probe.ts: a ProxyServer with its federation embedded, alone in a process
// started with --expose-gc), so every sample follows a full GC and nothing but the hub is counted.
// One member and its agent; the watches are opened two ways, each against its own baseline:
//   http1  every watch its own HTTP/1.1 TLS connection to the hub (curl, clients without h2)
//   h2     every watch a stream of a few h2 connections to the hub (kubectl / client-go, which
//          multiplex all requests of one client over one connection when ALPN offers h2)
// The hub side is the same for both: one HTTP/2 session to the member carries every watch.
import fs from 'node:fs';
import type { ClientRequest } from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import { fileURLToPath } from 'node:url';
import type { PkiPaths } from '../certs/bundle.js';
import { spawnMemberAgent } from '../common/federation-processes.js';
import type { LoggedProcess } from '../common/spawn.js';
import type { MemorySample } from './ipc.js';
import { IpcClient } from './ipc.js';
import { KubeHttp } from './kube-http.js';
import { ManagedChild, log } from './system.js';

const PROBE_SCRIPT = fileURLToPath(new URL('./memory-probe.js', import.meta.url));
const COMMAND_TIMEOUT_MS = 60_000;
const BATCH = 50;
/** Client h2 connections in the h2 mode (client-go keeps one per host; a few, to show it is per stream). */
export const H2_CONNECTIONS = 4;

export interface WatchMemory {
  /** RSS growth per watch, bytes, after a full GC. */
  http1: number;
  h2: number;
  /** V8 heap + external (array buffers, TLS buffers held by JS) growth per watch, bytes. */
  http1Heap: number;
  h2Heap: number;
}

interface Tls {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

type Options = { pki: PkiPaths; cluster: string; memberPort: number; storeFile: string; watches: number; snapshotPrefix?: string };

/**
 * Each way in a hub process of its own: memory freed by one run (malloc'd TLS buffers) would be
 * reused by the next and hide its growth.
 */
export async function measureWatchMemory(options: Options): Promise<WatchMemory> {
  const http1 = await measureOneWay({ ...options, storeFile: `${options.storeFile}.http1` }, 'http1');
  const h2 = await measureOneWay({ ...options, storeFile: `${options.storeFile}.h2` }, 'h2');
  return { http1: http1.rss, h2: h2.rss, http1Heap: http1.heap, h2Heap: h2.heap };
}

export async function measureOneWay(options: Options, way: 'http1' | 'h2'): Promise<{ rss: number; heap: number }> {
  const { pki, cluster } = options;
  const admin = pki.users.admin!;
  const credentials: Tls = { ca: fs.readFileSync(pki.ca.cert), cert: fs.readFileSync(admin.cert), key: fs.readFileSync(admin.key) };
  const child = new ManagedChild(process.execPath, ['--expose-gc', PROBE_SCRIPT], { ipc: true });
  const probe = new IpcClient(child);
  let agent: LoggedProcess | null = null;
  let client: KubeHttp | null = null;
  try {
    const flags = [
      '--ca', pki.ca.cert, '--cert', pki.server.cert, '--key', pki.server.key,
      '--agent-listen', '127.0.0.1:0', '--connect-listen', '127.0.0.1:0', '--admin-listen', 'off', '--federation-listen', '127.0.0.1:0',
      '--federation-store', `sqlite://${options.storeFile}`, '--federation-controller', 'off', '--log-level', 'silent',
    ];
    const ports = await probe.call<{ agentPort: number; connectPort: number; federationPort: number }>('start', { flags }, COMMAND_TIMEOUT_MS);
    agent = spawnMemberAgent({ cluster, pki, server: `127.0.0.1:${ports.agentPort}`, apiserver: `127.0.0.1:${options.memberPort}` });
    await probe.call('waitLinks', { count: 1, timeoutMs: COMMAND_TIMEOUT_MS }, 2 * COMMAND_TIMEOUT_MS);
    client = new KubeHttp({ base: `https://127.0.0.1:${ports.federationPort}`, ca: pki.ca.cert, cert: admin.cert, key: admin.key });
    const b64 = (file: string): string => fs.readFileSync(file).toString('base64');
    await client.request('POST', '/api/v1/namespaces/kube-federation-system/secrets', { apiVersion: 'v1', kind: 'Secret', metadata: { name: `${cluster}-credentials` }, data: { 'tls.crt': b64(admin.cert), 'tls.key': b64(admin.key) } });
    await client.request('POST', '/apis/core.kubefed.io/v1beta1/namespaces/kube-federation-system/kubefedclusters', {
      apiVersion: 'core.kubefed.io/v1beta1',
      kind: 'KubeFedCluster',
      metadata: { name: cluster },
      spec: { apiEndpoint: `https://127.0.0.1:${options.memberPort}`, caBundle: b64(pki.ca.cert), secretRef: { name: `${cluster}-credentials` } },
    });
    const watchPath = `/clusters/${cluster}/api/v1/namespaces/default/configmaps?watch=1&allowWatchBookmarks=true&resourceVersion=0`;
    const measure = (): Promise<MemorySample> => probe.call<MemorySample>('measure', {}, COMMAND_TIMEOUT_MS);
    const perWatch = (a: MemorySample, b: MemorySample): { rss: number; heap: number } => ({ rss: (b.rss - a.rss) / options.watches, heap: (b.heapUsed + b.external - a.heapUsed - a.external) / options.watches });

    // Warm-up: the member session, pools and lazily built state exist before the baseline.
    const open = (count: number): Promise<{ close(): void }> =>
      way === 'h2' ? openH2Watches(ports.connectPort, credentials, watchPath, count) : openHttp1Watches(ports.connectPort, credentials, watchPath, count).then((reqs) => ({ close: () => reqs.forEach((r) => r.destroy()) }));
    (await open(BATCH)).close();
    log(way === 'h2' ? `kubeproxy: ${options.watches} idle watches as streams of ${H2_CONNECTIONS} h2 connections (in-process hub, GC before each sample)` : `kubeproxy: ${options.watches} idle watches, one HTTP/1.1 connection each (in-process hub, GC before each sample)`);
    const before = await measure();
    if (options.snapshotPrefix) await probe.call('snapshot', { file: `${options.snapshotPrefix}-${way}-before.heapsnapshot` }, 5 * COMMAND_TIMEOUT_MS);
    const watches = await open(options.watches);
    const result = perWatch(before, await measure());
    if (options.snapshotPrefix) await probe.call('snapshot', { file: `${options.snapshotPrefix}-${way}-after.heapsnapshot` }, 5 * COMMAND_TIMEOUT_MS);
    watches.close();
    return result;
  } finally {
    client?.close();
    await probe.call('stop', {}, COMMAND_TIMEOUT_MS).catch(() => undefined);
    await child.stop();
    await agent?.kill('SIGTERM');
  }
}

/** `count` watches, each on its own HTTP/1.1 connection; resolves once every one has its 200 head. */
async function openHttp1Watches(port: number, credentials: Tls, urlPath: string, count: number): Promise<ClientRequest[]> {
  const open: ClientRequest[] = [];
  for (let i = 0; i < count; i += BATCH) {
    await Promise.all(
      Array.from({ length: Math.min(BATCH, count - i) }, () =>
        new Promise<void>((resolve, reject) => {
          const req = https.request({ host: '127.0.0.1', port, path: urlPath, agent: false, servername: 'localhost', ...credentials }, (res) => {
            if (res.statusCode !== 200) return reject(new Error(`watch: HTTP ${res.statusCode}`));
            res.on('data', () => undefined);
            res.on('error', () => undefined);
            resolve();
          });
          req.on('error', reject);
          open.push(req);
          req.end();
        }),
      ),
    );
  }
  return open;
}

/** `count` watches spread over H2_CONNECTIONS h2 connections; resolves once every one has its 200 head. */
async function openH2Watches(port: number, credentials: Tls, urlPath: string, count: number): Promise<{ close(): void }> {
  const sessions = Array.from({ length: H2_CONNECTIONS }, () => http2.connect(`https://127.0.0.1:${port}`, { ...credentials, servername: 'localhost' }));
  for (const session of sessions) session.on('error', () => undefined);
  const close = (): void => {
    for (const session of sessions) session.destroy();
  };
  try {
    for (let i = 0; i < count; i += BATCH) {
      await Promise.all(
        Array.from({ length: Math.min(BATCH, count - i) }, (_, j) =>
          new Promise<void>((resolve, reject) => {
            const stream = sessions[(i + j) % sessions.length]!.request({ ':path': urlPath });
            stream.once('response', (headers) => (headers[':status'] === 200 ? resolve() : reject(new Error(`watch: HTTP ${headers[':status']}`))));
            stream.on('data', () => undefined);
            stream.once('error', reject);
          }),
        ),
      );
    }
  } catch (error) {
    close();
    throw error;
  }
  return { close };
}
