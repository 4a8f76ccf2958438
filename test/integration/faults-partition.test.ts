// Fault: network partitions between the hub and an agent in its own network namespace, made
// without telling either side (test/support/netns.ts partition(): veth down, or a blackhole route
// on one side for a one-way partition). During each: a transfer in flight, an idle long-lived
// stream (what a watch through the tunnel is) and a dial started after the cut. Checked: all three
// end within the keepalive timeout (the dial with a typed refusal), the hub drops the link for the
// keepalive, it holds no stream and no pending dial afterwards, and after the heal the agent is
// back within its connect timeout plus backoff and new dials succeed. The same partitions under a
// joined member during federation propagation: the hub keeps acknowledging writes, the cluster is
// marked not ready within the keepalive timeout, and after the heal every acknowledged object
// reaches the member (the controller's member watch, cut with the link, resumes).
import { strict as assert } from 'node:assert';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { spawnMemberAgent } from '../../common/federation-processes.js';
import type { LoggedProcess } from '../../common/spawn.js';
import { connectVia, ConnectRefused, downloadRequest, readAll, startByteService } from '../support/clients.js';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';
import { createMemberNetns, partition, type MemberNetns, type PartitionKind } from '../support/netns.js';
import { scratchDir } from '../support/paths.js';
import { testPki } from '../support/pki.js';
import { startServer, type ServerProcess } from '../support/processes.js';
import { assertServerIdle } from '../support/server-state.js';
import { reportFault } from '../support/fault-report.js';
import { joinedFederation, type Federation } from '../support/federation-harness.js';
import { FederatedWrites } from '../support/federated-writes.js';

const KEEPALIVE = ['--keepalive-interval', '500', '--keepalive-timeout', '2000'];
const KEEPALIVE_TIMEOUT_MS = 2000;
const CONNECT_TIMEOUT_MS = 2000;
const BACKOFF_MAX_MS = 500;
/** Slack for a loaded 2-core machine on top of the protocol's own bound. */
const SLACK_MS = 3000;
const FAILURE_BOUND_MS = KEEPALIVE_TIMEOUT_MS + SLACK_MS;
/** A connect attempt started during the partition can take up to its timeout, then one backoff step. */
const RECONNECT_BOUND_MS = CONNECT_TIMEOUT_MS + BACKOFF_MAX_MS * 1.2 + SLACK_MS;

/** Resolves when the socket is done, with how: 'error CODE' or 'end'. */
function outcome(socket: Duplex): Promise<{ how: string; at: number }> {
  return new Promise((resolve) => {
    socket.once('error', (error: NodeJS.ErrnoException) => resolve({ how: `error ${error.code ?? error.message}`, at: Date.now() }));
    socket.once('end', () => resolve({ how: 'end', at: Date.now() }));
  });
}

describe('faults: partitions between the hub and an agent (network namespaces)', function () {
  this.timeout(120_000);
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let service: Awaited<ReturnType<typeof startByteService>>;
  let netns: MemberNetns;
  let server: ServerProcess;
  let agent: LoggedProcess;
  let target = '';
  const uds = path.join(scratchDir('faults-partition'), 'connect.sock');

  before(async function () {
    baseline = await resourceBaseline();
    service = await startByteService('0.0.0.0');
    netns = await createMemberNetns();
    target = `${netns.rootAddress}:${service.port}`;
    server = await startServer({ uds, agentHost: '0.0.0.0', extraArgs: KEEPALIVE });
    const since = server.mark;
    agent = spawnMemberAgent({
      cluster: 'alpha',
      pki: testPki(),
      server: `${netns.rootAddress}:${server.agentPort}`,
      apiserver: target,
      netns: netns.name,
      backoff: { initialMs: 50, maxMs: BACKOFF_MAX_MS },
      extraArgs: [...KEEPALIVE, '--connect-timeout', String(CONNECT_TIMEOUT_MS)],
    });
    await server.agentRegistered('alpha', since);
  });

  after(async function () {
    await agent?.kill('SIGKILL');
    await server?.kill('SIGKILL');
    await netns?.destroy();
    await service?.close();
    await assertNoLeakedResources(baseline);
  });

  for (const kind of ['link-down', 'drop-to-member', 'drop-from-member'] as PartitionKind[]) {
    it(`${kind}: a transfer, an idle stream and a new dial fail within the keepalive timeout; the agent is back after the heal`, async function () {
      const transfer = await connectVia({ uds }, 'alpha', target);
      const total = 64 * 1024 * 1024 * 1024;
      let received = 0;
      const flowing = new Promise<void>((resolve) => {
        transfer.on('data', (chunk: Buffer) => {
          received += chunk.length;
          if (received >= 1024 * 1024) resolve();
        });
      });
      const transferDone = outcome(transfer);
      transfer.write(downloadRequest(total));
      transfer.resume();
      await flowing;
      const idle = await connectVia({ uds }, 'alpha', target);
      const idleDone = outcome(idle);
      idle.write('E'); // echo mode: open and quiet, like a watch with nothing to say
      idle.resume();

      const since = server.mark;
      const heal = await partition(netns, kind);
      let healed = false;
      try {
        const cutAt = Date.now();
        const dial = connectVia({ uds }, 'alpha', target).then(
          (socket) => {
            socket.destroy();
            return { how: 'connected', at: Date.now() };
          },
          (error: unknown) => ({ how: error instanceof ConnectRefused ? `${error.status} ${error.code}` : String(error), at: Date.now() }),
        );
        const [t, i, d] = await Promise.all([transferDone, idleDone, dial]);
        const unregistered = await server.agentUnregistered('alpha', since);
        assert.match(String(unregistered.reason), /keepalive/, 'the hub dropped the link for its silence');
        for (const [what, o] of [['transfer', t], ['idle stream', i], ['dial', d]] as const) {
          assert.ok(o.at - cutAt < FAILURE_BOUND_MS, `${what} ended ${o.at - cutAt} ms after the cut (bound ${FAILURE_BOUND_MS} ms): ${o.how}`);
        }
        assert.ok(received < total, 'the transfer did not complete');
        // A dial over the silent link fails when the link is declared dead, or finds no agent left.
        assert.match(d.how, /^(502 LINK_LOST|503 NO_AGENT)$/);
        await assertServerIdle(server);
        transfer.destroy();
        idle.destroy();

        const healAt = Date.now();
        await heal();
        healed = true;
        await server.agentRegistered('alpha', since);
        const reconnectMs = Date.now() - healAt;
        assert.ok(reconnectMs < RECONNECT_BOUND_MS, `the agent came back ${reconnectMs} ms after the heal (bound ${RECONNECT_BOUND_MS} ms)`);
        const after = await connectVia({ uds }, 'alpha', target);
        after.write(downloadRequest(1024 * 1024));
        assert.equal((await readAll(after)).length, 1024 * 1024);
        await assertServerIdle(server, { agents: ['alpha'] });
        reportFault({
          fault: `partition ${kind} (keepalive timeout ${KEEPALIVE_TIMEOUT_MS} ms)`,
          typedFailureMs: Math.max(t.at, i.at, d.at) - cutAt,
          recoveryMs: reconnectMs,
          lost: 0,
          notes: `transfer ${t.how} after ${t.at - cutAt} ms, idle stream ${i.how} after ${i.at - cutAt} ms, new dial ${d.how} after ${d.at - cutAt} ms; recovery = heal to agent registered`,
        });
      } finally {
        transfer.destroy();
        idle.destroy();
        if (!healed) await heal();
      }
    });
  }
});

describe('faults: partitions during federation propagation (network namespaces)', function () {
  this.timeout(240_000);
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let fed: Federation | null = null;
  let writes: FederatedWrites;

  before(async function () {
    baseline = await resourceBaseline();
    fed = await joinedFederation({ east: [] }, {
      extraServerArgs: ['--member-request-timeout', '2000', ...KEEPALIVE],
      extraAgentArgs: [...KEEPALIVE, '--connect-timeout', String(CONNECT_TIMEOUT_MS)],
    });
    writes = new FederatedWrites(fed, 'part');
    await writes.setup();
    for (let i = 0; i < 3; i++) await writes.createOne();
    await writes.converged('east');
  });

  after(async function () {
    await fed?.stop();
    await assertNoLeakedResources(baseline);
  });

  for (const kind of ['link-down', 'drop-to-member', 'drop-from-member'] as PartitionKind[]) {
    it(`${kind}: the hub keeps acknowledging, marks the cluster not ready within the keepalive timeout, and everything acknowledged reaches the member after the heal`, async function () {
      const f = fed!;
      const since = f.hub.mark;
      const heal = await partition(f.members.east!.network!, kind);
      let healed = false;
      try {
        const cutAt = Date.now();
        for (let i = 0; i < 2; i++) await writes.createOne();
        // The hub drops the silent link at its keepalive timeout; the controller marks the cluster then.
        const unregistered = await f.hub.waitForLog((l) => l.msg === 'agent unregistered' && l.cluster === 'east', { since });
        assert.match(String(unregistered.reason), /keepalive/);
        const notReady = await f.hub.waitForLog((l) => l.msg === 'cluster not ready' && l.cluster === 'east', { since });
        const typedFailureMs = Math.max(Date.parse(String(unregistered.time)), Date.parse(String(notReady.time))) - cutAt;
        assert.ok(typedFailureMs < FAILURE_BOUND_MS, `cluster not ready ${typedFailureMs} ms after the cut (bound ${FAILURE_BOUND_MS} ms)`);
        const healAt = Date.now();
        await heal();
        healed = true;
        await f.hub.agentRegistered('east', since);
        const reconnectMs = Date.now() - healAt;
        assert.ok(reconnectMs < RECONNECT_BOUND_MS, `the agent came back ${reconnectMs} ms after the heal (bound ${RECONNECT_BOUND_MS} ms)`);
        await writes.converged('east');
        const recoveryMs = Date.now() - healAt;
        await writes.assertHubSettled('east');
        reportFault({
          fault: `partition ${kind} during propagation`,
          typedFailureMs,
          recoveryMs,
          lost: 0,
          notes: `typed failure = hub drops the link (keepalive) and marks the cluster not ready (${String(notReady.reason)}); agent back ${reconnectMs} ms after the heal; recovery = heal to all ${writes.acked.size} acknowledged objects Propagated and on the member`,
        });
      } finally {
        if (!healed) await heal();
      }
    });
  }
});
