// Certificate revocation end to end: a proxy-server started with --revoked, real agents on both
// carriers, curl and raw TLS clients on the CONNECT frontend, raw HTTPS on the embedded federation
// API server; the list changes on disk and the hub re-reads it on SIGHUP.
import { strict as assert } from 'node:assert';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { issueAgentCert, readKeyPair, writeKeyPair, type KeyPairPaths } from '../../certs/pki.js';
import { formatRevocationEntry } from '../../certs/revocation.js';
import { ConnectRefused, connectVia, curlStatus, startByteService, startHttpService } from '../support/clients.js';
import { SERVER_BIN, scratchDir } from '../support/paths.js';
import { testPki } from '../support/pki.js';
import { spawnAgent, spawnNode, startServer, type LoggedProcess, type ServerProcess } from '../support/processes.js';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';
import { assertServerIdle, stopAgent } from '../support/server-state.js';
import { metric } from '../support/metrics.js';
import { adminKubeconfig, grantProxy } from '../support/reach.js';


function serialOf(certFile: string): string {
  return new X509Certificate(fs.readFileSync(certFile)).serialNumber;
}

/** GET on the federation API server with a user's certificate: status and parsed body. */
function federationGet(port: number, user: string, urlPath: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const pki = testPki();
  return new Promise((resolve, reject) => {
    https
      .get(
        {
          host: '127.0.0.1',
          port,
          path: urlPath,
          servername: 'localhost',
          ca: fs.readFileSync(pki.ca.cert),
          cert: fs.readFileSync(pki.users[user]!.cert),
          key: fs.readFileSync(pki.users[user]!.key),
          agent: false,
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }));
        },
      )
      .on('error', reject);
  });
}

async function curlThroughHub(server: ServerProcess, user: string, url: string): Promise<{ exit: number; stdout: string; stderr: string }> {
  const pki = testPki();
  const args = ['-sS', '--max-time', '20', '-p', '-x', `https://alpha@127.0.0.1:${server.connectPort}`, '--proxy-cacert', pki.ca.cert, '--proxy-cert', pki.users[user]!.cert, '--proxy-key', pki.users[user]!.key, url];
  return curlStatus(args);
}

describe('certificate revocation (processes)', function () {
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let server: ServerProcess;
  let federationPort: number;
  let http: Awaited<ReturnType<typeof startHttpService>>;
  let bytes: Awaited<ReturnType<typeof startByteService>>;
  /** The shared test certificate of cluster alpha: revoked while linked, later let back in. */
  let first: LoggedProcess;
  /** A second agent of alpha with a certificate of its own: never revoked. */
  let second: LoggedProcess;
  let secondCert: KeyPairPaths;
  let listFile: string;
  const pki = testPki();
  const revoked = { beta: '', bob: '', alpha: '' };

  function writeList(...serials: string[]): void {
    fs.writeFileSync(listFile, `# test list\n${serials.map((serial) => formatRevocationEntry(serial, 'test')).join('\n')}\n`);
  }

  async function sighup(expect: 'revocation list reloaded' | 'revocation list reload failed; keeping the old one') {
    const since = server.mark;
    server.child.kill('SIGHUP');
    return server.waitForLog((l) => l.msg === expect, { since });
  }

  before(async function () {
    baseline = await resourceBaseline();
    const dir = scratchDir('revocation');
    listFile = path.join(dir, 'revoked.txt');
    const ca = readKeyPair(path.dirname(pki.ca.cert), 'ca');
    secondCert = writeKeyPair(dir, 'agent-alpha-2', issueAgentCert(ca, { cluster: 'alpha', tenant: 'team-a' }));
    revoked.beta = serialOf(pki.agents.beta!.cert);
    revoked.bob = serialOf(pki.users.bob!.cert);
    revoked.alpha = serialOf(pki.agents.alpha!.cert);
    writeList(revoked.beta);
    http = await startHttpService('inside-alpha');
    bytes = await startByteService();
    const store = path.join(dir, 'federation.db');
    for (const file of fs.readdirSync(dir).filter((name) => name.startsWith('federation.db'))) fs.rmSync(path.join(dir, file));
    server = await startServer({
      extraArgs: ['--revoked', listFile, '--federation-listen', '127.0.0.1:0', '--federation-store', `sqlite://${store}`, '--federation-controller', 'off'],
    });
    federationPort = server.lines.find((l) => l.msg === 'proxy-server ready')!.federationPort as number;
    // bob and alice CONNECT to alpha (bob until revoked): RBAC must let them.
    await grantProxy(adminKubeconfig(federationPort), 'bob', 'alpha');
    await grantProxy(adminKubeconfig(federationPort), 'alice', 'alpha');
    const allow = ['--allow', `127.0.0.1:${http.port}`, '--allow', `127.0.0.1:${bytes.port}`];
    let since = server.mark;
    first = spawnAgent({ cluster: 'alpha', server, extraArgs: allow });
    await server.agentRegistered('alpha', since);
    since = server.mark;
    second = spawnAgent({ cluster: 'alpha', server, extraArgs: [...allow, '--cert', secondCert.cert, '--key', secondCert.key, '--instance', 'agent-alpha-2'] });
    await server.agentRegistered('alpha', since);
  });

  after(async function () {
    if (first?.running) await stopAgent(server, first, 'alpha');
    if (second?.running) await stopAgent(server, second, 'alpha');
    if (server) {
      await assertServerIdle(server);
      await server.kill();
    }
    await http?.close();
    await bytes?.close();
    await assertNoLeakedResources(baseline);
  });

  it('refuses a revoked agent on the raw TLS and the WebSocket carrier; the agent logs CERTIFICATE_REVOKED and keeps backing off', async function () {
    for (const carrier of ['tls', 'ws'] as const) {
      const since = server.mark;
      const agent = spawnAgent({ cluster: 'beta', server, carrier });
      try {
        // One warn line like the listener's other refusals (listener-guard.ts), with the serial.
        const refusal = await server.waitForLog((l) => l.msg === 'connection refused' && l.reason === 'revoked' && l.cluster === 'beta', { since });
        assert.equal(refusal.listener, 'agent');
        assert.equal(refusal.carrier, carrier);
        assert.equal(refusal.serial, revoked.beta.toLowerCase());
        assert.equal(refusal.level, 40, 'logged at warn');
        // What the agent's operator sees: the typed reason, on every attempt, with growing attempt numbers.
        const seen = await agent.waitForLog((l) => l.msg === 'link attempt failed' && l.attempt === 1);
        assert.equal(seen.code, 'CERTIFICATE_REVOKED');
        assert.match(String(seen.err), /server refused the link \(CERTIFICATE_REVOKED\): agent certificate serial [0-9a-f]+ is revoked/);
        assert.equal(agent.lines.some((l) => l.msg === 'link established'), false);
      } finally {
        await agent.kill();
      }
      assert.deepEqual((await server.state()).agents.map((a) => a.cluster), ['alpha', 'alpha'], 'the revoked agent never registered');
    }
    const metrics = await server.metrics();
    assert.ok(metric(metrics, 'fedtunnel_revoked_refusals_total{listener="agent_tls"}') >= 2, metrics);
    assert.ok(metric(metrics, 'fedtunnel_revoked_refusals_total{listener="agent_ws"}') >= 2, metrics);
    assert.ok(metric(metrics, 'fedtunnel_agent_links_total{result="revoked"}') >= 4, metrics);
    assert.ok(metric(metrics, 'fedtunnel_listener_refusals_total{listener="agent",reason="revoked"}') >= 4, metrics);
    assert.equal(metric(metrics, 'fedtunnel_revocation_list_entries'), 1);
  });

  it('revoking a user and sending SIGHUP closes their open CONNECT tunnel; then CONNECT answers 403 and the federation API a 403 Status', async function () {
    const tunnel: Duplex = await connectVia({ tlsPort: server.connectPort, user: 'bob' }, 'alpha', `127.0.0.1:${bytes.port}`);
    tunnel.on('error', () => undefined);
    tunnel.write('E');
    tunnel.write('ping');
    tunnel.resume();
    // The hub destroys the client socket: the client may see a reset, so wait for 'close' (events.once would reject on 'error').
    const closed = new Promise((resolve) => tunnel.once('close', resolve));
    assert.equal((await federationGet(federationPort, 'bob', '/api/v1')).status, 200, 'bob may read (discovery) before the revocation');

    writeList(revoked.beta, revoked.bob);
    const since = server.mark;
    const reloaded = await sighup('revocation list reloaded');
    assert.equal(reloaded.entries, 2);
    assert.equal(reloaded.closed, 1);
    await closed;
    const closedLine = await server.waitForLog((l) => l.msg === 'closed: certificate revoked', { since });
    assert.equal(closedLine.kind, 'connect_tunnel');
    assert.equal(closedLine.user, 'bob');

    // curl sees the refusal of its CONNECT; the raw client sees the typed code.
    const curl = await curlThroughHub(server, 'bob', `http://127.0.0.1:${http.port}/`);
    assert.notEqual(curl.exit, 0);
    assert.match(curl.stderr, /CONNECT tunnel failed, response 403/);
    await assert.rejects(connectVia({ tlsPort: server.connectPort, user: 'bob' }, 'alpha', `127.0.0.1:${http.port}`), (error: unknown) => {
      assert.ok(error instanceof ConnectRefused, String(error));
      assert.equal(error.status, 403);
      assert.equal(error.code, 'CERTIFICATE_REVOKED');
      assert.match(error.body, /client certificate serial [0-9A-Fa-f]+ is revoked/);
      return true;
    });
    const federation = await federationGet(federationPort, 'bob', '/api/v1');
    assert.equal(federation.status, 403);
    assert.equal(federation.body.kind, 'Status');
    assert.equal(federation.body.reason, 'Forbidden');
    assert.match(String(federation.body.message), /client certificate serial [0-9a-f]+ is revoked/);
    const federationLog = await server.waitForLog((l) => l.msg === 'connection refused' && l.reason === 'revoked' && l.listener === 'federation', { since });
    assert.equal(federationLog.user, 'bob');
    assert.equal(federationLog.serial, revoked.bob.toLowerCase());
    const connectLog = await server.waitForLog((l) => l.msg === 'connection refused' && l.reason === 'revoked' && l.listener === 'connect_tls', { since });
    assert.equal(connectLog.user, 'bob');

    // Alice is untouched on both.
    assert.equal(JSON.parse((await curlThroughHub(server, 'alice', `http://127.0.0.1:${http.port}/alice`)).stdout).path, '/alice');
    assert.equal((await federationGet(federationPort, 'alice', '/api/v1')).status, 200);
    const metrics = await server.metrics();
    assert.equal(metric(metrics, 'fedtunnel_revoked_closed_total{kind="connect_tunnel"}'), 1);
    assert.ok(metric(metrics, 'fedtunnel_revoked_refusals_total{listener="connect_tls"}') >= 2, metrics);
    assert.ok(metric(metrics, 'fedtunnel_revoked_refusals_total{listener="federation"}') >= 1, metrics);
    // The embedded federation's requests are on the hub's admin /metrics (not on its own listener):
    // alice's two reads, bob's refused one.
    assert.equal((await federationGet(federationPort, 'alice', '/metrics')).status, 404);
    assert.ok(metric(metrics, 'fedtunnel_apiserver_requests_total{verb="get",group="",resource="discovery",code="200"}') >= 2, metrics);
    assert.ok(metric(metrics, 'fedtunnel_apiserver_requests_total{verb="get",group="",resource="discovery",code="403"}') >= 1, metrics);
  });

  it('revoking a linked agent and sending SIGHUP closes its link at once and refuses its reconnects; the other agent of the cluster keeps serving', async function () {
    const agentMark = first.mark;
    const since = server.mark;
    writeList(revoked.beta, revoked.bob, revoked.alpha);
    const started = Date.now();
    const reloaded = await sighup('revocation list reloaded');
    assert.equal(reloaded.closed, 1);
    const closedLine = await server.waitForLog((l) => l.msg === 'closed: certificate revoked', { since });
    assert.equal(closedLine.kind, 'agent_link');
    assert.equal(closedLine.serial, revoked.alpha.toLowerCase());
    await server.agentUnregistered('alpha', since);
    // "At once": well inside the keepalive timeout (30 s) that would otherwise notice a dead link.
    assert.ok(Date.now() - started < 10_000, `link closed after ${Date.now() - started} ms`);

    const told = await first.waitForLog((l) => l.msg === 'server closed the link', { since: agentMark });
    assert.equal(told.code, 'CERTIFICATE_REVOKED');
    await first.waitForLog((l) => l.msg === 'link attempt failed' && l.code === 'CERTIFICATE_REVOKED' && (l.attempt as number) >= 1, { since: agentMark });

    const state = await server.state();
    assert.deepEqual(state.agents.map((a) => a.cluster), ['alpha'], 'only the unrevoked agent is left');
    assert.equal(second.lines.some((l) => l.msg === 'link closed'), false, 'the second agent kept its link');
    const { stdout } = await curlThroughHub(server, 'alice', `http://127.0.0.1:${http.port}/still-served`);
    assert.equal(JSON.parse(stdout).path, '/still-served');
    assert.equal(metric(await server.metrics(), 'fedtunnel_revoked_closed_total{kind="agent_link"}'), 1);
  });

  it('a list that does not load on SIGHUP keeps the old one, which still refuses', async function () {
    fs.writeFileSync(listFile, `${revoked.alpha}\nthis is not a serial\n`);
    const failed = await sighup('revocation list reload failed; keeping the old one');
    assert.equal(failed.level, 50, 'logged as an error');
    assert.match(String(failed.err), /revoked\.txt line 2: "this" is not a serial number/);
    assert.equal(failed.entries, 3);
    await assert.rejects(connectVia({ tlsPort: server.connectPort, user: 'bob' }, 'alpha', `127.0.0.1:${http.port}`), (error: unknown) => error instanceof ConnectRefused && error.code === 'CERTIFICATE_REVOKED');
    const agentMark = first.mark;
    await first.waitForLog((l) => l.msg === 'link attempt failed' && l.code === 'CERTIFICATE_REVOKED', { since: agentMark });
    assert.equal(metric(await server.metrics(), 'fedtunnel_revocation_list_entries'), 3);
  });

  it('a hub whose --revoked list does not load does not start: exit 1 naming the file and line', async function () {
    const bad = path.join(scratchDir('revocation'), 'bad-revoked.txt');
    fs.writeFileSync(bad, `${revoked.alpha}\n# ok so far\n12:zz\n`);
    const hub = spawnNode('proxy-server', SERVER_BIN, ['--ca', pki.ca.cert, '--cert', pki.server.cert, '--key', pki.server.key, '--agent-listen', '127.0.0.1:0', '--connect-listen', 'off', '--admin-listen', 'off', '--revoked', bad]);
    const status = await hub.exited;
    assert.equal(status.code, 1);
    const fatal = hub.lines.find((l) => l.msg === 'proxy-server failed to start');
    assert.ok(fatal, JSON.stringify(hub.lines));
    assert.match(String(fatal.err), /bad-revoked\.txt line 3: "12:zz" is not a serial number/);
  });

  it('un-revoking (line removed, SIGHUP) lets the agent back in', async function () {
    writeList(revoked.beta, revoked.bob);
    const since = server.mark;
    const agentMark = first.mark;
    const reloaded = await sighup('revocation list reloaded');
    assert.equal(reloaded.entries, 2);
    await server.agentRegistered('alpha', since);
    await first.waitForLog((l) => l.msg === 'link established', { since: agentMark });
    assert.deepEqual((await server.state()).agents.map((a) => a.cluster), ['alpha', 'alpha']);
  });
});
