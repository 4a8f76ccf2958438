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
import { FederatedWrites } from '../support/federated-writes.js';

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
      // a restarted hub answers 503 NO_AGENT until the agent is back (within its rejoin window a
      // cluster it has not seen yet is not 404 UNKNOWN_CLUSTER, which clients take as final).
      for (const reason of Object.keys(load.reasons())) assert.match(reason, /^(typed (ECONNREFUSED|ENOENT|ECONNRESET|503 NO_AGENT|502 LINK_LOST)|cut .+)$/, reason);
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
  });

  after(async function () {
    await fed?.stop();
    await assertNoLeakedResources(baseline);
  });

  it('five rounds: the hub names the refused dials, keeps acknowledging writes, and every acknowledged object reaches the member again', async function () {
    const f = fed!;
    const writes = new FederatedWrites(f);
    await writes.setup();
    for (let i = 0; i < 3; i++) await writes.createOne();
    await writes.converged('east');
    const failAfter: number[] = [];
    const recovery: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const since = f.hub.mark;
      const killedAt = Date.now();
      await f.members.east!.apiserver.kill('SIGKILL');
      // Writes keep being acknowledged by the hub while the member is gone.
      for (let i = 0; i < 2; i++) await writes.createOne();
      const refused = await f.hub.waitForLog((l) => l.msg === 'dial failed' && l.code === 'CONNECTION_REFUSED', { since });
      failAfter.push(Date.parse(String(refused.time)) - killedAt);
      await f.restartMemberApiServer('east', 'SIGKILL');
      const upAt = Date.now();
      await writes.converged('east');
      recovery.push(Date.now() - upAt);
      await writes.assertHubSettled('east');
    }
    reportFault({
      fault: `member API server kill -9 ×${ROUNDS} during propagation`,
      typedFailureMs: median(failAfter),
      recoveryMs: median(recovery),
      lost: 0,
      notes: `medians; typed failure = hub's first 'dial failed' CONNECTION_REFUSED; recovery = member ready to every acknowledged object (${writes.acked.size}) Propagated and on the member`,
    });
  });
});
