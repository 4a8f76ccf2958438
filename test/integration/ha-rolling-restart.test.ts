// Zero-failure rolling restart: three hub replicas (processes) on one MySQL database behind
// HAProxy (L4, health checks on /readyz), one agent linked to every replica, continuous load
// (CONNECT downloads, federation writes, a watch that resumes from its resourceVersion). Each
// replica in turn gets SIGTERM and is started again on its ports: no short request fails, every
// acknowledged write reaches the watch exactly once, watches end cleanly, and the agent always
// holds a link. Then SIGKILL of one replica: the failures are the requests in flight on it, each
// a clean typed failure (a documented dial refusal, a reset, a connection closed early, a
// Kubernetes Status; never a hang or garbage), and the load recovers within the keepalive timeout.
import { strict as assert } from 'node:assert';
import { performance } from 'node:perf_hooks';
import fs from 'node:fs';
import type { AgentStatus } from '../../cluster-agent/agent.js';
import { isCleanFailure } from '../../common/request-failures.js';
import { startByteService } from '../support/clients.js';
import { HaLoad } from '../support/ha-load.js';
import { scratchDatabase, startReplica, type ReplicaProcess } from '../support/ha.js';
import { startHaproxy, HAPROXY_BIN, type BackendServer, type Haproxy } from '../support/haproxy.js';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';
import { mysqlUnreachable } from '../support/mysql.js';
import { freePort } from '../support/ports.js';
import { getJson, spawnAgent, type LoggedProcess } from '../support/processes.js';

const KEEPALIVE_TIMEOUT_MS = 2_000;
/** npm test restarts the three replicas once; the HA soak (npm run soak:ha) sets more rounds. */
const ROUNDS = Number(process.env.HA_RESTART_ROUNDS ?? 1);

/** Flags of every replica: HA membership, quick heartbeats, a readiness delay longer than HAProxy's two failed checks (2 × 100 ms). */
function replicaArgs(agentPort: number): string[] {
  return [
    '--advertise-agent-address', `127.0.0.1:${agentPort}`,
    '--replica-heartbeat', '200', '--replica-ttl', '800',
    '--shutdown-delay', '600', '--drain-timeout', '5000',
    '--controller-lease-duration', '1200',
    '--keepalive-interval', '500', '--keepalive-timeout', String(KEEPALIVE_TIMEOUT_MS),
    '--agent-rejoin-window', '0',
  ];
}

describe('HA: rolling restart behind HAProxy', function () {
  this.timeout(240_000 * Math.max(1, Number(process.env.HA_RESTART_ROUNDS ?? 1)));
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let db: Awaited<ReturnType<typeof scratchDatabase>> | null = null;
  let service: Awaited<ReturnType<typeof startByteService>> | null = null;
  let haproxy: Haproxy | null = null;
  let agent: LoggedProcess | null = null;
  const replicas: ReplicaProcess[] = [];
  const servers: Required<BackendServer>[] = [];
  const exitedReplicas: ReplicaProcess[] = [];
  /** Set while the load and the link sampler run: a failed assertion leaves them to after(), whose leak check would otherwise report them instead of the failure. */
  let stopLoad: (() => Promise<void>) | null = null;

  before(async function () {
    const unreachable = await mysqlUnreachable();
    if (unreachable) assert.fail(`MySQL is required: ${unreachable}`);
    if (!fs.existsSync(HAPROXY_BIN)) assert.fail(`${HAPROXY_BIN} missing: run node test/setup/prepare.mjs (Debian package haproxy)`);
    baseline = await resourceBaseline();
    db = await scratchDatabase();
    service = await startByteService();
  });

  after(async function () {
    await stopLoad?.();
    await agent?.kill('SIGKILL');
    await Promise.all(replicas.map((r) => r.kill('SIGKILL')));
    await haproxy?.stop();
    await service?.close();
    await db?.drop();
    if (baseline) await assertNoLeakedResources(baseline);
  });

  async function start(i: number): Promise<ReplicaProcess> {
    const s = servers[i]!;
    return startReplica({ instance: s.name, storeUrl: db!.url, ports: s, extraArgs: replicaArgs(s.agentPort) });
  }

  async function agentStatus(): Promise<AgentStatus> {
    const started = await agent!.waitForLog((l) => l.msg === 'cluster-agent started');
    return (await getJson(started.healthPort as number, '/healthz')) as AgentStatus;
  }

  /** Bounded wait for the agent (another process) to hold links to exactly these replicas. */
  async function agentLinkedTo(names: string[], timeoutMs = 15_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const status = await agentStatus();
      const linked = status.replicas.filter((r) => r.linked).map((r) => r.id).sort();
      if (JSON.stringify(linked) === JSON.stringify([...names].sort())) return;
      if (performance.now() > deadline) assert.fail(`agent links ${JSON.stringify(linked)}, expected ${JSON.stringify(names)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  it('restarts all three replicas one after another with 0 failed requests, no lost watch event, and the agent always linked; SIGKILL fails only what was in flight', async function () {
    for (const name of ['hub-a', 'hub-b', 'hub-c']) {
      servers.push({ name, agentPort: await freePort(), connectPort: await freePort(), federationPort: await freePort(), adminPort: await freePort() });
    }
    replicas.push(await start(0));
    // One after another: the first creates the schema, concurrent first starts could race on it.
    replicas.push(await start(1), await start(2));
    haproxy = await startHaproxy(servers);
    for (const s of servers) await haproxy.serverUp(s.name);
    agent = spawnAgent({ cluster: 'alpha', server: { agentPort: haproxy.ports.agentPort }, allow: [`127.0.0.1:${service!.port}`] });
    await agentLinkedTo(servers.map((s) => s.name));

    const load = new HaLoad(haproxy.ports, { cluster: 'alpha', service: `127.0.0.1:${service!.port}` });
    // The agent must never be without a link: sampled all along.
    let minLinks = Infinity;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        minLinks = Math.min(minLinks, (await agentStatus()).links);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    await load.start();
    stopLoad = async () => {
      sampling = false;
      await Promise.all([load.stop(1_000), sampler]);
    };

    for (let round = 0; round < ROUNDS * replicas.length; round++) {
      const i = round % replicas.length;
      const old = replicas[i]!;
      const writesBefore = load.result.writes;
      // SIGTERM without the idle check: the replica is drained under load on purpose.
      old.signal('SIGTERM');
      exitedReplicas.push(old);
      const exit = await old.exited;
      assert.equal(exit.code, 0, `${old.instance} exited cleanly`);
      await haproxy.serverUp(old.instance, false);
      replicas[i] = await start(i);
      await replicas[i]!.agentRegistered('alpha');
      await haproxy.serverUp(old.instance, true);
      await agentLinkedTo(servers.map((s) => s.name));
      assert.ok(load.result.writes > writesBefore, `writes went on while ${old.instance} restarted`);
    }
    const rolling = { ...load.result, failures: [...load.result.failures] };
    const refusals = [...replicas, ...exitedReplicas].flatMap((r) => r.lines.filter((l) => /refus|timeout|closed before/i.test(String(l.msg))).map((l) => `${r.instance}: ${JSON.stringify(l)}`));
    assert.deepEqual(rolling.failures, [], `no request failed during the rolling restart; the replicas logged:\n${refusals.join('\n')}\nHAProxy: ${haproxy.process.stderr}`);
    assert.ok(rolling.connects > 0 && rolling.writes > 0, `load ran: ${rolling.connects} CONNECTs, ${rolling.writes} writes`);
    assert.ok(rolling.watchCleanEnds >= 1, `the watch was ended cleanly by a stopping replica (${rolling.watchCleanEnds})`);
    assert.equal(rolling.watchBreaks, 0, 'no watch broke');

    // SIGKILL: failures bounded to the requests in flight on the killed replica, recovery within the keepalive timeout.
    const failuresBefore = load.result.failures.length;
    const connectsBefore = load.result.connects;
    const writesBefore = load.result.writes;
    const killedAt = performance.now();
    await replicas[1]!.kill('SIGKILL');
    const deadline = killedAt + KEEPALIVE_TIMEOUT_MS + 5_000;
    while ((load.result.connects <= connectsBefore + 5 || load.result.writes <= writesBefore + 5) && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    const recoveredMs = performance.now() - killedAt;
    stopLoad = null;
    const result = await load.stop();
    sampling = false;
    await sampler;
    const killFailures = result.failures.slice(failuresBefore);
    assert.ok(recoveredMs < KEEPALIVE_TIMEOUT_MS + 5_000, `load recovered ${recoveredMs.toFixed(0)} ms after the SIGKILL`);
    // One CONNECT, one write and the watch are in flight at any moment.
    assert.ok(killFailures.length <= 3, `failures after the SIGKILL: ${JSON.stringify(killFailures)}`);
    const unclean = killFailures.filter((f) => !isCleanFailure(f.error));
    assert.deepEqual(unclean, [], 'every failure after the SIGKILL is a clean typed one (refused with a documented code, reset, closed early, a Status)');

    assert.ok(minLinks >= 1, `the agent was without a link (min ${minLinks})`);
    const lost = [...result.acked.keys()].filter((name) => !result.seen.has(name));
    assert.deepEqual(lost, [], 'every acknowledged write reached the watch');
    assert.equal(result.duplicates, 0, 'no event delivered twice');
    for (const [name, rv] of result.acked) assert.equal(result.seen.get(name), rv, `${name}: the watch saw the acknowledged version`);
    console.log(`      rolling restart: ${rolling.connects} CONNECTs, ${rolling.writes} writes, ${rolling.failures.length} failed, ${rolling.watchCleanEnds} clean watch ends; SIGKILL: ${killFailures.length} failed (${killFailures.map((f) => `${f.kind} ${f.error.kind} ${f.error.code}`).join(', ') || 'none'}), recovered in ${recoveredMs.toFixed(0)} ms`);
  });
});
