// HA replicas as real processes sharing one MySQL database (a fresh one per test): an agent told
// only the first replica's address links to every replica, a dial on each replica is served
// locally, a new replica gets a link within a heartbeat, a replica that dies is dropped from the
// agent after the TTL, a replica the agent cannot reach forwards dials one hop to a peer, and a
// fresh replica answers 503 for a cluster another replica has seen but 404 for one nobody has.
import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import fs from 'node:fs';
import tls from 'node:tls';
import { performance } from 'node:perf_hooks';
import { setTimeout as pause } from 'node:timers/promises';
import { ConnectRefused, connectVia, downloadRequest, readAll, startByteService } from '../support/clients.js';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';
import { MYSQL_URL, mysqlUnreachable, scratchDatabase } from '../support/mysql.js';
import { getJson, killAllChildren, spawnAgent, startServer, type LoggedProcess, type ServerProcess } from '../support/processes.js';
import type { AgentStatus } from '../../cluster-agent/agent.js';
import { ALPN_PEER } from '../../proxy-server/replicas/peer-forwarding.js';
import { testPki } from '../support/pki.js';
import { statusRequest } from '../support/status-client.js';

const HEARTBEAT_MS = 250;
// Generous against the heartbeat: on a loaded 2-core machine a heartbeat round (MySQL write + read)
// can stall for a second, and a replica that ages out for a moment makes agents drop and relink it.
const TTL_MS = 2000;

/** Polls until `check` holds (bounded); the events waited for are another process's state. */
async function eventually<T>(what: string, read: () => Promise<T>, check: (value: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    last = await read();
    if (check(last)) return last;
    if (performance.now() > deadline) assert.fail(`${what}: not within ${timeoutMs} ms; last seen ${JSON.stringify(last)}`);
    await pause(50);
  }
}

async function metric(server: ServerProcess, name: string, labels = ''): Promise<number> {
  const text = await server.metrics();
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `) || (labels === '' && l.startsWith(`${name} `)));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('HA replicas (processes, shared MySQL)', function () {
  this.timeout(60_000);
  let service: Awaited<ReturnType<typeof startByteService>>;
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let scratch: Awaited<ReturnType<typeof scratchDatabase>> | undefined;
  let store: string;

  before(async function () {
    const missing = await mysqlUnreachable();
    if (missing) assert.fail(`MySQL at ${MYSQL_URL} is needed: ${missing}`);
    baseline = await resourceBaseline();
    service = await startByteService();
  });

  beforeEach(async function () {
    scratch = await scratchDatabase('ha');
    store = scratch.url;
  });

  afterEach(async function () {
    // Each test starts its own replicas and agents; a failed one must not leave them to the next.
    await killAllChildren();
    await scratch?.drop();
  });

  after(async function () {
    await service.close();
    await assertNoLeakedResources(baseline);
  });

  function replica(id: string, extra: string[] = []): Promise<ServerProcess> {
    return startServer({
      extraArgs: [
        '--instance', id,
        '--federation-store', store,
        '--advertise-agent-address', '127.0.0.1:0',
        '--replica-heartbeat', String(HEARTBEAT_MS),
        '--replica-ttl', String(TTL_MS),
        ...extra,
      ],
    });
  }

  async function agentStatus(agent: LoggedProcess): Promise<AgentStatus> {
    const started = await agent.waitForLog((l) => l.msg === 'cluster-agent started');
    return (await getJson(started.healthPort as number, '/healthz')) as AgentStatus;
  }

  function linkedTo(ids: string[]) {
    return (status: AgentStatus): boolean => {
      const linked = status.replicas.filter((r) => r.linked).map((r) => r.id).sort();
      return status.replicas.length === ids.length && JSON.stringify(linked) === JSON.stringify([...ids].sort());
    };
  }

  /** One 64 KiB download through the replica's CONNECT frontend to the byte service behind alpha. */
  async function download(server: ServerProcess): Promise<void> {
    const socket = await connectVia({ tlsPort: server.connectPort }, 'alpha', `127.0.0.1:${service.port}`);
    socket.write(downloadRequest(65536));
    assert.equal((await readAll(socket)).length, 65536);
  }

  it('an agent given only the first replica links to every replica; a new one within a heartbeat; dials are local on each', async function () {
    const a = await replica('hub-a');
    const b = await replica('hub-b');
    const agent = spawnAgent({ cluster: 'alpha', server: a, allow: [`127.0.0.1:${service.port}`] });
    await a.agentRegistered('alpha');
    await b.agentRegistered('alpha');
    await eventually('agent linked to hub-a and hub-b', () => agentStatus(agent), linkedTo(['hub-a', 'hub-b']));

    const since = b.mark;
    const c = await replica('hub-c');
    const registered = await c.agentRegistered('alpha');
    // From hub-c's ready line to the agent's link there, both on hub-c's clock: the other replicas'
    // next heartbeat reads its row, they tell the agent, the agent dials (bounded with room for load).
    const ready = c.lines.find((l) => l.msg === 'proxy-server ready')!;
    const linkMs = Date.parse(String(registered.time)) - Date.parse(String(ready.time));
    assert.ok(linkMs < 5_000, `hub-c got a link ${linkMs} ms after it was ready`);
    await eventually('agent linked to all three', () => agentStatus(agent), linkedTo(['hub-a', 'hub-b', 'hub-c']));
    assert.equal(b.lines.slice(since).filter((l) => l.msg === 'agent registered').length, 0, 'hub-b kept its one link (no churn)');

    for (const hub of [a, b, c]) await download(hub);
    for (const hub of [a, b, c]) {
      assert.equal(await metric(hub, 'fedtunnel_peer_forwarded_dials_total', '{result="ok"}'), 0, 'every dial was served by a local link');
      assert.equal(await metric(hub, 'fedtunnel_replicas_live'), 3);
      // Each replica reads the others' links at its next heartbeat.
      await eventually('alpha has a link on every replica', () => metric(hub, 'fedtunnel_cluster_replica_links', '{cluster="alpha"}'), (n) => n === 3, 5_000);
      const state = await hub.state();
      assert.deepEqual(state.agents.map((l) => l.cluster), ['alpha'], 'exactly one link of the agent on each replica');
    }
    // The status page lists the live replicas from the membership table, with their addresses.
    const snapshot = JSON.parse((await statusRequest(b.connectPort, '/status/snapshot')).body) as { replicas: Array<{ instance: string; self: boolean; address: string }> };
    assert.deepEqual(snapshot.replicas.map((r) => [r.instance, r.self, r.address]), [
      ['hub-a', false, `127.0.0.1:${a.agentPort}`],
      ['hub-b', true, `127.0.0.1:${b.agentPort}`],
      ['hub-c', false, `127.0.0.1:${c.agentPort}`],
    ]);
    await agent.kill();
    for (const hub of [c, b, a]) await hub.kill();
  });

  it('a replica that stops is dropped by the agent at once; one that dies, after the TTL; neither is retried', async function () {
    const a = await replica('hub-a');
    const b = await replica('hub-b');
    const c = await replica('hub-c');
    const agent = spawnAgent({ cluster: 'alpha', server: a });
    await eventually('agent linked to all three', () => agentStatus(agent), linkedTo(['hub-a', 'hub-b', 'hub-c']));
    const since = agent.mark;
    await c.kill();
    // hub-c told its agents the set without itself before its GOAWAY: no attempt to link to it again.
    await eventually('hub-c gone from the agent', () => agentStatus(agent), linkedTo(['hub-a', 'hub-b']), 10_000);
    assert.equal(agent.lines.slice(since).filter((l) => l.msg === 'replica link attempt failed').length, 0, 'no redial of the stopped replica');
    await b.kill('SIGKILL');
    await eventually('hub-b gone from the agent', () => agentStatus(agent), linkedTo(['hub-a']), 10_000);
    const status = await agentStatus(agent);
    assert.equal(status.links, 1, 'only the link to hub-a remains');
    await agent.kill();
    await a.kill();
  });

  it('a replica the agent cannot reach forwards dials one hop to a peer that has the agent', async function () {
    const a = await replica('hub-a');
    // hub-b announces an address where nothing listens: the agent never links to it.
    const probe = await startServer();
    const deadPort = probe.agentPort;
    await probe.kill();
    const b = await replica('hub-b', ['--advertise-agent-address', `127.0.0.1:${deadPort}`]);
    const agent = spawnAgent({ cluster: 'alpha', server: a, allow: [`127.0.0.1:${service.port}`] });
    await a.agentRegistered('alpha');
    await agent.waitForLog((l) => l.msg === 'replica link attempt failed' && l.replica === 'hub-b');
    // hub-b learns from hub-a's next heartbeat that hub-a has alpha.
    await eventually('hub-b forwards', async () => {
      try {
        await download(b);
        return true;
      } catch (error) {
        if (error instanceof ConnectRefused && error.status === 503) return false;
        throw error;
      }
    }, (ok) => ok);
    assert.ok((await metric(b, 'fedtunnel_peer_forwarded_dials_total', '{result="ok"}')) >= 1);
    assert.deepEqual((await b.state()).agents, [], 'hub-b has no link of its own');
    await agent.kill();
    await b.kill();
    await a.kill();
  });

  it('a fresh replica answers 503 NO_AGENT for a cluster another replica has seen, 404 for one nobody has', async function () {
    const a = await replica('hub-a');
    const agent = spawnAgent({ cluster: 'alpha', server: a });
    await a.agentRegistered('alpha');
    await agent.kill();
    await a.kill();
    const b = await replica('hub-b', ['--agent-rejoin-window', '0']);
    const refused = async (cluster: string): Promise<ConnectRefused> => {
      const error = await connectVia({ tlsPort: b.connectPort }, cluster, `127.0.0.1:${service.port}`).then(
        (socket) => {
          socket.destroy();
          return null;
        },
        (e: unknown) => e,
      );
      assert.ok(error instanceof ConnectRefused, String(error));
      return error;
    };
    const seen = await refused('alpha');
    assert.equal(seen.status, 503);
    assert.equal(seen.code, 'NO_AGENT');
    const unknown = await refused('beta');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.code, 'UNKNOWN_CLUSTER');

    // The peer forwarding port: a replica (server) certificate is answered, an agent's is refused.
    const pki = testPki();
    const peerConnection = async (identity: { cert: string; key: string }): Promise<tls.TLSSocket> => {
      const socket = tls.connect({ host: '127.0.0.1', port: b.agentPort, servername: 'localhost', ALPNProtocols: [ALPN_PEER], ca: fs.readFileSync(pki.ca.cert), cert: fs.readFileSync(identity.cert), key: fs.readFileSync(identity.key) });
      socket.on('error', () => undefined);
      await once(socket, 'secureConnect');
      return socket;
    };
    const asAgent = await peerConnection(pki.agents.alpha!);
    await once(asAgent, 'close');
    assert.equal(await metric(b, 'fedtunnel_listener_refusals_total', '{listener="agent",reason="not_a_replica_certificate"}'), 1);
    const asReplica = await peerConnection(pki.server);
    asReplica.write(JSON.stringify({ cluster: 'alpha', address: `127.0.0.1:${service.port}`, sid: 'peer-test', timeoutMs: 2000, requester: 'root' }) + '\n');
    const answer = JSON.parse((await readAll(asReplica)).toString().trim()) as { ok: boolean; code: string };
    assert.deepEqual([answer.ok, answer.code], [false, 'NO_AGENT'], 'the peer dials its own links only and says why not');
    await b.kill();
  });
});
