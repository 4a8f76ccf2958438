// Chaos soak (not part of npm test): `npm run soak`, SOAK_MINUTES (default 10), SOAK_SEED (default
// 1). A proxy-server, an agent in its own network namespace and a federation API server on a
// SQLite file run under load: CONNECT downloads through the tunnel and configmap writes. A seeded
// random schedule kills one of them with SIGKILL or partitions the agent (veth down or a one-way
// blackhole), holds the fault for a random time, restores it and then checks the invariants:
// the agent registered again within its bound, the hub holds only that agent and no stream or
// pending dial, a new download completes, the API server answers. At the end every acknowledged
// write must be stored with its content, and no request may have hung or returned wrong bytes.
// Prints a summary (invariants checked, requests tried / failed with a typed reason / lost, RSS of
// each process at start and end) and exits 1 if anything was lost or an invariant failed.
import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import path from 'node:path';
import { spawnMemberAgent } from '../../common/federation-processes.js';
import { killAllChildren, type LoggedProcess } from '../../common/spawn.js';
import { startByteService } from '../support/clients.js';
import { createMemberNetns, partition, reapNamespaces, type MemberNetns, type PartitionKind } from '../support/netns.js';
import { scratchDir } from '../support/paths.js';
import { testPki } from '../support/pki.js';
import { startServer, type ServerProcess } from '../support/processes.js';
import { TunnelLoad } from '../support/tunnel-load.js';
import { request, startApiServer, type ApiServerProcess } from '../federation/apiserver/harness.js';

const MINUTES = Number(process.env.SOAK_MINUTES ?? 10);
const SEED = Number(process.env.SOAK_SEED ?? 1);
const KEEPALIVE = ['--keepalive-interval', '500', '--keepalive-timeout', '2000'];
/** Any single wait for recovery; exceeding it is an invariant failure. */
const RECOVERY_BOUND_MS = 15_000;
const CM = '/api/v1/namespaces/default/configmaps';

/** mulberry32: small, seeded, reproducible. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function rssKiB(pid: number): number | null {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

type Fault = 'kill-agent' | 'kill-proxy-server' | 'kill-apiserver' | `partition-${PartitionKind}`;
const FAULTS: Fault[] = ['kill-agent', 'kill-proxy-server', 'kill-apiserver', 'partition-link-down', 'partition-drop-to-member', 'partition-drop-from-member'];

async function main(): Promise<number> {
  if (!(MINUTES > 0) || !Number.isSafeInteger(SEED)) throw new Error('SOAK_MINUTES must be > 0 and SOAK_SEED an integer');
  const random = prng(SEED);
  const dir = scratchDir(`soak-${process.pid}`);
  const uds = path.join(dir, 'connect.sock');
  const dbFile = path.join(dir, 'soak.db');
  const service = await startByteService('0.0.0.0');
  const netns: MemberNetns = await createMemberNetns();
  const target = `${netns.rootAddress}:${service.port}`;

  let server: ServerProcess = await startServer({ uds, agentHost: '0.0.0.0', extraArgs: KEEPALIVE });
  const agentPort = server.agentPort;
  const spawnAgentInNetns = (): LoggedProcess =>
    spawnMemberAgent({
      cluster: 'alpha', pki: testPki(), server: `${netns.rootAddress}:${agentPort}`, apiserver: target, netns: netns.name,
      backoff: { initialMs: 50, maxMs: 500 }, extraArgs: [...KEEPALIVE, '--connect-timeout', '2000'],
    });
  let agent = spawnAgentInNetns();
  await server.agentRegistered('alpha');
  let api: ApiServerProcess = await startApiServer('soak', [], `sqlite://${dbFile}`);

  const rss = {
    start: { 'proxy-server': rssKiB(server.pid), 'cluster-agent': rssKiB(agent.pid), apiserver: rssKiB(api.pid), soak: Math.round(process.memoryUsage().rss / 1024) },
    end: {} as Record<string, number | null>,
  };
  const restarts: Record<string, number> = { 'proxy-server': 0, 'cluster-agent': 0, apiserver: 0 };

  // Tunnel load, and writes to the API server: every 201 is an acknowledged write.
  const load = new TunnelLoad({ endpoint: { uds }, cluster: 'alpha', target, clients: 2, bytes: 128 * 1024 });
  const acked = new Map<string, string>();
  const writeFailures: Record<string, number> = {};
  let writesTried = 0;
  let writing = true;
  const writer = (async () => {
    for (let n = 0; writing; n++) {
      const name = `soak-${n}`;
      const value = `${name}:${SEED}`;
      writesTried++;
      let failure: string | null = null;
      try {
        const r = await request(api, 'POST', CM, { body: JSON.stringify({ metadata: { name }, data: { value } }), contentType: 'application/json', timeoutMs: 10_000 });
        if (r.status === 201) acked.set(name, value);
        else failure = `${r.status} ${(r.json() as { reason?: string }).reason ?? ''}`;
      } catch (error) {
        failure = (error as NodeJS.ErrnoException).code ?? `untyped: ${(error as Error).message}`;
      }
      if (failure) {
        writeFailures[failure] = (writeFailures[failure] ?? 0) + 1;
        await new Promise((resolve) => setTimeout(resolve, 50)); // pacing while the API server is down
      }
    }
  })();

  const counts: Record<string, number> = {};
  let invariants = 0;
  const problems: string[] = [];
  const check = (ok: boolean, what: string): void => {
    invariants++;
    if (!ok) problems.push(what);
  };

  const deadline = Date.now() + MINUTES * 60_000;
  load.start();
  console.log(`soak: ${MINUTES} min, seed ${SEED}`);
  while (Date.now() < deadline && problems.length === 0) {
    const fault = FAULTS[Math.floor(random() * FAULTS.length)]!;
    // Partitions are either clearly shorter than the keepalive timeout (the link must survive:
    // at most 1 s + one 500 ms ping interval of silence) or clearly longer (it must be dropped).
    const longPartition = random() < 0.5;
    const holdMs = fault.startsWith('partition') && !longPartition ? 300 + Math.floor(random() * 700) : 3000 + Math.floor(random() * 2000);
    counts[fault] = (counts[fault] ?? 0) + 1;
    const since = server.mark;
    const pause = (): Promise<unknown> => new Promise((resolve) => setTimeout(resolve, holdMs)); // the fault's duration, not a synchronisation
    if (fault === 'kill-agent') {
      await agent.kill('SIGKILL');
      await pause();
      agent = spawnAgentInNetns();
      restarts['cluster-agent']!++;
    } else if (fault === 'kill-proxy-server') {
      await server.kill('SIGKILL');
      await pause();
      server = await startServer({ uds, agentHost: '0.0.0.0', agentPort, extraArgs: KEEPALIVE });
      restarts['proxy-server']!++;
    } else if (fault === 'kill-apiserver') {
      await api.kill('SIGKILL');
      await pause();
      api = await startApiServer('soak', [], `sqlite://${dbFile}`);
      restarts.apiserver!++;
    } else {
      const heal = await partition(netns, fault.slice('partition-'.length) as PartitionKind);
      await pause();
      await heal();
    }
    // Invariants after every fault.
    try {
      const bound = { timeoutMs: RECOVERY_BOUND_MS };
      if (fault === 'kill-proxy-server') await server.waitForLog((l) => l.msg === 'agent registered', bound);
      else if (fault === 'kill-agent' || (fault.startsWith('partition') && holdMs >= 3000)) {
        await server.waitForLog((l) => l.msg === 'agent unregistered', { since, ...bound });
        await server.waitForLog((l) => l.msg === 'agent registered', { since, ...bound });
      }
      await load.stop();
      if (fault.startsWith('partition') && holdMs < 3000) check(!server.lines.slice(since).some((l) => l.msg === 'agent unregistered'), `after ${fault} of ${holdMs} ms: the link was dropped`);
      const idle = await server.state();
      check(idle.agents.length === 1 && idle.agents[0]!.cluster === 'alpha', `after ${fault}: agents ${JSON.stringify(idle.agents)}`);
      check(idle.streams === 0, `after ${fault}: ${idle.streams} streams left`);
      check(idle.pendingDials === 0, `after ${fault}: ${idle.pendingDials} pending dials left`);
      const resumed = Date.now();
      load.start();
      await load.next((o) => o.kind === 'ok', resumed, RECOVERY_BOUND_MS);
      check(true, 'a new download completes');
      const health = await request(api, 'GET', CM, { timeoutMs: RECOVERY_BOUND_MS });
      check(health.status === 200, `after ${fault}: the API server answered ${health.status}`);
    } catch (error) {
      check(false, `after ${fault}: ${(error as Error).message}`);
    }
    check(load.count('lost') === 0, `after ${fault}: ${load.count('lost')} requests lost`);
  }
  await load.stop();
  writing = false;
  await writer;

  // No acknowledged write lost.
  const listed = await request(api, 'GET', CM, { timeoutMs: RECOVERY_BOUND_MS });
  const stored = new Map<string, string>((listed.json().items as Array<{ metadata: { name: string }; data: { value: string } }>).map((o) => [o.metadata.name, o.data.value]));
  let writesLost = 0;
  for (const [name, value] of acked) if (stored.get(name) !== value) writesLost++;
  check(writesLost === 0, `${writesLost} acknowledged writes lost`);
  const untyped = Object.keys(writeFailures).filter((k) => k.startsWith('untyped'));
  check(untyped.length === 0, `writes failed without a reason: ${untyped.join(', ')}`);

  rss.end = { 'proxy-server': rssKiB(server.pid), 'cluster-agent': rssKiB(agent.pid), apiserver: rssKiB(api.pid), soak: Math.round(process.memoryUsage().rss / 1024) };
  const requests = { tried: load.outcomes.length, ok: load.count('ok'), typed: load.count('typed'), cut: load.count('cut'), lost: load.count('lost') };
  console.log(`\nsoak summary (seed ${SEED}, ${MINUTES} min)`);
  console.log(`  faults injected: ${JSON.stringify(counts)}`);
  console.log(`  invariants checked: ${invariants} (agent registered again, hub holds one agent / 0 streams / 0 pending dials, new download completes, API server answers, nothing hung or corrupted, no acknowledged write lost)`);
  console.log(`  tunnel requests: tried ${requests.tried}, ok ${requests.ok}, failed with a typed reason ${requests.typed}, cut mid-transfer ${requests.cut}, lost ${requests.lost}`);
  console.log(`  failure reasons: ${JSON.stringify(load.reasons())}`);
  console.log(`  writes: tried ${writesTried}, acknowledged ${acked.size}, failed ${Object.values(writeFailures).reduce((a, b) => a + b, 0)} ${JSON.stringify(writeFailures)}, lost ${writesLost}`);
  console.log(`  restarts: ${JSON.stringify(restarts)}`);
  console.log('  RSS KiB (start → end; restarted processes: their last incarnation):');
  for (const name of Object.keys(rss.start)) console.log(`    ${name.padEnd(14)} ${String(rss.start[name as keyof typeof rss.start]).padStart(8)} → ${String(rss.end[name]).padStart(8)}`);
  for (const problem of problems) console.log(`  FAILED: ${problem}`);

  await agent.kill('SIGKILL');
  await server.kill('SIGKILL');
  await api.kill('SIGKILL');
  await netns.destroy();
  await service.close();
  fs.rmSync(dir, { recursive: true, force: true });
  assert.ok(invariants > 0);
  return problems.length === 0 && requests.lost === 0 && writesLost === 0 ? 0 : 1;
}

// A hard bound on the whole run: the soak's own duration plus time to wind down.
const hardStop = setTimeout(() => {
  console.error('soak: did not finish within its bound');
  void killAllChildren().then(reapNamespaces).finally(() => process.exit(1));
}, (MINUTES * 60 + 180) * 1000);
hardStop.unref();

main()
  .then(async (code) => {
    await killAllChildren();
    await reapNamespaces();
    process.exit(code);
  })
  .catch(async (error: unknown) => {
    console.error('soak failed:', error);
    await killAllChildren();
    await reapNamespaces();
    process.exit(1);
  });
