// Who may reach which cluster through the CONNECT frontend, end to end: a hub with its embedded
// federation (whose RBAC decides), two real agents, curl and raw TLS clients with user
// certificates, and kubectl writing the bindings; a binding change takes effect without a restart.
import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import path from 'node:path';
import { ConnectRefused, connectVia, curlStatus, startHttpService } from '../support/clients.js';
import { adminKubeconfig, adminKubectl, mayProxy, proxyGrant } from '../support/reach.js';
import { scratchDir } from '../support/paths.js';
import { testPki } from '../support/pki.js';
import { spawnAgent, startServer, type LoggedProcess, type ServerProcess } from '../support/processes.js';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';
import { assertServerIdle, stopAgent } from '../support/server-state.js';
import { metric } from '../support/metrics.js';

describe('CONNECT authorization by RBAC (processes)', function () {
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let server: ServerProcess;
  let http: Awaited<ReturnType<typeof startHttpService>>;
  const agents: Record<string, LoggedProcess> = {};
  let kubeconfig: string;
  let uds: string;
  const pki = testPki();

  const kubectl = (args: string[], stdin?: string): Promise<string> => adminKubectl(kubeconfig, args, stdin);

  /** curl through the CONNECT frontend to the service inside `cluster`, as `user`: 'ok' or the typed refusal. */
  async function curlAs(user: string, cluster: string): Promise<string> {
    const r = await curlStatus([
      '-sS', '-v', '--max-time', '20', '-p', '-x', `https://${cluster}@127.0.0.1:${server.connectPort}`,
      '--proxy-cacert', pki.ca.cert, '--proxy-cert', pki.users[user]!.cert, '--proxy-key', pki.users[user]!.key,
      `http://127.0.0.1:${http.port}/${user}`,
    ]);
    if (r.exit === 0) {
      assert.equal(JSON.parse(r.stdout).path, `/${user}`);
      return 'ok';
    }
    // curl refuses the tunnel (exit 56) and shows the hub's answer in its trace.
    assert.equal(r.exit, 56, r.stderr);
    assert.match(r.stderr, /< HTTP\/1\.1 403 Forbidden/);
    return /< Tunnel-Error: (\S+)/.exec(r.stderr)?.[1] ?? 'untyped';
  }

  /** The outcome a raw CONNECT gets (connectVia reads the Tunnel-Error header). */
  async function connectAs(user: string, cluster: string): Promise<string> {
    try {
      const tunnel = await connectVia({ tlsPort: server.connectPort, user }, cluster, `127.0.0.1:${http.port}`);
      tunnel.destroy();
      return 'ok';
    } catch (error) {
      if (error instanceof ConnectRefused) return `${error.status} ${error.code}`;
      throw error;
    }
  }

  /** Bounded polling: a binding is in force once its watch event reached the hub's RBAC cache. */
  async function eventually(user: string, cluster: string, expected: string): Promise<void> {
    const deadline = Date.now() + 10_000;
    let seen = await connectAs(user, cluster);
    while (seen !== expected && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      seen = await connectAs(user, cluster);
    }
    assert.equal(seen, expected, `${user} → ${cluster}`);
  }

  before(async function () {
    baseline = await resourceBaseline();
    const dir = scratchDir('connect-authz');
    for (const file of fs.readdirSync(dir)) fs.rmSync(path.join(dir, file), { recursive: true, force: true });
    http = await startHttpService('inside');
    uds = path.join(dir, 'connect.sock');
    server = await startServer({
      uds,
      extraArgs: ['--federation-listen', '127.0.0.1:0', '--federation-store', `sqlite://${path.join(dir, 'federation.db')}`, '--federation-controller', 'off'],
    });
    const federationPort = server.lines.find((l) => l.msg === 'proxy-server ready')!.federationPort as number;
    kubeconfig = adminKubeconfig(federationPort);
    for (const cluster of ['alpha', 'beta']) {
      const since = server.mark;
      agents[cluster] = spawnAgent({ cluster, server, extraArgs: ['--allow', `127.0.0.1:${http.port}`] });
      await server.agentRegistered(cluster, since);
    }
  });

  after(async function () {
    for (const [cluster, agent] of Object.entries(agents)) if (agent.running) await stopAgent(server, agent, cluster);
    if (server) {
      await assertServerIdle(server);
      await server.kill();
    }
    await http?.close();
    await assertNoLeakedResources(baseline);
  });

  it('refuses a user without a binding with 403 FORBIDDEN before any dial, logs and counts it', async function () {
    const since = server.mark;
    assert.equal(await curlAs('bob', 'alpha'), 'FORBIDDEN');
    assert.equal(await connectAs('bob', 'beta'), '403 FORBIDDEN');
    const refusal = await server.waitForLog((l) => l.msg === 'CONNECT refused: user may not proxy this cluster' && l.cluster === 'beta', { since });
    assert.equal(refusal.level, 40, 'a warning');
    assert.equal(refusal.user, 'bob');
    const metrics = await server.metrics();
    assert.equal(metric(metrics, 'fedtunnel_connect_forbidden_total'), 2, metrics);
    assert.doesNotMatch(metrics, /fedtunnel_dials_total\{/, 'no dial was started for a refused user');
  });

  it('system:masters reaches every cluster; the Unix socket is trusted local and not asked', async function () {
    assert.equal(await curlAs('root', 'alpha'), 'ok');
    assert.equal(await curlAs('root', 'beta'), 'ok');
    const tunnel = await connectVia({ uds }, 'beta', `127.0.0.1:${http.port}`);
    tunnel.destroy();
  });

  it('a binding to proxy alpha lets bob reach alpha but not beta, and its removal takes effect without a restart', async function () {
    await kubectl(['apply', '-f', '-'], proxyGrant('bob', 'alpha'));
    await eventually('bob', 'alpha', 'ok');
    assert.equal(await curlAs('bob', 'alpha'), 'ok');
    assert.equal(await curlAs('bob', 'beta'), 'FORBIDDEN');
    // kubectl's own view agrees with what the CONNECT frontend enforces.
    assert.equal(await mayProxy(kubeconfig, 'bob', 'alpha'), true);

    await kubectl(['delete', 'clusterrolebinding', 'bob-proxy-alpha']);
    await eventually('bob', 'alpha', '403 FORBIDDEN');
    assert.equal(await curlAs('bob', 'alpha'), 'FORBIDDEN');
    const metrics = await server.metrics();
    assert.equal(metric(metrics, 'fedtunnel_dials_total{cluster="beta",result="ok"}'), 2, 'beta was dialled only for root and the Unix socket');
  });
});
