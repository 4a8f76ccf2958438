// The CONNECT frontend end to end: real proxy-server and cluster-agent processes, real curl.
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import net from 'node:net';
import tls from 'node:tls';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import { createCA, issueClientCert, writeKeyPair } from '../../certs/pki.js';
import { testPki } from '../support/pki.js';
import { scratchDir } from '../support/paths.js';
import { startServer, startAgent, spawnAgent, type ServerProcess, type LoggedProcess } from '../support/processes.js';
import { ConnectRefused, connectVia, curlStatus, readAll, readUntilClosed, startHttpService } from '../support/clients.js';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';
import { freePort } from '../support/ports.js';
import { assertServerIdle, stopAgent } from '../support/server-state.js';

const run = promisify(execFile);

function curlArgs(server: ServerProcess, cluster: string, url: string, user = 'root'): string[] {
  const pki = testPki();
  return [
    '-sS', '--max-time', '20', '-p',
    '-x', `https://${cluster}@127.0.0.1:${server.connectPort}`,
    '--proxy-cacert', pki.ca.cert,
    '--proxy-cert', pki.users[user]!.cert,
    '--proxy-key', pki.users[user]!.key,
    url,
  ];
}

async function expectRefused(promise: Promise<unknown>, status: number, code: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof ConnectRefused, `expected ConnectRefused, got ${String(error)}`);
    assert.equal(error.status, status, error.message);
    assert.equal(error.code, code, error.message);
    return true;
  });
}

describe('CONNECT frontend (processes, curl)', function () {
  let server: ServerProcess;
  let alpha: LoggedProcess;
  let service: Awaited<ReturnType<typeof startHttpService>>;
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  const uds = path.join(scratchDir('connect'), 'connect.sock');

  before(async function () {
    baseline = await resourceBaseline();
    service = await startHttpService('alpha-api');
    // No rejoin window: this hub's restarts are not under test, and an unknown name must be 404 at once.
    server = await startServer({ uds, extraArgs: ['--dial-timeout', '1000', '--agent-rejoin-window', '0'] });
    // Debug level: the agent's per-stream lines are checked against the server's.
    alpha = await startAgent({ cluster: 'alpha', server, allow: [`127.0.0.1:${service.port}`], extraArgs: ['--log-level', 'debug'] });
  });

  after(async function () {
    await stopAgent(server, alpha, 'alpha');
    await assertServerIdle(server);
    await server.kill();
    await service.close();
    await assertNoLeakedResources(baseline);
  });

  it('curl reaches an HTTP service behind the agent (cluster as proxy user name)', async function () {
    const { stdout } = await run('curl', curlArgs(server, 'alpha', `http://127.0.0.1:${service.port}/api/v1`));
    assert.deepEqual(JSON.parse(stdout), { service: 'alpha-api', path: '/api/v1' });
  });

  it('without the embedded federation only system:masters may CONNECT over TLS (said at start); the Unix socket is not asked', async function () {
    assert.ok(server.lines.some((l) => l.level === 40 && /no embedded federation .*system:masters/.test(String(l.msg))), 'a startup warning');
    await expectRefused(connectVia({ tlsPort: server.connectPort, user: 'bob' }, 'alpha', `127.0.0.1:${service.port}`), 403, 'FORBIDDEN');
    const tunnel = await connectVia({ tlsPort: server.connectPort, user: 'root' }, 'alpha', `127.0.0.1:${service.port}`);
    tunnel.destroy();
    (await connectVia({ uds }, 'alpha', `127.0.0.1:${service.port}`)).destroy();
  });

  it('the cluster can be named by host suffix <host>.<cluster>.tunnel', async function () {
    const socket = await connectVia({ uds }, null, `127.0.0.1.alpha.tunnel:${service.port}`);
    socket.end('GET /suffix HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    const response = (await readAll(socket)).toString();
    assert.match(response, /^HTTP\/1.1 200/);
    assert.match(response, /"path":"\/suffix"/);
  });

  it('logs one stream id on both sides of a connection', async function () {
    const since = server.mark;
    const agentSince = alpha.mark;
    const socket = await connectVia({ uds }, 'alpha', `127.0.0.1:${service.port}`);
    socket.end('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await readAll(socket);
    const opened = await server.waitForLog((l) => l.msg === 'stream open', { since });
    assert.match(String(opened.sid), /^[A-Za-z0-9_-]{8}$/);
    const closed = await server.waitForLog((l) => l.msg === 'stream closed' && l.sid === opened.sid, { since });
    assert.ok((closed.received as number) > 0);
    // The agent names the same stream by the same id, with the same target.
    const connected = await alpha.waitForLog((l) => l.msg === 'destination connected' && l.sid === opened.sid, { since: agentSince });
    assert.equal(connected.target, `127.0.0.1:${service.port}`);
    await alpha.waitForLog((l) => l.msg === 'stream closed' && l.sid === opened.sid, { since: agentSince });
  });

  it('answers typed errors: unknown cluster 404, refused destination 403, connection refused 502', async function () {
    await expectRefused(connectVia({ uds }, 'nowhere', `127.0.0.1:${service.port}`), 404, 'UNKNOWN_CLUSTER');
    await expectRefused(connectVia({ uds }, 'alpha', '127.0.0.1:1'), 403, 'POLICY_DENIED');
    await expectRefused(connectVia({ uds }, 'alpha', '10.1.2.3:443'), 403, 'POLICY_DENIED');
    await expectRefused(connectVia({ uds }, 'alpha', 'no-port-here'), 400, 'BAD_TARGET');
    const since = server.mark;
    await expectRefused(connectVia({ uds }, null, `127.0.0.1:${service.port}`), 400, 'BAD_TARGET');
    // A request that names no cluster never reaches the dialer: the frontend itself warns, with why.
    const badTarget = await server.waitForLog((l) => l.msg === 'CONNECT refused: bad target' && l.target === `127.0.0.1:${service.port}`, { since });
    assert.equal(badTarget.level, 40, 'logged at warn');
    assert.match(String(badTarget.reason), /no cluster named/);
    const closedPort = await freePort();
    const strict = await startAgent({ cluster: 'beta', server, allow: [`127.0.0.1:${closedPort}`] });
    try {
      await expectRefused(connectVia({ uds }, 'beta', `127.0.0.1:${closedPort}`), 502, 'CONNECTION_REFUSED');
    } finally {
      await stopAgent(server, strict, 'beta');
    }
    await expectRefused(connectVia({ uds }, 'beta', `127.0.0.1:${closedPort}`), 503, 'NO_AGENT');
    const result = await curlStatus(curlArgs(server, 'nowhere', `http://127.0.0.1:${service.port}/`));
    assert.notEqual(result.exit, 0);
    assert.match(result.stderr, /404/);
  });

  it('a hung agent makes the dial fail with 504 DIAL_TIMEOUT', async function () {
    const hung = await startAgent({ cluster: 'beta', server, allow: ['127.0.0.1:*'], extraArgs: ['--keepalive-timeout', '60000'] });
    try {
      hung.child.kill('SIGSTOP');
      await expectRefused(connectVia({ uds }, 'beta', `127.0.0.1:${service.port}`), 504, 'DIAL_TIMEOUT');
      const state = await server.state();
      assert.equal(state.pendingDials, 0);
      assert.equal(state.streams, 0, 'the timed-out stream is forgotten');
    } finally {
      await stopAgent(server, hung, 'beta', 'SIGKILL');
    }
  });

  it('a client that leaves while its dial is pending cancels the dial (CANCELLED, not a DIAL_TIMEOUT later)', async function () {
    const hung = await startAgent({ cluster: 'beta', server, allow: ['127.0.0.1:*'], extraArgs: ['--keepalive-timeout', '60000'] });
    try {
      hung.child.kill('SIGSTOP');
      const since = server.mark;
      const socket = net.connect(uds);
      await once(socket, 'connect');
      socket.write(`CONNECT 127.0.0.1:${service.port} HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Basic ${Buffer.from('beta:').toString('base64')}\r\n\r\n`);
      // The dial is pending (the stopped agent never answers); bounded wait for the server to say so.
      for (let i = 0; (await server.state()).pendingDials === 0; i++) {
        assert.ok(i < 200, 'the dial never became pending');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      socket.end();
      await once(socket, 'close');
      // This hub's --dial-timeout is 1000 ms: a client gone unnoticed would end as DIAL_TIMEOUT.
      const failed = await server.waitForLog((l) => l.msg === 'dial failed' && l.cluster === 'beta', { since });
      assert.equal(failed.code, 'CANCELLED', String(failed.err));
      assert.equal((await server.state()).pendingDials, 0);
    } finally {
      await stopAgent(server, hung, 'beta', 'SIGKILL');
    }
  });

  it('an agent with cluster A’s certificate can never be reached as cluster B', async function () {
    // The agent below is started "for beta" but holds alpha's certificate: it registers as alpha.
    const since = server.mark;
    const impostor = spawnAgent({ cluster: 'beta', certOf: 'alpha', server, allow: ['127.0.0.1:*'] });
    try {
      const registered = await server.waitForLog((l) => l.msg === 'agent registered' && l.instance === 'agent-beta', { since });
      assert.equal(registered.cluster, 'alpha');
      // beta had agents earlier in this suite, so "not connected" rather than "never seen".
      await expectRefused(connectVia({ uds }, 'beta', `127.0.0.1:${service.port}`), 503, 'NO_AGENT');
    } finally {
      await stopAgent(server, impostor, 'alpha'); // it registered as alpha
    }
  });

  it('a user certificate cannot register as an agent, and an agent certificate cannot use the frontend', async function () {
    const since = server.mark;
    const fake = spawnAgent({ cluster: 'alpha', certOf: 'bob', server });
    await server.waitForLog((l) => l.msg === 'connection refused' && l.listener === 'agent' && l.reason === 'not_an_agent_certificate', { since });
    await fake.kill();
    const pki = testPki();
    const socket = tls.connect({
      host: '127.0.0.1',
      port: server.connectPort,
      ca: fs.readFileSync(pki.ca.cert),
      cert: fs.readFileSync(pki.agents.alpha!.cert),
      key: fs.readFileSync(pki.agents.alpha!.key),
      servername: 'localhost',
    });
    await once(socket, 'secureConnect');
    socket.write(`CONNECT 127.0.0.1:${service.port} HTTP/1.1\r\nProxy-Authorization: Basic ${Buffer.from('alpha:').toString('base64')}\r\n\r\n`);
    const answer = (await readAll(socket)).toString();
    assert.match(answer, /^HTTP\/1.1 403 /);
    assert.match(answer, /Tunnel-Error: FORBIDDEN/);
  });

  it('refuses clients without a valid certificate', async function () {
    const pki = testPki();
    // No client certificate at all.
    const anonymous = await curlStatus(['-sS', '--max-time', '10', '-p', '-x', `https://alpha@127.0.0.1:${server.connectPort}`, '--proxy-cacert', pki.ca.cert, `http://127.0.0.1:${service.port}/`]);
    assert.notEqual(anonymous.exit, 0);
    // A certificate from another CA.
    const rogueCa = createCA({ commonName: 'rogue' });
    const dir = scratchDir('rogue');
    const rogue = writeKeyPair(dir, 'mallory', issueClientCert(rogueCa, { user: 'mallory', groups: ['system:masters'] }));
    const forged = await curlStatus(['-sS', '--max-time', '10', '-p', '-x', `https://alpha@127.0.0.1:${server.connectPort}`, '--proxy-cacert', pki.ca.cert, '--proxy-cert', rogue.cert, '--proxy-key', rogue.key, `http://127.0.0.1:${service.port}/`]);
    assert.notEqual(forged.exit, 0);
    assert.ok(fs.existsSync(rogue.key));
    // And the server still serves.
    const { stdout } = await run('curl', curlArgs(server, 'alpha', `http://127.0.0.1:${service.port}/after`));
    assert.equal(JSON.parse(stdout).path, '/after');
  });

  it('rejects random bytes, oversized headers and malformed requests on every listener and keeps serving', async function () {
    const garbage = randomBytes(4096);
    for (const port of [server.agentPort, server.connectPort, server.adminPort]) {
      const socket = net.connect(port, '127.0.0.1');
      socket.on('error', () => undefined);
      await once(socket, 'connect');
      // Random bytes may look like the start of a long TLS record: end our side so the server
      // decides now rather than at its handshake timeout.
      socket.end(garbage);
      socket.resume(); // read whatever error answer comes, so 'close' can follow 'end'
      await once(socket, 'close');
    }
    const udsSocket = net.connect(uds);
    udsSocket.on('error', () => undefined);
    udsSocket.write(garbage);
    const udsAnswer = (await readUntilClosed(udsSocket)).toString();
    assert.match(udsAnswer, /^HTTP\/1.1 400 /);

    const big = net.connect(uds);
    big.write(`CONNECT 127.0.0.1:${service.port} HTTP/1.1\r\nX-Fill: ${'a'.repeat(64 * 1024)}\r\n\r\n`);
    big.on('error', () => undefined);
    const bigAnswer = (await readUntilClosed(big)).toString();
    assert.match(bigAnswer, /^HTTP\/1.1 431 /);

    const plain = net.connect(uds);
    plain.end('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.match((await readAll(plain)).toString(), /^HTTP\/1.1 405 /);

    const badAuth = connectVia({ uds }, null, `127.0.0.1:${service.port}`);
    await expectRefused(badAuth, 400, 'BAD_TARGET');

    const { stdout } = await run('curl', curlArgs(server, 'alpha', `http://127.0.0.1:${service.port}/still-up`));
    assert.equal(JSON.parse(stdout).path, '/still-up');
    assert.equal(server.child.exitCode, null);
  });
});
