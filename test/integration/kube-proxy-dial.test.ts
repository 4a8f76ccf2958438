// The /clusters proxy when the dial to a member hangs, with real processes: a hub with its embedded
// federation and a short --dial-timeout, and alpha's agent frozen (SIGSTOP) so that it never
// answers a dial. A request then gets the 504 Timeout Status once the real dial times out, and a
// client that leaves while its dial is pending (plain request or upgrade) cancels that dial at once:
// the dialer logs CANCELLED, not a DIAL_TIMEOUT later, and no pending dial is left behind.
import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { once } from 'node:events';
import tls from 'node:tls';
import { adminKubeconfig, adminKubectl } from '../support/reach.js';
import { scratchDir } from '../support/paths.js';
import { testPki } from '../support/pki.js';
import { spawnAgent, startServer, type LoggedProcess, type ServerProcess } from '../support/processes.js';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';
import { assertServerIdle, stopAgent } from '../support/server-state.js';

/** The hub's --dial-timeout: a dial the frozen agent never answers fails after this. */
const DIAL_TIMEOUT_MS = 1000;

describe('kube-proxy: a member whose dial hangs (processes)', function () {
  this.timeout(60_000);
  const pki = testPki();
  const ca = fs.readFileSync(pki.ca.cert);
  const root = pki.users.root!;
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let server: ServerProcess;
  let agent: LoggedProcess;
  let unused: net.Server;

  function get(urlPath: string): Promise<{ status: number; json: { kind?: string; code?: number; reason?: string; message?: string } }> {
    return new Promise((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port: server.connectPort, servername: 'localhost', ca, cert: fs.readFileSync(root.cert), key: fs.readFileSync(root.key), path: urlPath, agent: false });
      req.once('response', (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c));
        res.once('end', () => resolve({ status: res.statusCode!, json: JSON.parse(body) as never }));
      });
      req.once('error', reject);
      req.end();
    });
  }

  /** Bounded wait until the hub has a dial pending (the frozen agent never answers it). */
  async function dialPending(): Promise<void> {
    for (let i = 0; (await server.state()).pendingDials === 0; i++) {
      assert.ok(i < 200, 'the dial never became pending');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  before(async function () {
    baseline = await resourceBaseline();
    const dir = scratchDir('kube-proxy-dial');
    for (const file of fs.readdirSync(dir)) fs.rmSync(path.join(dir, file), { recursive: true, force: true });
    // The member's address: never reached, the agent is frozen before any dial.
    unused = net.createServer((s) => s.destroy());
    await new Promise<void>((resolve) => unused.listen(0, '127.0.0.1', resolve));
    const port = (unused.address() as net.AddressInfo).port;
    server = await startServer({
      extraArgs: ['--federation-listen', '127.0.0.1:0', '--federation-store', `sqlite://${path.join(dir, 'federation.db')}`, '--federation-controller', 'off', '--dial-timeout', String(DIAL_TIMEOUT_MS)],
    });
    const federationPort = server.lines.find((l) => l.msg === 'proxy-server ready')!.federationPort as number;
    const since = server.mark;
    // The hub's own keep-alive would drop the frozen link after 30 s; every test here is shorter.
    agent = spawnAgent({ cluster: 'alpha', server, allow: [`127.0.0.1:${port}`], extraArgs: ['--keepalive-timeout', '60000'] });
    await server.agentRegistered('alpha', since);
    agent.child.kill('SIGSTOP');
    const b64 = (file: string): string => fs.readFileSync(file).toString('base64');
    await adminKubectl(adminKubeconfig(federationPort), ['apply', '-f', '-'], JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: [
        { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'alpha-credential', namespace: 'kube-federation-system' }, data: { token: Buffer.from('hub-token').toString('base64') } },
        {
          apiVersion: 'core.kubefed.io/v1beta1',
          kind: 'KubeFedCluster',
          metadata: { name: 'alpha', namespace: 'kube-federation-system' },
          spec: { apiEndpoint: `https://127.0.0.1:${port}`, caBundle: b64(pki.ca.cert), secretRef: { name: 'alpha-credential' } },
        },
      ],
    }));
    // Joined as soon as the hub's informers saw it: anything but 404 "not joined" (a 504 here).
    for (let i = 0; (await get('/clusters/alpha/version')).status === 404; i++) {
      assert.ok(i < 300, 'alpha never became joined at the hub');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });

  after(async function () {
    if (agent?.running) await stopAgent(server, agent, 'alpha', 'SIGKILL');
    if (server) {
      await assertServerIdle(server);
      await server.kill();
    }
    await new Promise((resolve) => unused?.close(resolve));
    await assertNoLeakedResources(baseline);
  });

  it('a dial that times out is a 504 Timeout Status naming the cluster, and leaves no pending dial', async function () {
    const since = server.mark;
    const started = Date.now();
    const answer = await get('/clusters/alpha/api/v1/namespaces');
    assert.equal(answer.status, 504, JSON.stringify(answer.json));
    assert.equal(answer.json.kind, 'Status');
    assert.equal(answer.json.reason, 'Timeout');
    assert.equal(answer.json.code, 504);
    assert.match(answer.json.message!, /cluster "alpha": the tunnel dial timed out/);
    assert.ok(Date.now() - started >= DIAL_TIMEOUT_MS * 0.9, 'answered only once the dial timed out');
    const failed = await server.waitForLog((l) => l.msg === 'dial failed' && l.cluster === 'alpha', { since });
    assert.equal(failed.code, 'DIAL_TIMEOUT');
    await server.waitForLog((l) => l.msg === 'kube-proxy: member unreachable' && l.cluster === 'alpha' && l.code === 504, { since });
    assert.equal((await server.state()).pendingDials, 0);
  });

  it('a client that leaves while its dial is pending cancels the dial (plain request and upgrade)', async function () {
    const requests = {
      plain: 'GET /clusters/alpha/api/v1/namespaces HTTP/1.1\r\nHost: localhost\r\n\r\n',
      upgrade: 'POST /clusters/alpha/api/v1/namespaces/default/pods/box/exec?command=true&stdout=true HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n',
    };
    for (const [kind, head] of Object.entries(requests)) {
      const since = server.mark;
      const socket = tls.connect({ host: '127.0.0.1', port: server.connectPort, servername: 'localhost', ca, cert: fs.readFileSync(root.cert), key: fs.readFileSync(root.key), ALPNProtocols: ['http/1.1'] });
      await once(socket, 'secureConnect');
      socket.write(head);
      await dialPending();
      socket.destroy();
      // The hub's --dial-timeout is DIAL_TIMEOUT_MS: a client gone unnoticed would end as DIAL_TIMEOUT.
      const failed = await server.waitForLog((l) => l.msg === 'dial failed' && l.cluster === 'alpha', { since });
      assert.equal(failed.code, 'CANCELLED', `${kind}: ${String(failed.err)}`);
      assert.equal((await server.state()).pendingDials, 0, kind);
      const audit = await server.waitForLog((l) => l.msg === 'kube-proxy audit' && l.cluster === 'alpha', { since });
      assert.equal(audit.status, 499, `${kind}: the client went away`);
    }
  });
});
