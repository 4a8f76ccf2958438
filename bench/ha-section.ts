// The `ha` section: hub replicas sharing one store (SQLite files: one host), three measurements.
// - Dials: two replicas and one agent told only the first replica's address. Measures the dial
//   (connect + one GET) on the replica the agent reached first and on the one it reached last,
//   which must be equal once the agent holds a link to each (no forwarding hop), and how long a
//   newly started replica waits for its link from the agent.
// - Controller failover: two replicas with the federation API server, so they campaign for the
//   controller lease (a short one, HA_CONTROLLER_LEASE_MS); SIGKILL of the holder, then the time
//   until the other logs that it leads. It reads against the lease duration, recorded beside it.
// - Rolling restart: three replicas behind HAProxy (common/haproxy.ts, as in the rolling-restart
//   test), one agent through it (linked to every replica), short requests (CONNECT through
//   HAProxy's TLS frontend + one GET) in a few loops while each replica in turn gets SIGTERM,
//   exits and starts again on its ports. Failed requests are counted (target 0) and classified
//   (common/request-failures.ts). Skipped, with a message, where HAProxy is not installed.
// Keys: ha.dial_ms.{first,last}_{p50,p99}, ha.dial_p50_last_over_first, ha.link_new_replica_ms,
// ha.controller_failover_ms, ha.controller_lease_ms, ha.rolling_restart_failed, ha.rolling_restart_requests.
import fs from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { PkiPaths } from '../certs/bundle.js';
import { startHub, type HubProcess } from '../common/federation-processes.js';
import { killAllChildrenSync } from '../common/spawn.js';
import { Haproxy, HAPROXY_BIN, type BackendServer } from '../common/haproxy.js';
import { classifyFailure, RequestTimeout, type ClassifiedFailure } from '../common/request-failures.js';
import { getOnce, measureDial } from './measure.js';
import type { BenchContext, Endpoint, Section } from './scenario.js';
import { AGENT_BIN, BENCH_CLUSTER, LogFollower, SERVER_BIN, agentArgs, benchPki, connectThroughTls, connectThroughTunnel } from './tunnel-paths.js';
import { errorMessage, findFreePort, log, makeTempDir, ManagedChild, removeTempDir } from './system.js';

/** Heartbeat of the bench replicas: the link time to a new replica is bounded by about one of these. */
export const HA_HEARTBEAT_MS = 500;
/** --controller-lease-duration of the failover replicas: a takeover follows a full lease of silence, plus up to one step (a quarter). */
export const HA_CONTROLLER_LEASE_MS = 2_000;
export const HA_KEYS = {
  ratio: 'ha.dial_p50_last_over_first',
  linkNewReplica: 'ha.link_new_replica_ms',
  controllerFailover: 'ha.controller_failover_ms',
  controllerLease: 'ha.controller_lease_ms',
  rollingFailed: 'ha.rolling_restart_failed',
  rollingRequests: 'ha.rolling_restart_requests',
} as const;
/** Generous: a replica starting next to a loaded benchmark (HAProxy, load, an agent) on a busy 2-core machine may take tens of seconds. */
const READY_TIMEOUT_MS = 60_000;
const LEASE_ACQUIRED = 'controller lease acquired: this replica runs the federation controller';
/** Concurrent request loops during the rolling restart. */
const LOAD_LOOPS = 2;
/** A short request with no complete answer by then hangs (a replica's drain takes a second or two). */
const REQUEST_TIMEOUT_MS = 15_000;
/**
 * The rolling-restart test's replica timing: quick heartbeats, a readiness delay (600 ms) longer
 * than HAProxy's two failed checks (2 × 100 ms), time for short requests to finish on SIGTERM.
 */
const ROLLING_REPLICA_ARGS = [
  '--replica-heartbeat', '200', '--replica-ttl', '800',
  '--shutdown-delay', '600', '--drain-timeout', '5000',
  '--keepalive-interval', '500', '--keepalive-timeout', '2000',
  '--agent-rejoin-window', '0',
];

interface Replica {
  child: ManagedChild;
  log: LogFollower;
  udsPath: string;
  agentPort: number;
  readyAt: number;
}

/** A replica without the federation API server; `args` say where it listens and how it times its membership. */
async function startReplica(pki: PkiPaths, dir: string, id: string, store: string, args: string[]): Promise<Replica> {
  const udsPath = path.join(dir, `${id}.sock`);
  const child = new ManagedChild(process.execPath, [
    SERVER_BIN,
    '--ca', pki.ca.cert, '--cert', pki.server.cert, '--key', pki.server.key,
    '--instance', id,
    '--federation-store', store,
    '--log-level', 'info',
    ...args,
  ]);
  const follower = new LogFollower(child);
  let ready;
  try {
    ready = await follower.waitFor((l) => l.msg === 'proxy-server ready', READY_TIMEOUT_MS, `${id} ready`);
  } catch (error) {
    await child.stop(); // nobody else knows of it yet
    throw error;
  }
  return { child, log: follower, udsPath, agentPort: ready.agentPort as number, readyAt: performance.now() };
}

function agentRegistered(replica: Replica, timeoutMs = READY_TIMEOUT_MS): Promise<unknown> {
  return replica.log.waitFor((l) => l.msg === 'agent registered' && l.cluster === BENCH_CLUSTER, timeoutMs, 'the agent\'s link');
}

async function measureDials(ctx: BenchContext, pki: PkiPaths, dir: string, children: ManagedChild[]): Promise<void> {
  const store = `sqlite://${path.join(dir, 'membership.db')}`;
  const dialArgs = (udsPath: string): string[] => [
    '--agent-listen', '127.0.0.1:0',
    '--connect-listen', 'off',
    '--connect-uds', udsPath,
    '--admin-listen', 'off',
    '--drain-timeout', '0',
    '--advertise-agent-address', '127.0.0.1:0',
    '--replica-heartbeat', String(HA_HEARTBEAT_MS),
  ];
  const first = await startReplica(pki, dir, 'hub-first', store, dialArgs(path.join(dir, 'hub-first.sock')));
  children.push(first.child);
  const agent = new ManagedChild(process.execPath, [AGENT_BIN, ...agentArgs(pki, first.agentPort, 'tls', ['--backoff-initial', '100', '--backoff-max', '1000'])]);
  children.unshift(agent);
  await agentRegistered(first);

  log('ha: starting a second replica');
  const last = await startReplica(pki, dir, 'hub-last', store, dialArgs(path.join(dir, 'hub-last.sock')));
  children.splice(1, 0, last.child);
  await agentRegistered(last, READY_TIMEOUT_MS + HA_HEARTBEAT_MS * 10);
  ctx.record(HA_KEYS.linkNewReplica, performance.now() - last.readyAt);
  first.log.stop();
  last.log.stop();

  const target = { host: '127.0.0.1', port: ctx.destinations.httpPort };
  const count = ctx.sizes.dialCount;
  const onReplica = (replica: Replica) => () => connectThroughTunnel(replica.udsPath, BENCH_CLUSTER, target);
  // Both replicas warmed up alike first, so measuring one before the other does not favour the second.
  for (const replica of [first, last]) await measureDial(onReplica(replica), Math.min(30, count));
  log('ha: dials on the first replica');
  const onFirst = await measureDial(onReplica(first), count);
  log('ha: dials on the last replica');
  const onLast = await measureDial(onReplica(last), count);
  ctx.record('ha.dial_ms.first_p50', onFirst.p50);
  ctx.record('ha.dial_ms.first_p99', onFirst.p99);
  ctx.record('ha.dial_ms.last_p50', onLast.p50);
  ctx.record('ha.dial_ms.last_p99', onLast.p99);
  ctx.record(HA_KEYS.ratio, onLast.p50 / onFirst.p50);
}

async function measureControllerFailover(ctx: BenchContext, pki: PkiPaths, dir: string): Promise<void> {
  const store = `sqlite://${path.join(dir, 'lease.db')}`;
  const hubs: HubProcess[] = [];
  const start = (instance: string): Promise<HubProcess> =>
    startHub({ pki, store, instance, drainTimeoutMs: 0, timeoutMs: 60_000, extraArgs: ['--controller-lease-duration', String(HA_CONTROLLER_LEASE_MS), '--log-level', 'info'] });
  try {
    // The first creates the store's schema and takes the lease; the second then follows it.
    const holder = await start('lease-a');
    hubs.push(holder);
    await holder.waitForLog((l) => l.msg === LEASE_ACQUIRED, { timeoutMs: 30_000 });
    const follower = await start('lease-b');
    hubs.push(follower);
    if (follower.lines.some((l) => l.msg === LEASE_ACQUIRED)) throw new Error('lease-b took the lease from a live holder');
    log(`ha: SIGKILL of the controller lease holder (lease ${HA_CONTROLLER_LEASE_MS} ms)`);
    const since = follower.mark;
    const killedAt = performance.now();
    await holder.kill('SIGKILL');
    await follower.waitForLog((l) => l.msg === LEASE_ACQUIRED, { since, timeoutMs: 3 * HA_CONTROLLER_LEASE_MS + 10_000 });
    ctx.record(HA_KEYS.controllerFailover, performance.now() - killedAt);
    ctx.record(HA_KEYS.controllerLease, HA_CONTROLLER_LEASE_MS);
  } finally {
    for (const hub of hubs) await hub.kill('SIGTERM');
  }
}

interface LoadResult {
  done: number;
  failures: ClassifiedFailure[];
}

/** Short requests (CONNECT + one GET, each on a connection of its own) in `loops` loops until stop(). */
function startLoad(connect: () => Promise<net.Socket>, loops: number): { stop(): Promise<LoadResult> } {
  const result: LoadResult = { done: 0, failures: [] };
  let stopping = false;
  const request = async (): Promise<void> => {
    const stream = await connect(); // bounded: the CONNECT answer has a deadline of its own
    const timer = setTimeout(() => stream.destroy(new RequestTimeout(`no response within ${REQUEST_TIMEOUT_MS} ms`)), REQUEST_TIMEOUT_MS);
    try {
      await getOnce(stream);
    } finally {
      clearTimeout(timer);
    }
  };
  const running = Array.from({ length: loops }, async () => {
    while (!stopping) {
      try {
        await request();
        result.done++;
      } catch (error) {
        result.failures.push(classifyFailure(error));
      }
    }
  });
  return {
    async stop() {
      stopping = true;
      await Promise.all(running);
      return result;
    },
  };
}

async function measureRollingRestart(ctx: BenchContext, pki: PkiPaths, dir: string, target: Endpoint): Promise<void> {
  const store = `sqlite://${path.join(dir, 'rolling.db')}`;
  const servers: Array<BackendServer & { args: string[] }> = [];
  for (const name of ['roll-a', 'roll-b', 'roll-c']) {
    const [agentPort, connectPort, adminPort] = [await findFreePort(), await findFreePort(), await findFreePort()];
    const args = [
      '--agent-listen', `127.0.0.1:${agentPort}`,
      '--connect-listen', `127.0.0.1:${connectPort}`,
      '--admin-listen', `127.0.0.1:${adminPort}`,
      '--advertise-agent-address', `127.0.0.1:${agentPort}`,
      ...ROLLING_REPLICA_ARGS,
    ];
    servers.push({ name, agentPort, connectPort, adminPort, args });
  }
  const replicas: Replica[] = [];
  let haproxy: Haproxy | null = null;
  let agent: ManagedChild | null = null;
  try {
    // The first creates the schema; the others, started together once it is there, only join.
    replicas.push(await startReplica(pki, dir, servers[0]!.name, store, servers[0]!.args));
    const others = await Promise.allSettled(servers.slice(1).map((s) => startReplica(pki, dir, s.name, store, s.args)));
    for (const started of others) if (started.status === 'fulfilled') replicas.push(started.value);
    for (const started of others) if (started.status === 'rejected') throw started.reason;
    haproxy = await Haproxy.start(servers, path.join(dir, 'haproxy'), { agentPort: await findFreePort(), connectPort: await findFreePort(), federationPort: 0 });
    for (const s of servers) await haproxy.serverUp(s.name);
    // Its main link moves when the replica under it restarts, and the link it then duplicates is
    // retired: that link's open streams need the drain time a deployment gives them.
    agent = new ManagedChild(process.execPath, [AGENT_BIN, ...agentArgs(pki, haproxy.ports.agentPort, 'tls', ['--backoff-initial', '50', '--backoff-max', '500'], 5_000)]);
    for (const replica of replicas) await agentRegistered(replica);
    for (const replica of replicas) replica.log.stop();

    const connectPort = haproxy.ports.connectPort;
    const load = startLoad(() => connectThroughTls(pki, connectPort, BENCH_CLUSTER, target), LOAD_LOOPS);
    let result: LoadResult;
    try {
      for (const [i, s] of servers.entries()) {
        log(`ha: rolling restart: ${s.name}`);
        const exitCode = await replicas[i]!.child.signalAndWait('SIGTERM');
        if (exitCode !== 0) throw new Error(`${s.name} exited with ${exitCode} on SIGTERM`);
        await haproxy.serverUp(s.name, false);
        replicas[i] = await startReplica(pki, dir, s.name, store, s.args);
        await agentRegistered(replicas[i]!);
        replicas[i]!.log.stop();
        await haproxy.serverUp(s.name, true);
      }
    } finally {
      result = await load.stop();
    }
    ctx.record(HA_KEYS.rollingFailed, result.failures.length);
    ctx.record(HA_KEYS.rollingRequests, result.done + result.failures.length);
    if (result.failures.length > 0) log(`ha: rolling restart: failed requests: ${result.failures.map((f) => `${f.kind} ${f.code} (${f.message})`).join('; ')}`);
  } finally {
    await agent?.stop();
    for (const replica of replicas) await replica.child.stop();
    await haproxy?.stop();
  }
}

/** Runs one measurement; a failure records its keys as not measured (n/a) and leaves the others to run. */
async function measured(ctx: BenchContext, what: string, keys: string[], work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (error) {
    log(`ha: ${what} not measured: ${errorMessage(error)}`);
    for (const key of keys) ctx.record(key, NaN);
  }
}

export function createHaSection(): Section {
  return {
    name: 'ha',
    async run(ctx) {
      const dir = await makeTempDir('bench-ha-');
      // The failover hubs and HAProxy are common/spawn.ts children: a crash of the bench must not leave them running.
      const onExit = (): void => killAllChildrenSync();
      process.once('exit', onExit);
      try {
        const pki = benchPki(path.join(dir, 'pki'), { admin: true });
        const children: ManagedChild[] = [];
        try {
          await measured(ctx, 'dials', [HA_KEYS.ratio, HA_KEYS.linkNewReplica], () => measureDials(ctx, pki, dir, children));
        } finally {
          for (const child of children) await child.stop();
        }
        await measured(ctx, 'controller failover', [HA_KEYS.controllerFailover, HA_KEYS.controllerLease], () => measureControllerFailover(ctx, pki, dir));
        if (!fs.existsSync(HAPROXY_BIN)) {
          log(`ha: rolling restart not measured: ${HAPROXY_BIN} missing (Debian package haproxy; node test/setup/prepare.mjs installs it)`);
          for (const key of [HA_KEYS.rollingFailed, HA_KEYS.rollingRequests]) ctx.record(key, NaN);
        } else {
          const target = { host: '127.0.0.1', port: ctx.destinations.httpPort };
          await measured(ctx, 'rolling restart', [HA_KEYS.rollingFailed, HA_KEYS.rollingRequests], () => measureRollingRestart(ctx, pki, dir, target));
        }
      } finally {
        process.off('exit', onExit);
        await removeTempDir(dir);
      }
    },
  };
}
