// Fault: kill -9 loops under load. The cluster-agent and the proxy-server are each killed with
// SIGKILL five times while clients loop CONNECT → download through the tunnel; the member API
// server is killed five times while FederatedConfigMaps are being created on the hub. After every
// round: the agent is registered again (after a hub restart: within its backoff bound), a new
// dial succeeds, /debug/agents shows no stream and no pending dial, every failed request failed
// with a reason (counted), none hung or returned wrong bytes, and every federated object the hub
// acknowledged reaches the member again.
import { strict as assert } from 'node:assert';
import path from 'node:path';
import { scratchDir } from '../support/paths.js';
import { spawnAgent, startAgent, startServer, type LoggedProcess, type ServerProcess } from '../support/processes.js';
import { startByteService } from '../support/clients.js';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';
import { assertServerIdle } from '../support/server-state.js';
import { TunnelLoad } from '../support/tunnel-load.js';
import { reportFault } from '../support/fault-report.js';
import { joinedFederation, type Federation } from '../support/federation-harness.js';

const ROUNDS = 5;
/** The agents of these tests back off 50 ms doubling to 500 ms, ±20 % (processes.ts). */
const BACKOFF_MAX_MS = 500;
/** Reconnect bound after a hub restart: the longest backoff step plus a TLS handshake and HELLO on a loaded 2-core machine. */
const RECONNECT_BOUND_MS = BACKOFF_MAX_MS * 1.2 + 2500;

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

describe('faults: kill -9 loops under load', function () {
  this.timeout(180_000);
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let service: Awaited<ReturnType<typeof startByteService>>;
  const uds = path.join(scratchDir('faults-kill'), 'connect.sock');

  before(async function () {
    baseline = await resourceBaseline();
    service = await startByteService();
  });

  after(async function () {
    await service.close();
    await assertNoLeakedResources(baseline);
  });

  /** Pauses the load, checks the hub holds only the agent of alpha and nothing in flight, and that a fresh dial succeeds. */
  async function checkInvariants(server: ServerProcess, load: TunnelLoad): Promise<void> {
    await load.stop();
    await assertServerIdle(server, { agents: ['alpha'] });
    const since = Date.now();
    load.start();
    await load.next((o) => o.kind === 'ok', since);
  }

  function assertNothingLost(load: TunnelLoad): void {
    assert.equal(load.count('lost'), 0, `requests hung or returned wrong bytes: ${JSON.stringify(load.reasons())}`);
  }

  it('cluster-agent killed -9 five times: typed failures, re-registration, idle hub after every round', async function () {
    const server = await startServer({ uds });
    let agent: LoggedProcess | null = await startAgent({ cluster: 'alpha', server, allow: [`127.0.0.1:${service.port}`] });
    const load = new TunnelLoad({ endpoint: { uds }, cluster: 'alpha', target: `127.0.0.1:${service.port}` });
    const failAfter: number[] = [];
    const recovery: number[] = [];
    try {
      load.start();
      await load.next((o) => o.kind === 'ok', 0);
      for (let round = 0; round < ROUNDS; round++) {
        const since = server.mark;
        const killedAt = Date.now();
        await agent.kill('SIGKILL');
        agent = null;
        const unregistered = await server.agentUnregistered('alpha', since);
        assert.doesNotMatch(String(unregistered.reason), /keepalive/, 'the hub saw the link die, not a keepalive timeout');
        const failure = await load.next((o) => o.kind === 'typed', killedAt);
        assert.match(failure.reason, /^(503 NO_AGENT|502 LINK_LOST)$/);
        failAfter.push(failure.at - killedAt);
        const restartAt = Date.now();
        agent = await startAgent({ cluster: 'alpha', server, allow: [`127.0.0.1:${service.port}`] });
        recovery.push((await load.next((o) => o.kind === 'ok', restartAt)).at - restartAt);
        await checkInvariants(server, load);
      }
      await load.stop();
      assertNothingLost(load);
      reportFault({
        fault: `cluster-agent kill -9 ×${ROUNDS} under CONNECT load`,
        typedFailureMs: median(failAfter),
        recoveryMs: median(recovery),
        lost: load.count('lost'),
        notes: `medians; recovery = agent restart to first complete download; ${load.count('ok')} ok, failures ${JSON.stringify(load.reasons())}`,
      });
    } finally {
      await load.stop();
      await agent?.kill('SIGKILL');
      await server.kill('SIGKILL');
    }
  });

  it('proxy-server killed -9 five times: the agent reconnects within its backoff, typed failures, idle hub after every round', async function () {
    let server = await startServer({ uds });
    const agentPort = server.agentPort;
    const agent = spawnAgent({ cluster: 'alpha', server, allow: [`127.0.0.1:${service.port}`] });
    await server.agentRegistered('alpha');
    const load = new TunnelLoad({ endpoint: { uds }, cluster: 'alpha', target: `127.0.0.1:${service.port}` });
    const failAfter: number[] = [];
    const reconnect: number[] = [];
    const recovery: number[] = [];
    try {
      load.start();
      await load.next((o) => o.kind === 'ok', 0);
      for (let round = 0; round < ROUNDS; round++) {
        const agentMark = agent.mark;
        const killedAt = Date.now();
        await server.kill('SIGKILL');
        await agent.waitForLog((l) => l.msg === 'reconnecting', { since: agentMark });
        const failure = await load.next((o) => o.kind === 'typed' || o.kind === 'cut', killedAt);
        failAfter.push(failure.at - killedAt);
        server = await startServer({ uds, agentPort });
        const readyAt = Date.now();
        await server.agentRegistered('alpha');
        const reconnectMs = Date.now() - readyAt;
        assert.ok(reconnectMs < RECONNECT_BOUND_MS, `the agent took ${reconnectMs} ms to come back (bound ${RECONNECT_BOUND_MS} ms)`);
        reconnect.push(reconnectMs);
        recovery.push((await load.next((o) => o.kind === 'ok', readyAt)).at - readyAt);
        await checkInvariants(server, load);
      }
      await load.stop();
      assertNothingLost(load);
      // While the hub is down its Unix socket refuses (or is not there); a dial in flight breaks;
      // a restarted hub knows no cluster until its agent is back (404 UNKNOWN_CLUSTER).
      for (const reason of Object.keys(load.reasons())) assert.match(reason, /^(typed (ECONNREFUSED|ENOENT|ECONNRESET|404 UNKNOWN_CLUSTER|503 NO_AGENT|502 LINK_LOST)|cut .+)$/, reason);
      reportFault({
        fault: `proxy-server kill -9 ×${ROUNDS} under CONNECT load`,
        typedFailureMs: median(failAfter),
        recoveryMs: median(recovery),
        lost: load.count('lost'),
        notes: `medians; agent back ${median(reconnect)} ms (max ${Math.max(...reconnect)}) after the hub was ready; recovery = hub ready to first complete download; ${load.count('ok')} ok, failures ${JSON.stringify(load.reasons())}`,
      });
    } finally {
      await load.stop();
      await agent.kill('SIGKILL');
      await server.kill('SIGKILL');
    }
  });
});

describe('faults: member API server killed -9 during propagation', function () {
  this.timeout(240_000);
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let fed: Federation | null = null;

  before(async function () {
    baseline = await resourceBaseline();
    fed = await joinedFederation({ east: [] }, { extraServerArgs: ['--member-request-timeout', '2000'] });
    const ns = await fed.kubectl('federation', ['apply', '-f', '-'], 'apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\napiVersion: types.kubefed.io/v1beta1\nkind: FederatedNamespace\nmetadata: {name: shop, namespace: shop}\nspec: {placement: {clusterSelector: {}}}\n');
    assert.equal(ns.code, 0, ns.stderr);
  });

  after(async function () {
    await fed?.stop();
    await assertNoLeakedResources(baseline);
  });

  it('five rounds: the hub names the refused dials, keeps acknowledging writes, and every acknowledged object reaches the member again', async function () {
    const f = fed!;
    const acked = new Map<string, string>();
    let next = 0;
    /** One FederatedConfigMap through the hub, acknowledged when kubectl exits 0. */
    const createOne = async (): Promise<void> => {
      const name = `cm-${next++}`;
      const value = `${name}-${Date.now()}`;
      const r = await f.kubectl('federation', ['apply', '-f', '-'], `apiVersion: types.kubefed.io/v1beta1\nkind: FederatedConfigMap\nmetadata: {name: ${name}, namespace: shop}\nspec:\n  template: {data: {value: "${value}"}}\n  placement: {clusterSelector: {}}\n`);
      assert.equal(r.code, 0, `the hub refused a write while a member was down: ${r.stderr}`);
      acked.set(name, value);
    };
    const converged = async (): Promise<void> => {
      const wait = await f.kubectl('federation', ['wait', '--for=condition=Propagation', '--timeout=90s', '-n', 'shop', '--all', 'federatedconfigmaps']);
      assert.equal(wait.code, 0, wait.stderr);
      const got = await f.kubectlMember('east', ['get', 'configmaps', '-n', 'shop', '-l', 'kubefed.io/managed=true', '-o', 'json']);
      assert.equal(got.code, 0, got.stderr);
      const present = new Map<string, string>((JSON.parse(got.stdout) as { items: Array<{ metadata: { name: string }; data: { value: string } }> }).items.map((o) => [o.metadata.name, o.data.value]));
      for (const [name, value] of acked) assert.equal(present.get(name), value, `acknowledged ${name} not on the member with its content`);
    };
    const hubState = async (): Promise<{ agents: Array<{ cluster: string }>; pendingDials: number }> =>
      JSON.parse((await (await fetch(`http://127.0.0.1:${f.hub.ports.adminPort}/debug/agents`)).text()) as string);

    for (let i = 0; i < 3; i++) await createOne();
    await converged();
    const failAfter: number[] = [];
    const recovery: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const since = f.hub.mark;
      const killedAt = Date.now();
      const member = f.members.east!;
      await member.apiserver.kill('SIGKILL');
      // Writes keep being acknowledged by the hub while the member is gone.
      for (let i = 0; i < 2; i++) await createOne();
      const refused = await f.hub.waitForLog((l) => l.msg === 'dial failed' && l.code === 'CONNECTION_REFUSED', { since });
      failAfter.push(Date.parse(String(refused.time)) - killedAt);
      await f.restartMemberApiServer('east', 'SIGKILL');
      const upAt = Date.now();
      await converged();
      recovery.push(Date.now() - upAt);
      let state = await hubState();
      assert.deepEqual(state.agents.map((a) => a.cluster), ['east'], 'the agent stayed registered');
      // The controller keeps dialing the member (health checks, its watch): a dial may be in
      // flight at any moment, so "back to 0" means it drains to 0 within a bound, not that it is 0 now.
      for (const started = Date.now(); state.pendingDials > 0 && Date.now() - started < 10_000; state = await hubState()) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.equal(state.pendingDials, 0, 'dials left pending on the hub');
    }
    reportFault({
      fault: `member API server kill -9 ×${ROUNDS} during propagation`,
      typedFailureMs: median(failAfter),
      recoveryMs: median(recovery),
      lost: 0,
      notes: `medians; typed failure = hub's first 'dial failed' CONNECTION_REFUSED; recovery = member ready to every acknowledged object (${acked.size}) Propagated and on the member`,
    });
  });
});
