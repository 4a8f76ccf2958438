// The `ha` section: two hub replicas sharing one membership store (a SQLite file: one host) and
// one agent told only the first replica's address. Measures the dial (connect + one GET) on the
// replica the agent reached first and on the one it reached last, which must be equal once the
// agent holds a link to each (no forwarding hop), and how long a newly started replica waits
// for its link from the agent.
// Keys: ha.dial_ms.{first,last}_{p50,p99}, ha.dial_p50_last_over_first, ha.link_new_replica_ms.
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { measureDial } from './measure.js';
import type { Section } from './scenario.js';
import { AGENT_BIN, BENCH_CLUSTER, LogFollower, SERVER_BIN, agentArgs, benchPki, connectThroughTunnel } from './tunnel-paths.js';
import { errorMessage, log, makeTempDir, ManagedChild, removeTempDir } from './system.js';
import type { PkiPaths } from '../certs/bundle.js';

/** Heartbeat of the bench replicas: the link time to a new replica is bounded by about one of these. */
export const HA_HEARTBEAT_MS = 500;
export const HA_KEYS = {
  ratio: 'ha.dial_p50_last_over_first',
  linkNewReplica: 'ha.link_new_replica_ms',
} as const;
const READY_TIMEOUT_MS = 20_000;

interface Replica {
  child: ManagedChild;
  log: LogFollower;
  udsPath: string;
  agentPort: number;
  readyAt: number;
}

async function startReplica(pki: PkiPaths, dir: string, id: string, store: string): Promise<Replica> {
  const udsPath = path.join(dir, `${id}.sock`);
  const child = new ManagedChild(process.execPath, [
    SERVER_BIN,
    '--ca', pki.ca.cert, '--cert', pki.server.cert, '--key', pki.server.key,
    '--agent-listen', '127.0.0.1:0',
    '--connect-listen', 'off',
    '--connect-uds', udsPath,
    '--admin-listen', 'off',
    '--drain-timeout', '0',
    '--instance', id,
    '--federation-store', store,
    '--advertise-agent-address', '127.0.0.1:0',
    '--replica-heartbeat', String(HA_HEARTBEAT_MS),
    '--log-level', 'info',
  ]);
  const follower = new LogFollower(child);
  const ready = await follower.waitFor((l) => l.msg === 'proxy-server ready', READY_TIMEOUT_MS, `${id} ready`);
  return { child, log: follower, udsPath, agentPort: ready.agentPort as number, readyAt: performance.now() };
}

export function createHaSection(): Section {
  return {
    name: 'ha',
    async run(ctx) {
      const dir = await makeTempDir('bench-ha-');
      const children: ManagedChild[] = [];
      try {
        const pki = benchPki(path.join(dir, 'pki'));
        const store = `sqlite://${path.join(dir, 'membership.db')}`;
        const first = await startReplica(pki, dir, 'hub-first', store);
        children.push(first.child);
        const agent = new ManagedChild(process.execPath, [AGENT_BIN, ...agentArgs(pki, first.agentPort, 'tls', ['--backoff-initial', '100', '--backoff-max', '1000'])]);
        children.unshift(agent);
        await first.log.waitFor((l) => l.msg === 'agent registered' && l.cluster === BENCH_CLUSTER, READY_TIMEOUT_MS, 'agent on the first replica');

        log('ha: starting a second replica');
        const last = await startReplica(pki, dir, 'hub-last', store);
        children.splice(1, 0, last.child);
        await last.log.waitFor((l) => l.msg === 'agent registered' && l.cluster === BENCH_CLUSTER, READY_TIMEOUT_MS + HA_HEARTBEAT_MS * 10, 'agent on the new replica');
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
      } catch (error) {
        log(`ha: not measured: ${errorMessage(error)}`);
        for (const key of [HA_KEYS.ratio, HA_KEYS.linkNewReplica]) ctx.record(key, NaN);
      } finally {
        for (const child of children) await child.stop();
        await removeTempDir(dir);
      }
    },
  };
}
