// Limits answer clearly: pending dials, streams per agent, and the metrics that count them.
import { strict as assert } from 'node:assert';
import path from 'node:path';
import { scratchDir } from '../support/paths.js';
import { startServer, startAgent } from '../support/processes.js';
import { ConnectRefused, connectVia, readAll, startHttpService } from '../support/clients.js';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';

async function refusal(promise: Promise<unknown>): Promise<ConnectRefused> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ConnectRefused) return error;
    throw error;
  }
  throw new Error('expected the CONNECT to be refused');
}

describe('limits (processes)', function () {
  let service: Awaited<ReturnType<typeof startHttpService>>;
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  const uds = path.join(scratchDir('limits'), 'connect.sock');

  before(async function () {
    baseline = await resourceBaseline();
    service = await startHttpService('limits');
  });

  after(async function () {
    await service.close();
    await assertNoLeakedResources(baseline);
  });

  it('answers 503 TOO_MANY_PENDING beyond --max-pending-dials, and counts it', async function () {
    const server = await startServer({ uds, extraArgs: ['--max-pending-dials', '1', '--dial-timeout', '3000'] });
    const agent = await startAgent({ cluster: 'alpha', server, allow: ['127.0.0.1:*'], extraArgs: ['--keepalive-timeout', '60000'] });
    try {
      agent.child.kill('SIGSTOP'); // the agent stops answering: the first dial stays pending
      const pending = connectVia({ uds }, 'alpha', `127.0.0.1:${service.port}`).catch((error: unknown) => error);
      // The server logs nothing when a dial starts: wait for its state to show it (bounded).
      for (let i = 0; i < 500 && (await server.state()).pendingDials === 0; i++);
      assert.equal((await server.state()).pendingDials, 1);
      const refused = await refusal(connectVia({ uds }, 'alpha', `127.0.0.1:${service.port}`));
      assert.equal(refused.status, 503);
      assert.equal(refused.code, 'TOO_MANY_PENDING');
      agent.child.kill('SIGCONT');
      const first = await pending;
      if (!(first instanceof Error)) (first as { destroy(): void }).destroy();
      const metrics = await server.metrics();
      assert.match(metrics, /fedtunnel_dials_total\{cluster="alpha",result="TOO_MANY_PENDING"\} 1/);
    } finally {
      await agent.kill();
      await server.kill();
    }
  });

  it('answers 503 STREAM_LIMIT beyond --max-streams-per-agent, and serves again once a stream closes', async function () {
    const server = await startServer({ uds, extraArgs: ['--max-streams-per-agent', '1'] });
    const agent = await startAgent({ cluster: 'alpha', server, allow: [`127.0.0.1:${service.port}`] });
    try {
      const held = await connectVia({ uds }, 'alpha', `127.0.0.1:${service.port}`);
      const refused = await refusal(connectVia({ uds }, 'alpha', `127.0.0.1:${service.port}`));
      assert.equal(refused.status, 503);
      assert.equal(refused.code, 'STREAM_LIMIT');
      const since = server.mark;
      held.end('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      await readAll(held);
      await server.waitForLog((l) => l.msg === 'stream closed', { since });
      const again = await connectVia({ uds }, 'alpha', `127.0.0.1:${service.port}`);
      again.end('GET /again HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      assert.match((await readAll(again)).toString(), /"path":"\/again"/);
      const metrics = await server.metrics();
      assert.match(metrics, /fedtunnel_dials_total\{cluster="alpha",result="STREAM_LIMIT"\} 1/);
      assert.match(metrics, /fedtunnel_dials_total\{cluster="alpha",result="ok"\} 2/);
      assert.match(metrics, /fedtunnel_agents\{cluster="alpha",draining="false"\} 1/);
    } finally {
      await agent.kill();
      await server.kill();
    }
  });
});
