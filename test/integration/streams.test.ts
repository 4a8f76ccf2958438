// Many streams on one agent link: correctness under concurrency and independence of streams.
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { scratchDir } from '../support/paths.js';
import { startServer, startAgent, type ServerProcess, type LoggedProcess } from '../support/processes.js';
import { connectVia, downloadRequest, readAll, sha256, startByteService } from '../support/clients.js';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';
import { assertServerIdle, stopAgent } from '../support/server-state.js';

/** Sends `payload` through the echo service and checks that exactly the same bytes come back. */
async function echoRoundTrip(uds: string, port: number, payload: Buffer): Promise<void> {
  const socket = await connectVia({ uds }, 'alpha', `127.0.0.1:${port}`);
  const received = readAll(socket);
  socket.write('E');
  socket.end(payload); // half-close: the echo service answers everything, then ends
  const echoed = await received;
  assert.equal(echoed.length, payload.length);
  assert.equal(sha256(echoed), sha256(payload));
}

describe('streams on one agent link (processes)', function () {
  let server: ServerProcess;
  let agent: LoggedProcess;
  let service: Awaited<ReturnType<typeof startByteService>>;
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  const uds = path.join(scratchDir('streams'), 'connect.sock');

  before(async function () {
    baseline = await resourceBaseline();
    service = await startByteService();
    server = await startServer({ uds, extraArgs: ['--max-pending-dials', '2000'] });
    agent = await startAgent({ cluster: 'alpha', server, allow: [`127.0.0.1:${service.port}`] });
  });

  after(async function () {
    // Checked while the link is still up: closing it would forget the streams anyway.
    await assertServerIdle(server, { agents: ['alpha'] });
    await stopAgent(server, agent, 'alpha');
    await assertServerIdle(server);
    await server.kill();
    await service.close();
    await assertNoLeakedResources(baseline);
  });

  it('1 000 concurrent tunneled connections carry the right bytes both ways', async function () {
    this.timeout(120_000);
    const payloads = Array.from({ length: 1000 }, (_, i) => randomBytes(16 * 1024 + i));
    await Promise.all(payloads.map((payload) => echoRoundTrip(uds, service.port, payload)));
  });

  it('a stalled reader does not block another stream on the same link, and its source is held to the window (its effect on throughput: bench hol_ratio)', async function () {
    this.timeout(120_000);
    // Stream A asks for 1 GiB and never reads (connectVia leaves it paused).
    const sentBefore = service.bytesSent();
    const stalled = await connectVia({ uds }, 'alpha', `127.0.0.1:${service.port}`);
    stalled.write(downloadRequest(1024 * 1024 * 1024));
    // Stream B downloads 128 MiB on the same link, completely.
    const size = 128 * 1024 * 1024;
    const other = await connectVia({ uds }, 'alpha', `127.0.0.1:${service.port}`);
    other.write(downloadRequest(size));
    const data = await readAll(other);
    assert.equal(data.length, size);
    // Meanwhile A's source could only push its 4 MiB window plus the kernel socket buffers on
    // the way, not anything like the 128 MiB that B moved.
    const sentForStalled = service.bytesSent() - sentBefore - size;
    assert.ok(sentForStalled < 24 * 1024 * 1024, `the stalled stream's source sent ${sentForStalled} bytes`);
    const state = await server.state();
    assert.equal(state.agents.length, 1);
    assert.equal(state.streams, 1, 'A is still open, B is gone');
    stalled.destroy();
  });

  it('half-close: the client ends its side and still receives everything', async function () {
    const socket = await connectVia({ uds }, 'alpha', `127.0.0.1:${service.port}`);
    const size = 8 * 1024 * 1024;
    socket.end(downloadRequest(size)); // our write side is closed before any byte comes back
    const data = await readAll(socket);
    assert.equal(data.length, size);
  });
});
