// The sandbox's HA replicas (README "HA replicas"): two proxy-server replicas on one host sharing
// the SQLite federation store. Each member's agent is given replica 1's address only and links to
// both; the self-check lines below show that from the agents' and the replicas' sides: every agent
// linked to both, dials through replica 2 served by its own links (no peer forwarding), exactly one
// controller lease holder that both status pages name, and a SIGTERM of replica 2 that leaves the
// agents' links to replica 1 alone, then its restart on the same ports.
import fs from 'node:fs';
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import { setTimeout as pause } from 'node:timers/promises';
import type { PkiPaths } from '../../certs/bundle.js';
import type { AgentStatus } from '../../cluster-agent/agent.js';
import { connectProxyUrl, type HubPorts, type HubProcess } from '../../common/federation-processes.js';
import { getJson, getText } from '../../common/http-get.js';
import type { LoggedProcess } from '../../common/spawn.js';
import { connectAnswer } from './hardening.js';

export const REPLICA_IDS = ['sandbox-hub-1', 'sandbox-hub-2'] as const;

/** The hub flags that make a hub a replica: its own agent listener is what agents and peers dial. */
export const REPLICA_ARGS = ['--advertise-agent-address', '127.0.0.1:0'];

export interface ReplicaCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export interface Replica {
  id: string;
  hub: HubProcess;
}

/** The agent's own view (/healthz on its health port, from its start line). */
export async function agentStatus(agent: LoggedProcess): Promise<AgentStatus> {
  const started = await agent.waitForLog((l) => l.msg === 'cluster-agent started');
  return (await getJson(started.healthPort as number, '/healthz')) as AgentStatus;
}

/** Resolves once the replica registered an agent of every cluster since `since` (its log lines). */
export async function linkedOnReplica(replica: HubProcess, clusters: string[], since: number, timeoutMs: number): Promise<void> {
  await Promise.all(clusters.map((c) => replica.agentRegistered(c, since, timeoutMs)));
}

function sumOf(metrics: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of metrics.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

interface StatusSnapshot {
  replicas: Array<{ instance: string; self: boolean; address: string }> | null;
  lease: { holder: string | null };
}

/** A GET on a replica's CONNECT TLS port (the status page, /clusters/<name>/) as the admin user. */
function adminGet(pki: PkiPaths, port: number, path: string): Promise<{ status: number; body: string }> {
  const admin = pki.users.admin!;
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, path, agent: false, servername: 'localhost', ca: fs.readFileSync(pki.ca.cert), cert: fs.readFileSync(admin.cert), key: fs.readFileSync(admin.key) },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error(`${path}: no answer within 10 s`)));
    req.on('error', reject);
    req.end();
  });
}

async function statusSnapshot(pki: PkiPaths, port: number): Promise<StatusSnapshot> {
  const res = await adminGet(pki, port, '/status/snapshot');
  if (res.status !== 200) throw new Error(`/status/snapshot answered ${res.status}: ${res.body.slice(0, 200)}`);
  return JSON.parse(res.body) as StatusSnapshot;
}

/**
 * Polls `read` until `done` holds or `timeoutMs` passes (then resolves with the last value): the
 * state waited for is another process's (an agent dropping a link after a replica's GOAWAY).
 */
async function settled<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value) || performance.now() > deadline) return value;
    await pause(100);
  }
}

const same = (a: string[], b: string[]): boolean => JSON.stringify([...a].sort()) === JSON.stringify([...b].sort());

/** Which replicas an agent is linked to, by its /healthz (sorted ids). */
async function linkedReplicas(agent: LoggedProcess): Promise<string[]> {
  return (await agentStatus(agent)).replicas.filter((r) => r.linked).map((r) => r.id).sort();
}

/** Every agent linked to every replica: its own /healthz, and each replica's /debug/agents. */
export async function linkChecks(replicas: Replica[], agents: Map<string, LoggedProcess>): Promise<ReplicaCheck[]> {
  const want = replicas.map((r) => r.id);
  const checks: ReplicaCheck[] = [];
  for (const [cluster, agent] of agents) {
    const linked = await settled(() => linkedReplicas(agent), (ids) => same(ids, want));
    checks.push({ name: 'replicas', ok: same(linked, want), detail: `agent of ${cluster} (given ${replicas[0]!.id}'s address) is linked to ${linked.join(', ') || 'none'}` });
  }
  for (const r of replicas) {
    const seen = ((await getJson(r.hub.ports.adminPort, '/debug/agents')) as { agents: Array<{ cluster: string }> }).agents.map((a) => a.cluster).sort();
    checks.push({ name: 'replicas', ok: same(seen, [...agents.keys()]), detail: `${r.id} has a link of ${seen.join(', ') || 'no cluster'}` });
  }
  return checks;
}

/**
 * Dials through `replica` (not the one the agents were given): CONNECT to each member's API server
 * and GET through /clusters/<name>/; then each cluster was dialed there and no dial was forwarded
 * to a peer, i.e. every one was served by the replica's own link of the agent.
 */
export async function replicaDialChecks(pki: PkiPaths, replica: Replica, members: Array<{ name: string; apiPort: number }>): Promise<ReplicaCheck[]> {
  const checks: ReplicaCheck[] = [];
  const port = replica.hub.ports.connectPort;
  for (const m of members) {
    const answer = await connectAnswer(pki, 'admin', m.name, port, `https://127.0.0.1:${m.apiPort}/version`);
    checks.push({ name: 'replica dials', ok: answer === '200', detail: `CONNECT to ${m.name} through ${replica.id} answered ${answer || 'nothing'}` });
    const res = await adminGet(pki, port, `/clusters/${m.name}/api/v1/namespaces/default/configmaps/cluster-info`);
    const answered = res.status === 200 ? (JSON.parse(res.body) as { data?: { cluster?: string } }).data?.cluster : `${res.status} ${res.body.slice(0, 120)}`;
    checks.push({ name: 'replica dials', ok: answered === m.name, detail: `${replica.id}'s /clusters/${m.name}/ reads cluster-info: ${answered}` });
  }
  const metrics = await getText(replica.hub.ports.adminPort, '/metrics');
  const forwarded = sumOf(metrics, 'fedtunnel_peer_forwarded_dials_total');
  const dialed = members.map((m) => sumOf(metrics, 'fedtunnel_dials_total', { cluster: m.name, result: 'ok' }));
  checks.push({
    name: 'replica dials',
    ok: dialed.every((n) => n > 0) && forwarded === 0,
    detail: `${replica.id} dialed ${members.map((m, i) => `${m.name} ${dialed[i]}×`).join(', ')}, forwarded to a peer ${forwarded}× (fedtunnel_peer_forwarded_dials_total): served by its own links`,
  });
  return checks;
}

/** Exactly one replica leads (its leader gauge) and every replica's status page names it and lists both. */
export async function leaseChecks(pki: PkiPaths, replicas: Replica[]): Promise<ReplicaCheck[]> {
  const leaders: string[] = [];
  for (const r of replicas) {
    if (sumOf(await getText(r.hub.ports.adminPort, '/metrics'), 'fedtunnel_federation_controller_leader') === 1) leaders.push(r.id);
  }
  const checks: ReplicaCheck[] = [{ name: 'controller lease', ok: leaders.length === 1, detail: `held by ${leaders.join(', ') || 'nobody'} (fedtunnel_federation_controller_leader)` }];
  const ids = replicas.map((r) => r.id);
  for (const r of replicas) {
    const snapshot = await statusSnapshot(pki, r.hub.ports.connectPort);
    const listed = (snapshot.replicas ?? []).map((x) => x.instance).sort();
    const ok = leaders.length === 1 && snapshot.lease.holder === leaders[0] && same(listed, ids);
    checks.push({ name: 'controller lease', ok, detail: `${r.id}'s status page names holder ${snapshot.lease.holder ?? 'none'} and lists replicas ${listed.join(', ')}` });
  }
  return checks;
}

/**
 * SIGTERM of `stopping`: it leaves the replica set first, so every agent drains its link there and
 * keeps the one to `staying` (no new registration on it). Resolves with the checks.
 */
export async function stopReplicaChecks(stopping: Replica, staying: Replica, agents: Map<string, LoggedProcess>): Promise<ReplicaCheck[]> {
  const since = staying.hub.mark;
  const exit = await stopping.hub.kill('SIGTERM');
  const checks: ReplicaCheck[] = [{ name: 'replica stop', ok: exit.code === 0, detail: `${stopping.id} stopped on SIGTERM (exit ${exit.code ?? exit.signal})` }];
  for (const [cluster, agent] of agents) {
    // The stopping replica told the agents the set without itself before it went: no waiting out a TTL.
    const linked = await settled(() => linkedReplicas(agent), (ids) => same(ids, [staying.id]));
    checks.push({ name: 'replica stop', ok: same(linked, [staying.id]), detail: `agent of ${cluster} is linked to ${linked.join(', ') || 'none'}` });
  }
  const relinked = staying.hub.lines.slice(since).filter((l) => l.msg === 'agent registered').map((l) => String(l.cluster));
  checks.push({ name: 'replica stop', ok: relinked.length === 0, detail: `${staying.id} kept every link (${relinked.length ? `re-registered ${relinked.join(', ')}` : 'no agent re-registered'})` });
  return checks;
}

/** The summary lines: how to reach each replica (CONNECT, /clusters/<name>/, the status page). */
export function replicaSummary(o: { pki: PkiPaths; kubeconfig: string; replicas: Array<{ id: string; ports: HubPorts }>; store: string; example: { cluster: string; apiPort: number } }): string[] {
  const admin = o.pki.users.admin!;
  const tls = `--cacert ${o.pki.ca.cert} --cert ${admin.cert} --key ${admin.key}`;
  return [
    `  HA proxy-server replicas ${o.replicas.map((r) => r.id).join(' and ')} share ${o.store}; each agent was given ${o.replicas[0]!.id}'s agent address and links to both (README "HA replicas"):`,
    ...o.replicas.flatMap(({ id, ports }) => [
      `  - ${id}: agents on 127.0.0.1:${ports.agentPort}, CONNECT (mTLS) on 127.0.0.1:${ports.connectPort}${ports.connectUds ? `, CONNECT (unix) on ${ports.connectUds}` : ''}, federation API https://127.0.0.1:${ports.federationPort}, metrics and registry http://127.0.0.1:${ports.adminPort}/metrics, /debug/agents`,
      `    kubectl --kubeconfig ${o.kubeconfig} --context federation --server https://127.0.0.1:${ports.federationPort} -n kube-federation-system get kubefedclusters`,
      `    curl -sS -p -x ${connectProxyUrl(o.example.cluster, ports.connectPort)} --proxy-cacert ${o.pki.ca.cert} --proxy-cert ${admin.cert} --proxy-key ${admin.key} ${tls} https://127.0.0.1:${o.example.apiPort}/version`,
      `    curl -sS ${tls} https://127.0.0.1:${ports.connectPort}/clusters/${o.example.cluster}/api/v1/namespaces/default/configmaps/cluster-info`,
      `    curl -sS ${tls} https://127.0.0.1:${ports.connectPort}/status/snapshot   # status page: https://127.0.0.1:${ports.connectPort}/status (client certificate)`,
    ]),
    `  the federation controller runs on the lease holder (named on both status pages): curl -sS http://127.0.0.1:${o.replicas[0]!.ports.adminPort}/metrics | grep ^fedtunnel_federation_controller_leader   (1 on the lease holder)`,
  ];
}
