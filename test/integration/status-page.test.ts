// The hub's status page end to end: a hub with its embedded federation and controller, real agent
// processes, users with certificates of the test CA, kubectl writing RBAC and federation objects.
// What each user sees is what RBAC lets them see; the event stream shows agents come and go.
import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import path from 'node:path';
import { ConnectRefused, connectVia, startHttpService } from '../support/clients.js';
import { adminKubeconfig, adminKubectl, grantProxy } from '../support/reach.js';
import { scratchDir } from '../support/paths.js';
import { spawnAgent, startServer, type LoggedProcess, type ServerProcess } from '../support/processes.js';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';
import { assertServerIdle, stopAgent } from '../support/server-state.js';
import { metric } from '../support/metrics.js';
import { StatusEvents, statusRequest } from '../support/status-client.js';
import { within } from '../wire/loopback.js';
import type { Snapshot, HubState } from '../../proxy-server/status/model.js';

const FEDERATION = `
apiVersion: core.kubefed.io/v1beta1
kind: KubeFedCluster
metadata: {name: alpha, namespace: kube-federation-system, labels: {fedtunnel.io/tenant: team-a}}
spec: {apiEndpoint: "https://127.0.0.1:1", secretRef: {name: alpha-missing}}
---
apiVersion: core.kubefed.io/v1beta1
kind: KubeFedCluster
metadata: {name: beta, namespace: kube-federation-system, labels: {fedtunnel.io/tenant: team-b}}
spec: {apiEndpoint: "https://127.0.0.1:1", secretRef: {name: beta-missing}}
---
apiVersion: types.kubefed.io/v1beta1
kind: FederatedConfigMap
metadata: {name: settings, namespace: default}
spec:
  template:
    data: {color: blue}
  placement:
    clusters: [{name: alpha}, {name: beta}]
`;

const BOB_LISTS_CONFIGMAPS = `
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: list-fedcm, namespace: default}
rules:
- apiGroups: [types.kubefed.io]
  resources: [federatedconfigmaps]
  verbs: [list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: bob-list-fedcm, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: list-fedcm}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}
`;

function agentClusters(state: HubState): string[] {
  return state.clusters.filter((c) => c.agents.length > 0).map((c) => c.name);
}

describe('status page (hub + agent processes)', function () {
  this.timeout(120_000);
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let server: ServerProcess;
  let http: Awaited<ReturnType<typeof startHttpService>>;
  const agents: Record<string, LoggedProcess> = {};
  let kubeconfig: string;
  const streams: StatusEvents[] = [];

  const snapshot = async (user: string): Promise<Snapshot> => {
    const r = await statusRequest(server.connectPort, '/status/snapshot', { user });
    assert.equal(r.status, 200, r.body);
    return JSON.parse(r.body) as Snapshot;
  };

  /** Bounded polling of a user's snapshot (the controller writes federation status asynchronously). */
  async function snapshotUntil(user: string, ok: (s: Snapshot) => boolean, what: string): Promise<Snapshot> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const s = await snapshot(user);
      if (ok(s)) return s;
      if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}; last snapshot: ${JSON.stringify(s)}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  async function startAgentOf(cluster: string): Promise<void> {
    const since = server.mark;
    agents[cluster] = spawnAgent({ cluster, server, extraArgs: ['--allow', `127.0.0.1:${http.port}`] });
    await server.agentRegistered(cluster, since);
  }

  before(async function () {
    baseline = await resourceBaseline();
    const dir = scratchDir('status-page');
    for (const file of fs.readdirSync(dir)) fs.rmSync(path.join(dir, file), { recursive: true, force: true });
    http = await startHttpService('inside');
    server = await startServer({
      extraArgs: [
        '--federation-listen', '127.0.0.1:0', '--federation-store', `sqlite://${path.join(dir, 'federation.db')}`,
        '--federation-untenanted-placement', 'all', '--keepalive-interval', '200', '--keepalive-timeout', '5000',
        // Far below the event stream's life in the first test: the listener must not cut it.
        '--idle-timeout', '500', '--header-timeout', '500',
      ],
    });
    const federationPort = server.lines.find((l) => l.msg === 'proxy-server ready')!.federationPort as number;
    kubeconfig = adminKubeconfig(federationPort);
    await startAgentOf('alpha');
  });

  after(async function () {
    for (const s of streams) await s.close();
    for (const [cluster, agent] of Object.entries(agents)) if (agent.running) await stopAgent(server, agent, cluster);
    if (server?.running) {
      await assertServerIdle(server);
      await server.kill();
    }
    await http?.close();
    await assertNoLeakedResources(baseline);
  });

  it('streams an agent appearing and disappearing as server-sent events', async function () {
    const events = await StatusEvents.open(server.connectPort, 'root');
    streams.push(events);
    const first = (await events.waitFor((e) => e.event === 'snapshot', 'the first snapshot')).data as Snapshot;
    assert.equal(first.user, 'root');
    assert.deepEqual(agentClusters(first), ['alpha']);
    assert.deepEqual(first.replicas.map((r) => [r.instance, r.self]), [['test-server', true]]);
    // Even a single replica takes the controller lease in its store, so a second one can join.
    assert.equal(first.lease.mode, 'lease');
    assert.equal(first.lease.holder, 'test-server');
    assert.match(first.lease.note, /this replica leads/);
    const alpha = first.clusters[0]!.agents[0]!;
    assert.equal(alpha.replica, 'test-server');
    assert.equal(alpha.instance, 'agent-alpha');
    assert.equal(alpha.carrier, 'tls');

    let mark = events.events.length;
    await startAgentOf('beta');
    await events.waitFor((e) => e.event === 'state' && agentClusters(e.data as HubState).includes('beta'), 'beta in a state event', { from: mark });

    // Samples arrive every second; RTT shows once a keepalive (every 200 ms here) came back.
    mark = events.events.length;
    const sample = await events.waitFor(
      (e) => e.event === 'sample' && (e.data as { clusters: Record<string, { rttMs: number | null }> }).clusters.beta?.rttMs != null,
      'a sample with the RTT of beta',
      { from: mark },
    );
    const rtt = (sample.data as { clusters: Record<string, { rttMs: number }> }).clusters.beta!.rttMs;
    assert.ok(rtt > 0 && rtt < 1000, `loopback RTT ${rtt} ms`);

    mark = events.events.length;
    await stopAgent(server, agents.beta!, 'beta');
    const gone = await events.waitFor((e) => e.event === 'state' && !agentClusters(e.data as HubState).includes('beta'), 'beta gone from a state event', { from: mark });
    assert.deepEqual(agentClusters(gone.data as HubState), ['alpha']);
    assert.equal(events.ended, false, 'the stream outlived the listener\'s idle and header timeouts');

    assert.equal(metric(await server.metrics(), 'fedtunnel_status_clients'), 1);
    await events.close();
    streams.pop();
    const metrics = await server.metrics();
    assert.ok(metric(metrics, 'fedtunnel_status_events_total{event="state"}') >= 2, metrics);
    assert.ok(metric(metrics, 'fedtunnel_status_events_total{event="snapshot"}') >= 1, metrics);
  });

  it('shows each user only the clusters RBAC lets them proxy; system:masters sees all, with dial failures', async function () {
    await startAgentOf('beta');
    // A dial the agent refuses (not on its --allow list) is a failure the page lists.
    await assert.rejects(connectVia({ tlsPort: server.connectPort, user: 'root' }, 'beta', '127.0.0.1:1'), ConnectRefused);
    await grantProxy(kubeconfig, 'bob', 'alpha');

    const root = await snapshot('root');
    assert.deepEqual(agentClusters(root), ['alpha', 'beta']);
    const betaErrors = root.clusters.find((c) => c.name === 'beta')!.errors;
    assert.equal(betaErrors.length, 1, JSON.stringify(betaErrors));
    assert.equal(betaErrors[0]!.replica, 'test-server');
    assert.match(betaErrors[0]!.code, /^[A-Z_]+$/);
    assert.ok(root.history.length > 0, 'the history is kept server-side');
    assert.ok(root.history.some((s) => 'beta' in s.clusters));

    const bob = await snapshot('bob');
    assert.equal(bob.user, 'bob');
    assert.deepEqual(bob.clusters.map((c) => c.name), ['alpha']);
    assert.ok(bob.history.every((s) => Object.keys(s.clusters).every((name) => name === 'alpha')), 'bob\'s history has alpha only');
    assert.deepEqual(bob.replicas, root.replicas);

    // alice has no binding at all: an empty page, not an error.
    const alice = await snapshot('alice');
    assert.deepEqual(alice.clusters, []);
  });

  it('shows federation health and propagation filtered by RBAC', async function () {
    await adminKubectl(kubeconfig, ['apply', '-f', '-'], FEDERATION);
    const hasStatus = (s: Snapshot): boolean =>
      s.federation.clusters.length === 2 &&
      s.federation.clusters.every((c) => c.ready !== '') &&
      s.federation.objects.some((o) => o.name === 'settings' && o.propagation !== '' && o.clusters.length === 2);
    const root = await snapshotUntil('root', hasStatus, 'the controller to write cluster health and propagation status');
    assert.equal(root.federation.enabled, true);
    assert.deepEqual(root.federation.clusters.map((c) => c.name), ['alpha', 'beta']);
    // No secret: the controller reports the clusters' configuration as malformed.
    for (const c of root.federation.clusters) assert.equal(c.ready, 'False', JSON.stringify(c));
    const settings = root.federation.objects.find((o) => o.name === 'settings')!;
    assert.equal(settings.kind, 'FederatedConfigMap');
    assert.equal(settings.namespace, 'default');
    assert.equal(settings.propagation, 'False');
    assert.deepEqual(settings.clusters.map((c) => c.cluster), ['alpha', 'beta']);
    assert.ok(settings.clusters.every((c) => c.status !== ''), JSON.stringify(settings.clusters));

    let bob = await snapshot('bob');
    assert.deepEqual(bob.federation.clusters.map((c) => c.name), ['alpha']);
    assert.deepEqual(bob.federation.objects, [], 'bob may not list FederatedConfigMaps');
    await adminKubectl(kubeconfig, ['apply', '-f', '-'], BOB_LISTS_CONFIGMAPS);
    bob = await snapshotUntil('bob', (s) => s.federation.objects.length === 1, 'bob\'s Role to take effect');
    assert.deepEqual(bob.federation.objects[0]!.clusters.map((c) => c.cluster), ['alpha'], 'only the rows of clusters bob may proxy');
  });

  it('serves the page with a strict CSP; refuses agents, writes and unknown paths with a typed Status', async function () {
    const page = await statusRequest(server.connectPort, '/status', { user: 'bob' });
    assert.equal(page.status, 200);
    assert.match(page.headers['content-type']!, /^text\/html/);
    assert.match(String(page.headers['content-security-policy']), /script-src 'self'/);
    assert.match(page.body, /<script src="\/status\/app\.js" defer><\/script>/);
    const js = await statusRequest(server.connectPort, '/status/app.js', { user: 'bob' });
    assert.equal(js.status, 200);
    assert.match(js.body, /new EventSource\('\/status\/events'\)/);

    const agent = await statusRequest(server.connectPort, '/status/snapshot', { agentOf: 'alpha' });
    assert.equal(agent.status, 403);
    assert.equal(JSON.parse(agent.body).reason, 'Forbidden');
    const post = await statusRequest(server.connectPort, '/status/snapshot', { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(JSON.parse(post.body).kind, 'Status');
    const unknown = await statusRequest(server.connectPort, '/status/nope');
    assert.equal(unknown.status, 404);
    assert.equal(JSON.parse(unknown.body).reason, 'NotFound');
    // Neither a status nor a /clusters/ path: the API proxy's 404 Status.
    const other = await statusRequest(server.connectPort, '/other');
    assert.equal(other.status, 404);
    assert.equal(JSON.parse(other.body).kind, 'Status');
  });

  it('a hub stopping with viewers connected ends their streams and exits promptly', async function () {
    for (const [cluster, agent] of Object.entries(agents)) if (agent.running) await stopAgent(server, agent, cluster);
    await assertServerIdle(server);
    const events = await StatusEvents.open(server.connectPort, 'root');
    streams.push(events);
    await events.waitFor((e) => e.event === 'snapshot', 'the first snapshot');
    const started = Date.now();
    // SIGTERM without the idle check (which would count this stream); --drain-timeout is 30 s, so
    // a listener held open by the stream would show.
    server.signal('SIGTERM');
    const exit = await within(server.exited, 15_000, 'the hub to exit on SIGTERM with a viewer connected');
    assert.equal(exit.code, 0, server.stderr);
    assert.ok(Date.now() - started < 10_000, `stopped in ${Date.now() - started} ms`);
    await events.waitFor(() => false, 'the stream to end', { timeoutMs: 5000 }).catch((error: Error) => assert.match(error.message, /event stream ended/));
  });
});
