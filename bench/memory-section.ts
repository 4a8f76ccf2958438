// The `memory` section: what an idle stream and an idle agent link cost the proxy-server.
//
// A probe process embeds ProxyServer and nothing else of note (memory-probe.ts), so its memory
// deltas are the server's. Around it:
//   streams: one real cluster-agent process and an idle destination in a third process; the probe
//            dial()s N streams that stay idle. Key: (heapUsed + external) delta / N. RSS is printed.
//   agents:  an agent swarm process (agent-swarm.ts) opens N links with one shared certificate.
//            Key: RSS delta / N, since RSS includes OpenSSL's per-connection buffers, which the V8
//            counters do not see; the heap-based figure is printed.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PkiPaths } from '../certs/bundle.js';
import { IpcClient, type MemorySample } from './ipc.js';
import type { OpenResult } from './memory-probe.js';
import type { BenchContext, Section } from './scenario.js';
import { errorMessage, log, makeTempDir, ManagedChild, removeTempDir } from './system.js';
import { AGENT_BIN, agentArgs, BENCH_CLUSTER, benchPki } from './tunnel-paths.js';
import { NODE_HEAP_FLAGS } from '../common/node-flags.js';

export const STREAM_KEY = 'tunnel.memory.bytes_per_idle_stream';
export const AGENT_KEY = 'tunnel.memory.bytes_per_idle_agent';

const PROBE_SCRIPT = fileURLToPath(new URL('./memory-probe.js', import.meta.url));
const SWARM_SCRIPT = fileURLToPath(new URL('./agent-swarm.js', import.meta.url));
const IDLE_SINK_SCRIPT = fileURLToPath(new URL('./idle-sink.js', import.meta.url));

const COMMAND_TIMEOUT_MS = 30_000;
const REGISTER_TIMEOUT_MS = 20_000;
/** Streams opened and closed before the baseline, so that lazily built state is not counted. */
const WARMUP_STREAMS = 200;
const DIAL_CONCURRENCY = 200;
/** Links up before the baseline, for the same reason. */
const WARMUP_AGENTS = 10;
const AGENT_BATCH = 50;

export function createMemorySection(): Section {
  return {
    name: 'memory',
    async run(ctx) {
      const failures: string[] = [];
      for (const [key, measure] of [
        [STREAM_KEY, measureIdleStreams],
        [AGENT_KEY, measureIdleAgents],
      ] as const) {
        try {
          await measure(ctx);
        } catch (err) {
          ctx.record(key, NaN);
          log(`${key}: failed: ${errorMessage(err)}`);
          failures.push(key);
        }
      }
      if (failures.length > 0) throw new Error(`failed: ${failures.join(', ')}`);
    },
  };
}

/** Owns the helper processes and temp dir of one measurement and tears them down in reverse. */
class Helpers {
  private readonly children: ManagedChild[] = [];
  private readonly closers: Array<() => Promise<unknown>> = [];

  spawn(args: string[], options: { ipc?: boolean; stdin?: 'pipe' } = {}): ManagedChild {
    const child = new ManagedChild(process.execPath, [...NODE_HEAP_FLAGS, ...args], options);
    this.children.push(child);
    return child;
  }

  /** Runs `close` (bounded by the caller) before the processes are stopped. */
  onClose(close: () => Promise<unknown>): void {
    this.closers.push(close);
  }

  async close(): Promise<void> {
    for (const close of this.closers.reverse()) await close().catch(() => {});
    for (const child of this.children.reverse()) await child.stop();
  }
}

async function withPki<T>(prefix: string, work: (pki: PkiPaths, helpers: Helpers) => Promise<T>): Promise<T> {
  const workDir = await makeTempDir(prefix);
  const helpers = new Helpers();
  try {
    return await work(benchPki(path.join(workDir, 'pki')), helpers);
  } finally {
    await helpers.close();
    await removeTempDir(workDir);
  }
}

async function startProbe(helpers: Helpers, pki: PkiPaths, extraFlags: string[]): Promise<{ probe: IpcClient; agentPort: number }> {
  const child = helpers.spawn(['--expose-gc', PROBE_SCRIPT], { ipc: true });
  const probe = new IpcClient(child);
  helpers.onClose(() => probe.call('stop', {}, COMMAND_TIMEOUT_MS));
  const flags = [
    '--ca', pki.ca.cert, '--cert', pki.server.cert, '--key', pki.server.key,
    '--agent-listen', '127.0.0.1:0',
    '--connect-listen', 'off',
    '--admin-listen', 'off',
    '--log-level', 'silent',
    ...extraFlags,
  ];
  const { agentPort } = await probe.call<{ agentPort: number }>('start', { flags }, COMMAND_TIMEOUT_MS);
  return { probe, agentPort };
}

const heapOf = (sample: MemorySample): number => sample.heapUsed + sample.external;

async function measureIdleStreams(ctx: BenchContext): Promise<void> {
  const count = ctx.sizes.idleStreams;
  await withPki('bench-memory-streams-', async (pki, helpers) => {
    const idleSink = helpers.spawn([IDLE_SINK_SCRIPT], { stdin: 'pipe' });
    const ready = await idleSink.waitForOutput(/^\{"port":\d+\}$/m, REGISTER_TIMEOUT_MS, 'listening port');
    const address = `127.0.0.1:${(JSON.parse(ready[0]) as { port: number }).port}`;
    const limit = String(count + WARMUP_STREAMS + 100);
    const { probe, agentPort } = await startProbe(helpers, pki, [
      '--max-streams-per-agent', limit,
      '--max-pending-dials', String(DIAL_CONCURRENCY * 2),
    ]);
    const agent = helpers.spawn([AGENT_BIN, ...agentArgs(pki, agentPort, 'tls', ['--max-streams', limit])]);
    await probe.call('waitLinks', { count: 1, timeoutMs: REGISTER_TIMEOUT_MS }, REGISTER_TIMEOUT_MS + COMMAND_TIMEOUT_MS);
    const agentPid = agent.process.pid!;

    const open = async (n: number): Promise<OpenResult> => {
      const result = await probe.call<OpenResult>('open', { cluster: BENCH_CLUSTER, address, count: n, concurrency: DIAL_CONCURRENCY }, 5 * 60_000);
      if (result.opened !== n) throw new Error(`opened ${result.opened} of ${n} streams (${result.failed} failed: ${result.firstError})`);
      return result;
    };
    const closeAll = () => probe.call('closeStreams', { timeoutMs: COMMAND_TIMEOUT_MS }, 2 * COMMAND_TIMEOUT_MS);
    const measure = () => probe.call<MemorySample>('measure', {}, COMMAND_TIMEOUT_MS);

    await open(WARMUP_STREAMS);
    await closeAll();
    const before = await measure();
    const agentBefore = readRss(agentPid);
    const opened = await open(count);
    const during = await measure();
    const agentDuring = readRss(agentPid);
    await closeAll();
    const after = await measure();

    const perStream = (heapOf(during) - heapOf(before)) / count;
    ctx.record(STREAM_KEY, perStream);
    log(`${STREAM_KEY} = ${perStream.toFixed(0)} (heapUsed+external; ${count} streams opened in ${(opened.ms / 1000).toFixed(1)} s)`);
    log(
      `memory: per idle stream, server heapUsed ${perUnit(during.heapUsed - before.heapUsed, count)}, ` +
        `external ${perUnit(during.external - before.external, count)}, RSS ${perUnit(during.rss - before.rss, count)}; ` +
        `agent process RSS ${perUnit(agentDuring - agentBefore, count)}`,
    );
    const retained = heapOf(after) - heapOf(before);
    log(
      `memory: after closing all streams the server keeps ${perUnit(retained, count)} per stream opened ` +
        `(${formatKiB(retained)} of ${formatKiB(heapOf(during) - heapOf(before))} heap+external; RSS ${formatKiB(after.rss - before.rss)} above baseline)`,
    );
    // A fixed few hundred KiB stays (code, map capacity, metric series); a leak grows with the count.
    if (retained > Math.max(0.1 * (heapOf(during) - heapOf(before)), 1024 * 1024)) {
      log('memory: WARNING: more than 10 % (and over 1 MiB) of the idle-stream memory stays after the streams closed');
    }
  });
}

async function measureIdleAgents(ctx: BenchContext): Promise<void> {
  const count = ctx.sizes.idleAgents;
  await withPki('bench-memory-agents-', async (pki, helpers) => {
    const { probe, agentPort } = await startProbe(helpers, pki, []);
    const swarmChild = helpers.spawn(['--expose-gc', SWARM_SCRIPT], { ipc: true });
    const swarm = new IpcClient(swarmChild);
    helpers.onClose(() => swarm.call('stop', { timeoutMs: 10_000 }, COMMAND_TIMEOUT_MS));
    // The swarm's agents log nothing and listen on nothing; only the link matters.
    const flags = agentArgs(pki, agentPort, 'tls', ['--log-level', 'silent']);
    const connect = async (n: number, expectLinks: number): Promise<number> => {
      const started = performance.now();
      const timeoutMs = 60_000 + n * 200;
      const result = await swarm.call<{ agents: number; connected: number }>('connect', { flags, count: n, batch: AGENT_BATCH, timeoutMs }, timeoutMs + COMMAND_TIMEOUT_MS);
      if (result.connected !== expectLinks) throw new Error(`swarm has ${result.connected} of ${expectLinks} agents connected`);
      await probe.call('waitLinks', { count: expectLinks, timeoutMs: REGISTER_TIMEOUT_MS }, REGISTER_TIMEOUT_MS + COMMAND_TIMEOUT_MS);
      return performance.now() - started;
    };
    const measure = () => probe.call<MemorySample>('measure', {}, COMMAND_TIMEOUT_MS);
    const measureSwarm = () => swarm.call<MemorySample>('measure', {}, COMMAND_TIMEOUT_MS);

    await connect(WARMUP_AGENTS, WARMUP_AGENTS);
    const before = await measure();
    const swarmBefore = await measureSwarm();
    const ms = await connect(count, WARMUP_AGENTS + count);
    const after = await measure();
    const swarmAfter = await measureSwarm();

    const perAgentRss = (after.rss - before.rss) / count;
    ctx.record(AGENT_KEY, perAgentRss);
    log(`${AGENT_KEY} = ${perAgentRss.toFixed(0)} (RSS; ${count} links connected in ${(ms / 1000).toFixed(1)} s)`);
    log(
      `memory: per idle agent link, server heapUsed+external ${perUnit(heapOf(after) - heapOf(before), count)} ` +
        `(heapUsed ${perUnit(after.heapUsed - before.heapUsed, count)}, external ${perUnit(after.external - before.external, count)}); ` +
        `agent side (swarm) RSS ${perUnit(swarmAfter.rss - swarmBefore.rss, count)}, heap+external ${perUnit(heapOf(swarmAfter) - heapOf(swarmBefore), count)}`,
    );
  });
}

function perUnit(bytes: number, count: number): string {
  return `${(bytes / count).toFixed(0)} B`;
}

function formatKiB(bytes: number): string {
  return `${(bytes / 1024).toFixed(0)} KiB`;
}

export function readRss(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) * 1024;
}
