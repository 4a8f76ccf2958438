// The `conversion` section: the cell form (types.kubefed.io/v1beta2) served through the topology
// conversion webhook, which runs as its own process behind a member's cluster-agent; the hub
// reaches it only through the tunnel (https://localhost.m00.tunnel:<port>/convert). The hub runs
// without its controller, so nothing but the measured requests converts. Keys (federation.*):
//   conversion_p50_ms/p99_ms  GET of one object in v1beta2: API server → tunnel → webhook → back
//   get_native_p50_ms         the same GET in the storage version (no webhook), for comparison
//   list_1k_cell_ms           list of 1,000 objects in v1beta2 (one ConversionReview of 1,000 objects), median
//   list_1k_native_ms         the same list in v1beta1, median
//   list_1k_cell_ratio        list_1k_cell_ms / list_1k_native_ms
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ensurePki } from '../certs/bundle.js';
import { createCA, issueServerCert, writeKeyPair } from '../certs/pki.js';
import { DIST, startHub, startMemberAgent, type HubProcess } from '../common/federation-processes.js';
import { killAllChildrenSync, spawnNode, type LoggedProcess } from '../common/spawn.js';
import { KubeHttp } from './kube-http.js';
import type { Section } from './scenario.js';
import { errorMessage, log, makeTempDir, removeTempDir } from './system.js';

const NS = 'cells';
const LIST_OBJECTS = 1000;
const LIST_RUNS = 9;
const WEBHOOK_BIN = path.join(DIST, 'federation', 'topology-webhook', 'main.js');
const PKI_DIR = path.join(os.tmpdir(), 'fedtunnel-bench-federation-pki');

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

async function mapLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

export function createConversionSection(): Section {
  return {
    name: 'conversion',
    async run(ctx) {
      const key = (k: string): string => `federation.${k}`;
      const samples = ctx.sizes.federation.updates * 5;
      let dir: string | null = null;
      let webhook: LoggedProcess | null = null;
      let hub: HubProcess | null = null;
      let agent: LoggedProcess | null = null;
      let client: KubeHttp | null = null;
      const onExit = (): void => killAllChildrenSync();
      process.once('exit', onExit);
      try {
        dir = await makeTempDir('fedtunnel-bench-conversion-');
        const pki = ensurePki(PKI_DIR, { clusters: [{ name: 'm00', tenant: 'bench' }], users: [{ user: 'admin', groups: ['system:masters'] }] });
        const ca = createCA();
        const caFiles = writeKeyPair(dir, 'webhook-ca', ca);
        const serving = writeKeyPair(dir, 'webhook', issueServerCert(ca, { commonName: 'topology-webhook', dnsNames: ['localhost'], ipAddresses: [] }));
        webhook = spawnNode('topology-webhook', WEBHOOK_BIN, ['--listen', '127.0.0.1:0', '--cert', serving.cert, '--key', serving.key]);
        const port = (await webhook.waitForLog((l) => l.msg === 'topology-webhook ready')).port as number;
        hub = await startHub({
          pki,
          store: `sqlite://${path.join(dir, 'federation.db')}`,
          instance: 'bench-conversion-hub',
          extraArgs: ['--federation-controller', 'off', '--topology-webhook-url', `https://localhost.m00.tunnel:${port}/convert`, '--topology-webhook-ca', caFiles.cert],
        });
        // The agent's one destination here is the webhook (passed as its "API server", always allowed).
        agent = await startMemberAgent(hub, { cluster: 'm00', pki, server: `127.0.0.1:${hub.ports.agentPort}`, apiserver: `127.0.0.1:${port}`, timeoutMs: 60_000 });
        const admin = pki.users.admin!;
        client = new KubeHttp({ base: `https://127.0.0.1:${hub.ports.federationPort}`, ca: pki.ca.cert, cert: admin.cert, key: admin.key });
        const hubClient = client;
        await hubClient.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
        const v2 = `/apis/types.kubefed.io/v1beta2/namespaces/${NS}/federatedconfigmaps`;
        const v1 = `/apis/types.kubefed.io/v1beta1/namespaces/${NS}/federatedconfigmaps`;
        const cellObject = (name: string): object => ({
          apiVersion: 'types.kubefed.io/v1beta2',
          kind: 'FederatedConfigMap',
          metadata: { name },
          spec: {
            topology: { type: 'cell' },
            template: { data: { color: 'blue', size: 'medium' } },
            placement: { cells: [{ name: 'cell-a' }, { name: 'cell-b' }] },
            overrides: [{ cellName: 'cell-a', clusterOverrides: [{ path: '/data/size', value: 'large' }] }, { clusterName: 'm00', clusterOverrides: [{ path: '/data/color', value: 'green' }] }],
          },
        });
        log(`conversion: creating ${LIST_OBJECTS} cell-form FederatedConfigMaps through the webhook`);
        const names = Array.from({ length: LIST_OBJECTS }, (_, i) => `cm-${String(i).padStart(5, '0')}`);
        await mapLimit(names, 16, (name) => hubClient.request('POST', v2, cellObject(name)));

        log(`conversion: ${samples} single-object GETs in each version`);
        const cell: number[] = [];
        const native: number[] = [];
        for (let i = 0; i < samples; i++) {
          const name = names[(i * 7919) % names.length]!;
          cell.push(await timed(() => hubClient.request('GET', `${v2}/${name}`)));
          native.push(await timed(() => hubClient.request('GET', `${v1}/${name}`)));
        }
        cell.sort((a, b) => a - b);
        native.sort((a, b) => a - b);
        ctx.record(key('conversion_p50_ms'), percentile(cell, 50));
        ctx.record(key('conversion_p99_ms'), percentile(cell, 99));
        ctx.record(key('get_native_p50_ms'), percentile(native, 50));

        log(`conversion: listing ${LIST_OBJECTS} objects ${LIST_RUNS} times in each version`);
        const cellLists: number[] = [];
        const nativeLists: number[] = [];
        for (let i = 0; i < LIST_RUNS; i++) {
          cellLists.push(await timed(async () => {
            const list = await hubClient.request<{ items: unknown[] }>('GET', v2);
            if (list.items.length !== LIST_OBJECTS) throw new Error(`listed ${list.items.length} objects`);
          }));
          nativeLists.push(await timed(() => hubClient.request('GET', v1)));
        }
        cellLists.sort((a, b) => a - b);
        nativeLists.sort((a, b) => a - b);
        const cellMs = percentile(cellLists, 50);
        const nativeMs = percentile(nativeLists, 50);
        ctx.record(key('list_1k_cell_ms'), cellMs);
        ctx.record(key('list_1k_native_ms'), nativeMs);
        ctx.record(key('list_1k_cell_ratio'), cellMs / nativeMs);
      } catch (error) {
        log(`conversion: failed: ${errorMessage(error)}`);
        for (const k of ['conversion_p50_ms', 'conversion_p99_ms', 'get_native_p50_ms', 'list_1k_cell_ms', 'list_1k_native_ms', 'list_1k_cell_ratio']) ctx.record(key(k), NaN);
      } finally {
        client?.close();
        await agent?.kill('SIGTERM');
        await hub?.kill('SIGTERM');
        await webhook?.kill('SIGTERM');
        process.off('exit', onExit);
        if (dir) await removeTempDir(dir);
      }
    },
  };
}
