// The `federation` section: the controller propagating N federated ConfigMaps to M member
// clusters (member-mode API servers behind real agents; the controller reaches them only through
// the tunnel). All member API servers and agents are separate processes on this 2-core machine.
// Keys (federation.propagation.*):
//   converge_s           apply all objects → every member has every object
//   update_p50_ms/p99_ms change of one federated object → the change visible on every member
//   drift_repair_p50_ms  a member object edited behind the controller's back → restored
//   hub_rss_MB           RSS of the hub process (tunnel + federation API server + controller)
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { startFederationMembers, type BenchFederation } from './federation-members.js';
import { KubeHttp } from './kube-http.js';
import type { Section } from './scenario.js';
import { errorMessage, log } from './system.js';

const NS = 'bench';

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Resolves when `predicate` holds, checked on every call of the returned `poke` (no polling). */
function condition(predicate: () => boolean, timeoutMs: number, what: string): { done: Promise<void>; poke(): void } {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const done = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  const poke = (): void => {
    if (predicate()) {
      clearTimeout(timer);
      resolve();
    }
  };
  poke();
  return { done, poke };
}

async function mapLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

function rssMB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

export function createFederationSection(): Section {
  return {
    name: 'federation',
    async run(ctx) {
      const size = ctx.sizes.federation;
      const key = (k: string): string => `federation.propagation.${k}`;
      let fed: BenchFederation | null = null;
      const clients: KubeHttp[] = [];
      const watches: Array<{ stop(): void }> = [];
      try {
        log(`federation: hub + ${size.members} members behind agents`);
        fed = await startFederationMembers({ members: size.members });
        const tls = { ca: fed.pki.ca.cert, cert: fed.admin.cert, key: fed.admin.key };
        const hub = new KubeHttp({ base: `https://127.0.0.1:${fed.ports.federationPort}`, ...tls });
        clients.push(hub);
        const caBundle = fs.readFileSync(fed.pki.ca.cert).toString('base64');
        const cert = fs.readFileSync(fed.admin.cert).toString('base64');
        const keyPem = fs.readFileSync(fed.admin.key).toString('base64');
        const clusters = `/apis/core.kubefed.io/v1beta1/namespaces/kube-federation-system/kubefedclusters`;
        const ready = new Set<string>();
        const allReady = condition(() => ready.size === size.members, 60_000, 'every member cluster Ready');
        watches.push(hub.watch(clusters, (_t, obj) => {
          const conditions = ((obj.status as { conditions?: Array<{ type: string; status: string }> } | undefined)?.conditions ?? []);
          if (conditions.some((c) => c.type === 'Ready' && c.status === 'True')) ready.add(obj.metadata.name);
          allReady.poke();
        }));
        for (const m of fed.members) {
          await hub.request('POST', '/api/v1/namespaces/kube-federation-system/secrets', { apiVersion: 'v1', kind: 'Secret', metadata: { name: `${m.name}-credentials` }, data: { 'tls.crt': cert, 'tls.key': keyPem } });
          await hub.request('POST', clusters, { apiVersion: 'core.kubefed.io/v1beta1', kind: 'KubeFedCluster', metadata: { name: m.name }, spec: { apiEndpoint: m.apiEndpoint, caBundle, secretRef: { name: `${m.name}-credentials` } } });
        }
        await allReady.done;
        await hub.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
        await hub.request('POST', `/apis/types.kubefed.io/v1beta1/namespaces/${NS}/federatednamespaces`, { apiVersion: 'types.kubefed.io/v1beta1', kind: 'FederatedNamespace', metadata: { name: NS }, spec: { placement: { clusterSelector: {} } } });

        // Each member's configmaps, watched directly by the benchmark (only to time arrival).
        const seen = fed.members.map(() => new Map<string, string>());
        let onChange: () => void = () => undefined;
        fed.members.forEach((m, i) => {
          const member = new KubeHttp({ base: m.apiEndpoint, ...tls });
          clients.push(member);
          watches.push(member.watch(`/api/v1/namespaces/${NS}/configmaps?labelSelector=kubefed.io%2Fmanaged%3Dtrue`, (type, obj) => {
            if (type === 'DELETED') seen[i]!.delete(obj.metadata.name);
            else seen[i]!.set(obj.metadata.name, (obj.data as { v?: string } | undefined)?.v ?? '');
            onChange();
          }));
        });
        const memberClients = clients.slice(1);

        const names = Array.from({ length: size.objects }, (_, i) => `cm-${String(i).padStart(5, '0')}`);
        const path = `/apis/types.kubefed.io/v1beta1/namespaces/${NS}/federatedconfigmaps`;
        const converged = condition(() => seen.every((s) => s.size >= size.objects), 300_000, 'every member to have every object');
        onChange = converged.poke;
        log(`federation: creating ${size.objects} FederatedConfigMaps`);
        const t0 = performance.now();
        await mapLimit(names, 16, (name) => hub.request('POST', path, { apiVersion: 'types.kubefed.io/v1beta1', kind: 'FederatedConfigMap', metadata: { name }, spec: { template: { data: { v: '0' } }, placement: { clusterSelector: {} } } }));
        await converged.done;
        ctx.record(key('converge_s'), (performance.now() - t0) / 1000);

        log(`federation: ${size.updates} single-object updates`);
        const updates: number[] = [];
        for (let i = 0; i < size.updates; i++) {
          const name = names[(i * 7919) % names.length]!;
          const value = `u${i}`;
          const visible = condition(() => seen.every((s) => s.get(name) === value), 30_000, `update ${name}=${value} on every member`);
          onChange = visible.poke;
          const started = performance.now();
          await hub.request('PATCH', `${path}/${name}`, { spec: { template: { data: { v: value } } } }, 'application/merge-patch+json');
          await visible.done;
          updates.push(performance.now() - started);
        }
        updates.sort((a, b) => a - b);
        ctx.record(key('update_p50_ms'), percentile(updates, 50));
        ctx.record(key('update_p99_ms'), percentile(updates, 99));

        log(`federation: ${size.drifts} drift repairs`);
        const repairs: number[] = [];
        for (let i = 0; i < size.drifts; i++) {
          const m = i % fed.members.length;
          const name = names[(i * 104729) % names.length]!;
          const want = seen[m]!.get(name)!;
          let drifted = false;
          const repaired = condition(() => {
            if (seen[m]!.get(name) === 'drift') drifted = true;
            return drifted && seen[m]!.get(name) === want;
          }, 30_000, `drift of ${name} repaired on ${fed.members[m]!.name}`);
          onChange = repaired.poke;
          const started = performance.now();
          await memberClients[m]!.request('PATCH', `/api/v1/namespaces/${NS}/configmaps/${name}`, { data: { v: 'drift' } }, 'application/merge-patch+json');
          await repaired.done;
          repairs.push(performance.now() - started);
        }
        repairs.sort((a, b) => a - b);
        ctx.record(key('drift_repair_p50_ms'), percentile(repairs, 50));
        ctx.record(key('hub_rss_MB'), rssMB(fed.hub.process.pid));
      } catch (error) {
        log(`federation: failed: ${errorMessage(error)}`);
        for (const k of ['converge_s', 'update_p50_ms', 'update_p99_ms', 'drift_repair_p50_ms', 'hub_rss_MB']) ctx.record(key(k), NaN);
      } finally {
        for (const w of watches) w.stop();
        for (const c of clients) c.close();
        await fed?.stop();
      }
    },
  };
}
