// The `tunnel` section: every path, one at a time, through throughput, keep-alive
// latency and dial latency against the destination servers.
import { LOOPBACK, measureDial, measureLatency, measureThroughput } from './measure.js';
import type { BenchContext, Path, PathFactory, Section } from './scenario.js';
import { errorMessage, log } from './system.js';

export interface TunnelPathEntry {
  factory: PathFactory;
  /** Prefix of the latency keys `tunnel.latency_ms.<latencyAs>_p50|_p99`; defaults to the factory name. */
  latencyAs?: string;
  /** Prefix of the dial keys `tunnel.latency_ms.<dialAs>_p50|_p99`; defaults to `<latencyAs>_dial`. */
  dialAs?: string;
}

export function createTunnelSection(paths: TunnelPathEntry[]): Section {
  return {
    name: 'tunnel',
    async run(ctx) {
      for (const entry of paths) await measurePath(ctx, entry);
    },
  };
}

async function measurePath(ctx: BenchContext, entry: TunnelPathEntry): Promise<void> {
  const { name } = entry.factory;
  const latencyName = entry.latencyAs ?? name;
  const dialName = entry.dialAs ?? `${latencyName}_dial`;
  const throughputKeys = [`tunnel.throughput_MBps.${name}`];
  const latencyKeys = [`tunnel.latency_ms.${latencyName}_p50`, `tunnel.latency_ms.${latencyName}_p99`];
  const dialKeys = [`tunnel.latency_ms.${dialName}_p50`, `tunnel.latency_ms.${dialName}_p99`];

  let path: Path;
  try {
    log(`${name}: starting`);
    path = await entry.factory.start(ctx.destinations);
  } catch (err) {
    log(`${name}: not available: ${errorMessage(err)}`);
    for (const key of [...throughputKeys, ...latencyKeys, ...dialKeys]) ctx.record(key, NaN);
    return;
  }
  try {
    const toSink = () => path.connect({ host: LOOPBACK, port: ctx.destinations.sinkPort });
    const toHttp = () => path.connect({ host: LOOPBACK, port: ctx.destinations.httpPort });
    await recordMeasurement(ctx, throughputKeys, async () => [await measureThroughput(toSink, ctx.sizes.throughputBytes)]);
    // Latency runs before dial so that helpers a path starts lazily per target (relay
    // pairs, ssh forwards) are already up when dial samples are taken.
    await recordMeasurement(ctx, latencyKeys, async () => {
      const { p50, p99 } = await measureLatency(toHttp, ctx.sizes.latencyRequests);
      return [p50, p99];
    });
    await recordMeasurement(ctx, dialKeys, async () => {
      const { p50, p99 } = await measureDial(toHttp, ctx.sizes.dialCount);
      return [p50, p99];
    });
  } finally {
    await path.close();
  }
}

/** A failed measurement is logged and recorded as NaN, so the remaining ones still run. */
async function recordMeasurement(ctx: BenchContext, keys: string[], measure: () => Promise<number[]>): Promise<void> {
  try {
    const values = await measure();
    keys.forEach((key, index) => {
      ctx.record(key, values[index]);
      log(`${key} = ${values[index].toFixed(3)}`);
    });
  } catch (err) {
    log(`${keys.join(', ')}: failed: ${errorMessage(err)}`);
    for (const key of keys) ctx.record(key, NaN);
  }
}
