// The child-process leak check (test/support/idle-check.ts) must be able to fail: a stream left
// open through the hub is reported on the hub's graceful stop, and the pure rules tell the
// expected long-lived things (links, the controller's watches, this very request) from leaks.
import { strict as assert } from 'node:assert';
import path from 'node:path';
import { scratchDir } from '../support/paths.js';
import { startAgent, startServer } from '../support/processes.js';
import { connectVia, startHttpService } from '../support/clients.js';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';
import { agentLeaks, assertChildIdle, hubLeaks } from '../support/idle-check.js';
import { stopAgent } from '../support/server-state.js';

const link = { linkId: 1, cluster: 'alpha', tenant: 't', instance: 'agent-alpha', carrier: 'tls' as const, remoteAddress: '127.0.0.1', connectedAt: '', streams: 0, draining: false, rttMs: null };

describe('child-process leak check', function () {
  it('allows a hub its links, this request and the controller watches; reports streams, pending dials and extra sockets', function () {
    const idle = { instance: 'hub', agents: [link], streams: 2, pendingDials: 0, streamsByRequester: { 'federation-controller': 2 }, resources: { TCPSocketWrap: 2 } };
    assert.deepEqual(hubLeaks(idle, { mysqlStore: false }), []);
    assert.deepEqual(hubLeaks({ ...idle, pendingDials: 1, streamsByRequester: { alice: 1 }, resources: { TCPSocketWrap: 4 } }, { mysqlStore: false }), [
      '1 pending dials',
      '1 open streams of requester alice',
      '4 TCP sockets (links + this request: 2)',
    ]);
    assert.deepEqual(hubLeaks({ ...idle, resources: { TCPSocketWrap: 12 } }, { mysqlStore: true }), []);
  });

  it('allows an agent its current link and the streams its hub holds; reports stale links, streams and sockets', function () {
    const current = { current: true, streams: 1, remoteDraining: false, localDraining: false };
    const idle = { instance: 'agent-alpha', links: [current], streams: 1, pendingDials: 0, resources: { TCPSocketWrap: 3 } };
    assert.deepEqual(agentLeaks(idle, 1), []);
    assert.deepEqual(agentLeaks(idle, 0), ['1 streams, the hub has 0 open to it']);
    const stale = { current: false, streams: 0, remoteDraining: true, localDraining: false };
    assert.deepEqual(agentLeaks({ ...idle, links: [current, stale], pendingDials: 2, resources: { TCPSocketWrap: 6 } }, 1), [
      '2 pending destination dials',
      '1 links besides the current one and the replica links (0 streams)',
      '6 TCP sockets (links + streams + this request: 4)',
    ]);
  });

  describe('on real processes', function () {
    let service: Awaited<ReturnType<typeof startHttpService>>;
    let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
    const uds = path.join(scratchDir('idle-check'), 'connect.sock');

    before(async function () {
      baseline = await resourceBaseline();
      service = await startHttpService('idle-check');
    });

    after(async function () {
      await service.close();
      await assertNoLeakedResources(baseline);
    });

    it('a stream left open fails the graceful stop of the hub, which still exits', async function () {
      const server = await startServer({ uds });
      const agent = await startAgent({ cluster: 'alpha', server, allow: [`127.0.0.1:${service.port}`] });
      const forgotten = await connectVia({ uds }, 'alpha', `127.0.0.1:${service.port}`);
      try {
        await assert.rejects(assertChildIdle(server, { settleMs: 300 }), /proxy-server .*still holds.*1 open streams of requester system:unix-socket/s);
        // The agent's stream is one its hub still holds open: not the agent's leak.
        await assertChildIdle(agent, { settleMs: 300 });
        forgotten.destroy();
        await stopAgent(server, agent, 'alpha');
        await server.kill();
      } finally {
        forgotten.destroy();
        await agent.kill('SIGKILL');
        await server.kill('SIGKILL');
      }
    });
  });
});
