// The HTTP/2 carrier with real processes: agent alpha links to the hub directly over HTTP/2, agent
// beta through an HTTP/2 reverse proxy that terminates its TLS and forwards its certificate to a
// hub that trusts that proxy (--agent-front-proxy). Bytes must arrive byte-exact both ways, in
// bulk, on many streams at once, and a killed agent or hub must show as a cut, never as a short
// but clean stream.
import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { scratchDir } from '../support/paths.js';
import { testPki } from '../support/pki.js';
import { startServer, startAgent, type ServerProcess, type LoggedProcess } from '../support/processes.js';
import { connectVia, downloadRequest, readAll, readUntilClosed, sha256, startByteService } from '../support/clients.js';
import { startH2ReverseProxy, type H2ReverseProxy } from '../support/h2-reverse-proxy.js';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';
import { assertServerIdle, stopAgent } from '../support/server-state.js';

describe('HTTP/2 carrier, direct and through an HTTP/2 reverse proxy (processes)', function () {
  let server: ServerProcess;
  let proxy: H2ReverseProxy;
  let direct: LoggedProcess;
  let proxied: LoggedProcess;
  let service: Awaited<ReturnType<typeof startByteService>>;
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  const uds = path.join(scratchDir('http2-carrier'), 'connect.sock');
  const serverArgs = ['--agent-front-proxy', 'edge-proxy'];

  before(async function () {
    baseline = await resourceBaseline();
    const pki = testPki();
    service = await startByteService();
    server = await startServer({ uds, extraArgs: serverArgs });
    proxy = await startH2ReverseProxy({
      upstreamPort: server.agentPort,
      ca: fs.readFileSync(pki.ca.cert),
      serverCert: { cert: fs.readFileSync(pki.server.cert), key: fs.readFileSync(pki.server.key) },
      clientCert: { cert: fs.readFileSync(pki.users['edge-proxy']!.cert), key: fs.readFileSync(pki.users['edge-proxy']!.key) },
      forwardAgentCertificate: true,
    });
    const allow = [`127.0.0.1:${service.port}`];
    direct = await startAgent({ cluster: 'alpha', server, carrier: 'http2', allow });
    proxied = await startAgent({ cluster: 'beta', server, carrier: 'http2', allow, extraArgs: ['--server', `127.0.0.1:${proxy.port}`, '--server-name', 'localhost'] });
  });

  after(async function () {
    if (direct?.running) await stopAgent(server, direct, 'alpha');
    if (proxied?.running) await proxied.kill();
    await server?.kill();
    await proxy?.close();
    await service?.close();
    await assertNoLeakedResources(baseline);
  });

  const target = (): string => `127.0.0.1:${service.port}`;
  const open = (cluster: string): Promise<Duplex> => connectVia({ uds }, cluster, target());

  async function echo(cluster: string, payload: Buffer): Promise<Buffer> {
    const socket = await open(cluster);
    const echoed = readAll(socket);
    socket.write('E');
    socket.end(payload);
    return echoed;
  }

  it('registers both agents as carrier http2; beta came through the reverse proxy with its own identity', async function () {
    const state = await server.state();
    assert.deepEqual(state.agents.map((a) => [a.cluster, a.carrier]).sort(), [['alpha', 'http2'], ['beta', 'http2']]);
    assert.deepEqual(proxy.requests, ['POST /v1/tunnel']);
  });

  for (const cluster of ['alpha', 'beta']) {
    it(`${cluster}: 24 MB echoed byte-exact (both directions at once), with half-close`, async function () {
      const payload = randomBytes(24 * 1024 * 1024 + 13);
      assert.equal(sha256(await echo(cluster, payload)), sha256(payload));
    });

    it(`${cluster}: 40 echoes in a row of odd sizes each come back whole (no truncation at the half-close)`, async function () {
      for (let i = 0; i < 40; i++) {
        const payload = randomBytes(1 + ((i * 104_729) % 700_000));
        const echoed = await echo(cluster, payload);
        assert.equal(echoed.length, payload.length, `echo ${i}: ${echoed.length} of ${payload.length} bytes`);
        assert.equal(sha256(echoed), sha256(payload), `echo ${i}`);
      }
    });

    it(`${cluster}: a 64 MB download alongside 50 parallel streams and 10 parallel echoes`, async function () {
      const big = await open(cluster);
      big.write(downloadRequest(64 * 1024 * 1024));
      const downloads = Array.from({ length: 50 }, async (_, i) => {
        const socket = await open(cluster);
        socket.end(downloadRequest(100_000 + i));
        return (await readAll(socket)).length;
      });
      const echoes = Array.from({ length: 10 }, async (_, i) => {
        const payload = randomBytes(300_000 + i);
        return sha256(await echo(cluster, payload)) === sha256(payload);
      });
      (await Promise.all(downloads)).forEach((size, i) => assert.equal(size, 100_000 + i));
      assert.deepEqual(await Promise.all(echoes), Array(10).fill(true));
      assert.equal((await readAll(big)).length, 64 * 1024 * 1024);
      await assertServerIdle(server, { agents: ['alpha', 'beta'] });
    });
  }

  it('the direct agent killed mid-transfer: the download is cut short with a reset, not ended as if complete', async function () {
    const total = 1024 * 1024 * 1024;
    // Over the TLS frontend: a Unix socket has no reset to show, only an end.
    const socket = await connectVia({ tlsPort: server.connectPort }, 'alpha', target());
    socket.write(downloadRequest(total));
    const received = readUntilClosed(socket);
    await new Promise<void>((resolve) => socket.once('data', () => resolve()));
    let ended = false;
    socket.once('end', () => (ended = true));
    const since = server.mark;
    await direct.kill('SIGKILL');
    await server.agentUnregistered('alpha', since);
    const bytes = (await received).length;
    assert.ok(bytes > 0 && bytes < total, `received ${bytes} of ${total}`);
    assert.equal(ended, false, 'a cut stream must not end cleanly');
    await assertServerIdle(server, { agents: ['beta'] });
  });

  it('the hub killed mid-transfer: the proxied agent sees its link close at once (the proxy passes the cut on), and links again', async function () {
    const socket = await open('beta');
    socket.write(downloadRequest(1024 * 1024 * 1024));
    const cut = readUntilClosed(socket);
    await new Promise<void>((resolve) => socket.once('data', () => resolve()));
    const since = proxied.mark;
    const killedAt = Date.now();
    await server.kill('SIGKILL');
    await cut;
    await proxied.waitForLog((l) => l.msg === 'link closed', { since });
    // Well inside the keepalive timeout (30 s): the cut travelled through the proxy.
    assert.ok(Date.now() - killedAt < 10_000, `link closed ${Date.now() - killedAt} ms after the kill`);
    server = await startServer({ uds, agentPort: server.agentPort, extraArgs: serverArgs });
    await server.agentRegistered('beta');
    const payload = randomBytes(2 * 1024 * 1024);
    assert.equal(sha256(await echo('beta', payload)), sha256(payload));
  });
});
