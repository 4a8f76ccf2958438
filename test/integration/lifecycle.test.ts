// Paths of the link's life that only real processes show: the agent's /readyz across links,
// certificate reload on the agent, the agent listener's refusals (no HELLO, wrong WebSocket
// path), and a server drained (SIGTERM) with a stream in flight while its agent moves to the
// restarted server.
import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import tls from 'node:tls';
import { once } from 'node:events';
import { issueAgentCert, readKeyPair, writeKeyPair } from '../../certs/pki.js';
import { ALPN_TUNNEL, FrameType, PROTOCOL_VERSION } from '../../wire/frames.js';
import { parseGoAway } from '../../wire/messages.js';
import { FrameReceiver } from '../../wire/receiver.js';
import { encodeJson } from '../../wire/sender.js';
import { scratchDir } from '../support/paths.js';
import { testPki } from '../support/pki.js';
import { spawnAgent, startAgent, startServer, type LoggedProcess, type ServerProcess } from '../support/processes.js';
import { connectVia, downloadRequest, readAll, startByteService } from '../support/clients.js';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';
import { stopAgent } from '../support/server-state.js';

function status(port: number, urlPath: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: urlPath, agent: false }, (res) => {
        res.resume();
        res.once('end', () => resolve(res.statusCode ?? 0));
      })
      .on('error', reject);
  });
}

async function healthPort(agent: LoggedProcess): Promise<number> {
  return (await agent.waitForLog((l) => l.msg === 'cluster-agent started')).healthPort as number;
}

/** A TLS connection to the agent listener with alpha's agent certificate. */
async function agentTls(server: ServerProcess, alpn: string): Promise<tls.TLSSocket> {
  const pki = testPki();
  const socket = tls.connect({
    host: '127.0.0.1',
    port: server.agentPort,
    servername: 'localhost',
    ca: fs.readFileSync(pki.ca.cert),
    cert: fs.readFileSync(pki.agents.alpha!.cert),
    key: fs.readFileSync(pki.agents.alpha!.key),
    ALPNProtocols: [alpn],
  });
  socket.on('error', () => undefined);
  await once(socket, 'secureConnect');
  return socket;
}

describe('link lifecycle (processes)', function () {
  let service: Awaited<ReturnType<typeof startByteService>>;
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  const dir = scratchDir('lifecycle');
  const uds = path.join(dir, 'connect.sock');

  before(async function () {
    baseline = await resourceBaseline();
    service = await startByteService();
  });

  after(async function () {
    await service.close();
    await assertNoLeakedResources(baseline);
  });

  it('agent /readyz: 503 before the first link, 200 with one, 503 while disconnected, 200 again', async function () {
    const probe = await startServer();
    const port = probe.agentPort;
    await probe.kill();
    const agent = spawnAgent({ cluster: 'alpha', server: { agentPort: port } });
    let server: ServerProcess | undefined;
    try {
      const health = await healthPort(agent);
      await agent.waitForLog((l) => l.msg === 'reconnecting');
      assert.equal(await status(health, '/readyz'), 503, 'no link yet');
      assert.equal(await status(health, '/healthz'), 200, 'alive all the same');

      server = await startServer({ agentPort: port });
      await server.agentRegistered('alpha');
      await agent.waitForLog((l) => l.msg === 'link established');
      assert.equal(await status(health, '/readyz'), 200);

      const since = agent.mark;
      await server.kill();
      await agent.waitForLog((l) => l.msg === 'reconnecting', { since });
      assert.equal(await status(health, '/readyz'), 503, 'the server went away');

      const linked = agent.mark;
      server = await startServer({ agentPort: port });
      await agent.waitForLog((l) => l.msg === 'link established', { since: linked });
      assert.equal(await status(health, '/readyz'), 200);
      await stopAgent(server, agent, 'alpha');
    } finally {
      await agent.kill('SIGKILL');
      await server?.kill();
    }
  });

  it('agent SIGHUP: the open link stays, the next link presents the new certificate', async function () {
    const pki = testPki();
    const ca = readKeyPair(path.dirname(pki.ca.cert), 'ca');
    const files = path.join(dir, 'agent-cert');
    fs.mkdirSync(files, { recursive: true });
    const first = writeKeyPair(files, 'agent', issueAgentCert(ca, { cluster: 'alpha', tenant: 'team-a' }));
    let server = await startServer();
    const port = server.agentPort;
    const agent = await startAgent({ cluster: 'alpha', server, extraArgs: ['--cert', first.cert, '--key', first.key] });
    try {
      const linkBefore = (await server.state()).agents[0]!.linkId;
      // Same files, another identity: which one registers next tells which certificate was used.
      writeKeyPair(files, 'agent', issueAgentCert(ca, { cluster: 'beta', tenant: 'team-b' }));
      const since = agent.mark;
      agent.signal('SIGHUP');
      await agent.waitForLog((l) => l.msg === 'certificates reloaded', { since });
      const state = await server.state();
      assert.deepEqual(state.agents.map((a) => [a.cluster, a.linkId]), [['alpha', linkBefore]], 'the open link survived the reload');
      assert.equal(agent.lines.slice(since).some((l) => l.msg === 'link closed'), false);

      await server.kill();
      server = await startServer({ agentPort: port });
      const registered = await server.agentRegistered('beta');
      assert.equal(registered.tenant, 'team-b', 'the new link came with the reloaded certificate');
      assert.deepEqual((await server.state()).agents.map((a) => a.cluster), ['beta']);
      await stopAgent(server, agent, 'beta');
    } finally {
      await agent.kill('SIGKILL');
      await server.kill();
    }
  });

  it('agent listener: no HELLO is closed after --handshake-timeout (counted), a wrong protocol version gets a GOAWAY saying so, a wrong WebSocket path gets 404', async function () {
    const server = await startServer({ extraArgs: ['--handshake-timeout', '500'] });
    try {
      const silent = await agentTls(server, ALPN_TUNNEL);
      silent.resume(); // read to the end, so 'close' follows the server's close
      const closed = once(silent, 'close');
      await server.waitForLog((l) => l.msg === 'agent sent no HELLO in time');
      await closed;
      assert.match(await server.metrics(), /fedtunnel_agent_links_total\{result="handshake_timeout"\} 1/);

      const future = await agentTls(server, ALPN_TUNNEL);
      const goAways: string[] = [];
      const receiver = new FrameReceiver({
        onControl: (type, _id, payload) => void (type === FrameType.GOAWAY && goAways.push(parseGoAway(payload).reason)),
        onData: () => undefined,
      });
      future.on('data', (chunk: Buffer) => receiver.feed(chunk));
      future.write(encodeJson(FrameType.HELLO, 0, { version: PROTOCOL_VERSION + 1, instance: 'from-the-future', window: 65536 }));
      await once(future, 'close');
      assert.deepEqual(goAways, [`protocol version ${PROTOCOL_VERSION + 1} not supported (want ${PROTOCOL_VERSION})`]);
      assert.match(await server.metrics(), /fedtunnel_agent_links_total\{result="version_mismatch"\} 1/);
      await server.waitForLog((l) => l.msg === 'refused agent link: protocol version mismatch');

      const ws = await agentTls(server, 'http/1.1');
      ws.end(
        'GET /not-the-tunnel HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
          'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
      );
      const answer = (await readAll(ws)).toString();
      assert.match(answer, /^HTTP\/1.1 404 /);
      assert.deepEqual((await server.state()).agents, [], 'neither became a link');
    } finally {
      await server.kill();
    }
  });

  it('server SIGTERM with a stream in flight: the stream finishes while the agent moves to the restarted server', async function () {
    const old = await startServer({ uds, extraArgs: ['--drain-timeout', '60000'] });
    const port = old.agentPort;
    const agent = await startAgent({ cluster: 'alpha', server: old, allow: [`127.0.0.1:${service.port}`] });
    let next: ServerProcess | undefined;
    try {
      const socket = await connectVia({ uds }, 'alpha', `127.0.0.1:${service.port}`);
      const size = 32 * 1024 * 1024;
      socket.write(downloadRequest(size));
      socket.pause();
      const since = agent.mark;
      old.signal('SIGTERM'); // not kill(): the stream is meant to be in flight
      await agent.waitForLog((l) => l.msg === 'server going away; its streams may finish', { since });
      // The draining server closed its agent listener: a new one takes the port, and the agent's
      // fresh link (opened on GOAWAY) lands there while the old link still carries the stream.
      next = await startServer({ uds: path.join(dir, 'next.sock'), agentPort: port });
      await next.agentRegistered('alpha');
      assert.equal(old.running, true, 'the old server still drains');
      socket.resume();
      assert.equal((await readAll(socket)).length, size, 'the stream in flight finished whole');
      assert.equal((await old.exited).code, 0);
      const fresh = await connectVia({ uds: path.join(dir, 'next.sock') }, 'alpha', `127.0.0.1:${service.port}`);
      fresh.write(downloadRequest(1024));
      assert.equal((await readAll(fresh)).length, 1024);
      await stopAgent(next, agent, 'alpha');
    } finally {
      await agent.kill('SIGKILL');
      await old.kill('SIGKILL');
      await next?.kill();
    }
  });
});
