// The `hol` section: does a stalled stream hold up its neighbours on the same agent link?
//
// Stream B downloads from the sink alone, then again while stream A (same agent, same link) is
// downloading a large file whose client never reads. With strict per-stream credit, A parks at
// most one window (plus socket buffers) and B keeps its speed: tunnel.hol_ratio = mean speed of B
// beside a stalled A / mean speed of B alone, ideally 1.
import { readFileSync } from 'node:fs';
import type net from 'node:net';
import { LOOPBACK, measureThroughput, startDestinationServers, type DestinationServers } from './measure.js';
import type { BenchContext, Section } from './scenario.js';
import { startTunnelRig, type TunnelRig } from './tunnel-paths.js';
import { errorMessage, log } from './system.js';

const MiB = 1024 * 1024;
/** A's request: far more than any path could buffer, so a leak would show. */
const STALLED_DOWNLOAD_BYTES = 1024 * MiB;
/** The server's and agent's default per-stream window (wire/frames.ts DEFAULT_WINDOW). */
const WINDOW_BYTES = 4 * MiB;
const STALL_TIMEOUT_MS = 15_000;
const STALL_SAMPLE_MS = 50;
/** A counts as parked once the sink's count has not moved for this many samples in a row. */
const STALL_STEADY_SAMPLES = 5;
const WARMUP_RUNS = 4;
const WARMUP_BYTES = 64 * MiB;
/** Each round: B alone, A stalls, B twice beside it, A goes, B alone (ABBA). */
const ROUNDS = 2;

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export const HOL_KEY = 'tunnel.hol_ratio';

export function createHolSection(): Section {
  return {
    name: 'hol',
    async run(ctx) {
      try {
        await measureHol(ctx);
      } catch (err) {
        ctx.record(HOL_KEY, NaN);
        throw err;
      }
    },
  };
}

async function measureHol(ctx: BenchContext): Promise<void> {
  const bytes = ctx.sizes.holBytes;
  let rig: TunnelRig | undefined;
  try {
    log('hol: starting tls tunnel');
    rig = await startTunnelRig({ carrier: 'tls' });
    const tunnel = rig;
    const toSink = () => tunnel.connect({ host: LOOPBACK, port: ctx.destinations.sinkPort });
    const runB = () => measureThroughput(toSink, bytes, 1);

    // The JS hops take a few hundred MiB to reach steady speed (the same holds for tls_relay);
    // untimed downloads first, then alone/with in ABBA order so that leftover drift cancels.
    for (let i = 0; i < WARMUP_RUNS; i++) await measureThroughput(toSink, WARMUP_BYTES, 1);
    const alone: number[] = [];
    const beside: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      alone.push(await runB());
      const stalled = await startStalledStream(tunnel);
      try {
        beside.push(await runB());
        beside.push(await runB());
        stalled.check();
      } finally {
        await stalled.close();
      }
      alone.push(await runB());
    }
    const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
    log(`hol: B alone ${alone.map((v) => v.toFixed(0)).join(' ')} MB/s; beside stalled A ${beside.map((v) => v.toFixed(0)).join(' ')} MB/s (${bytes / MiB} MiB each)`);
    const ratio = mean(beside) / mean(alone);
    ctx.record(HOL_KEY, ratio);
    log(`${HOL_KEY} = ${ratio.toFixed(3)}`);
  } finally {
    await rig?.close().catch((err: unknown) => log(`hol: close failed: ${errorMessage(err)}`));
  }
}

interface StalledStream {
  /** Throws if A closed; logs what A holds and warns if that is more than window + buffers. */
  check(): void;
  close(): Promise<void>;
}

/**
 * Stream A: asks its own sink (so that the byte count is A's alone) for a large download through
 * the tunnel and never reads. Resolves once A is parked and is the only stream on the one link.
 */
async function startStalledStream(tunnel: TunnelRig): Promise<StalledStream> {
  const sink = await startDestinationServers();
  let socket: net.Socket | undefined;
  const close = async (): Promise<void> => {
    socket?.destroy();
    await sink.close();
    // B's next run must be alone again: wait (bounded) until the server has let go of A.
    const giveUpAt = Date.now() + STALL_TIMEOUT_MS;
    while ((await tunnel.debugState()).streams > 0 && Date.now() < giveUpAt) await delay(STALL_SAMPLE_MS);
  };
  try {
    socket = await tunnel.connect({ host: LOOPBACK, port: sink.sinkPort });
    const stalled = socket;
    stalled.pause();
    stalled.on('error', () => {}); // torn down by us
    stalled.write(`DOWNLOAD ${STALLED_DOWNLOAD_BYTES}\n`);
    const parked = await waitUntilParked(sink);
    const state = await tunnel.debugState();
    if (state.agents.length !== 1 || state.streams !== 1) {
      throw new Error(`expected A alone on one agent link, /debug/agents says ${state.agents.length} links, ${state.streams} streams`);
    }
    return {
      check() {
        if (stalled.destroyed) throw new Error('stream A was closed during the measurement; it should have stayed open and stalled');
        // Sanity: A holds one window plus socket buffers, not its whole download, and did not
        // creep forward while B ran.
        const sent = sink.sinkBytesSent();
        const bound = WINDOW_BYTES + kernelSocketBufferBytes() + 2 * MiB;
        log(
          `hol: stalled A: sink sent ${formatMiB(sent)} of ${formatMiB(STALLED_DOWNLOAD_BYTES)} (parked at ${formatMiB(parked)}, ` +
            `bound ${formatMiB(bound)}); its client read ${formatMiB(stalled.bytesRead)}`,
        );
        if (sent > bound) log(`hol: WARNING: stalled stream A absorbed ${formatMiB(sent)}, more than window + socket buffers (${formatMiB(bound)})`);
        if (sent - parked > MiB) log(`hol: WARNING: stalled stream A kept moving while B ran (${formatMiB(sent - parked)})`);
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Waits (bounded) until the sink's byte count for A stops growing; returns it. */
async function waitUntilParked(sink: DestinationServers): Promise<number> {
  const giveUpAt = Date.now() + STALL_TIMEOUT_MS;
  let last = -1;
  let steady = 0;
  for (;;) {
    await delay(STALL_SAMPLE_MS);
    const sent = sink.sinkBytesSent();
    steady = sent === last && sent > 0 ? steady + 1 : 0;
    last = sent;
    if (steady >= STALL_STEADY_SAMPLES) return sent;
    if (Date.now() >= giveUpAt) {
      throw new Error(`stalled stream A never came to rest: the sink had sent ${formatMiB(sent)} after ${STALL_TIMEOUT_MS} ms`);
    }
  }
}

/**
 * What loopback TCP may hold on A's sink→agent hop (largest send plus receive buffer), plus a
 * Unix socket's worth on the server→client hop. Linux defaults when /proc is unreadable.
 */
function kernelSocketBufferBytes(): number {
  const maxOf = (file: string, fallback: number): number => {
    try {
      const fields = readFileSync(file, 'utf8').trim().split(/\s+/).map(Number);
      return Number.isFinite(fields[2]) ? fields[2]! : fallback;
    } catch {
      return fallback;
    }
  };
  return maxOf('/proc/sys/net/ipv4/tcp_wmem', 4 * MiB) + maxOf('/proc/sys/net/ipv4/tcp_rmem', 6 * MiB) + MiB;
}

function formatMiB(bytes: number): string {
  return `${(bytes / MiB).toFixed(2)} MiB`;
}
