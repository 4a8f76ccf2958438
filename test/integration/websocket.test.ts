// The WebSocket carrier, for networks that only let HTTPS out, through a real CONNECT forward
// proxy (tinyproxy) between the agent and the server.
import { strict as assert } from 'node:assert';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { scratchDir } from '../support/paths.js';
import { startServer, startAgent, type ServerProcess, type LoggedProcess } from '../support/processes.js';
import { connectVia, downloadRequest, readAll, sha256, startByteService } from '../support/clients.js';
import { startTinyproxy, type Tinyproxy } from '../support/tinyproxy.js';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';
import { assertServerIdle, stopAgent } from '../support/server-state.js';

describe('WebSocket carrier through tinyproxy (processes)', function () {
  let proxy: Tinyproxy;
  let server: ServerProcess;
  let agent: LoggedProcess;
  let service: Awaited<ReturnType<typeof startByteService>>;
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  const uds = path.join(scratchDir('websocket'), 'connect.sock');

  before(async function () {
    baseline = await resourceBaseline();
    service = await startByteService();
    proxy = await startTinyproxy();
    server = await startServer({ uds });
    agent = await startAgent({
      cluster: 'alpha',
      server,
      carrier: 'ws',
      proxy: `http://127.0.0.1:${proxy.port}`,
      allow: [`127.0.0.1:${service.port}`],
    });
  });

  after(async function () {
    await stopAgent(server, agent, 'alpha');
    await assertServerIdle(server);
    await server.kill();
    await proxy.stop();
    await service.close();
    await assertNoLeakedResources(baseline);
  });

  it('registers over WebSocket, and the link went through the proxy', async function () {
    const state = await server.state();
    assert.equal(state.agents.length, 1);
    assert.equal(state.agents[0]!.carrier, 'ws');
    assert.ok(proxy.connects.includes(`CONNECT 127.0.0.1:${server.agentPort}`), `proxy saw: ${proxy.connects.join(', ')}`);
  });

  it('carries bytes both ways intact, with half-close', async function () {
    const payload = randomBytes(3 * 1024 * 1024 + 7);
    const socket = await connectVia({ uds }, 'alpha', `127.0.0.1:${service.port}`);
    const echoed = readAll(socket);
    socket.write('E');
    socket.end(payload);
    assert.equal(sha256(await echoed), sha256(payload));
  });

  it('carries a large download and many parallel streams', async function () {
    const big = await connectVia({ uds }, 'alpha', `127.0.0.1:${service.port}`);
    big.write(downloadRequest(64 * 1024 * 1024));
    const parallel = Array.from({ length: 50 }, async (_, i) => {
      const socket = await connectVia({ uds }, 'alpha', `127.0.0.1:${service.port}`);
      socket.end(downloadRequest(100_000 + i));
      return (await readAll(socket)).length;
    });
    const sizes = await Promise.all(parallel);
    sizes.forEach((size, i) => assert.equal(size, 100_000 + i));
    assert.equal((await readAll(big)).length, 64 * 1024 * 1024);
  });
});
