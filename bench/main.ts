// Benchmark entry point: `node dist/bench/main.js [--quick] [--only SECTION] [--json FILE]`.
// Progress goes to stderr; the results table and target verdicts go to stdout.
import { writeFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { directPath, sshPath, tlsRelayPath } from './baselines.js';
import { FULL_SIZES, QUICK_SIZES, startDestinationServers } from './measure.js';
import { limit, Results, type Target } from './results.js';
import type { BenchContext, Section } from './scenario.js';
import { createTunnelSection, type TunnelPathEntry } from './tunnel-section.js';
import { h2Tunnel, tlsTunnel, wsTunnel } from './tunnel-paths.js';
import { createHolSection, HOL_KEY } from './hol-section.js';
import { AGENT_KEY, createMemorySection, STREAM_KEY } from './memory-section.js';
import { createStoreSection } from './store-section.js';
import { createFederationSection } from './federation-section.js';
import { createConversionSection } from './conversion-section.js';
import { createKubeProxySection, KUBEPROXY_KEYS } from './kubeproxy-section.js';
import { createHaSection, HA_HEARTBEAT_MS, HA_KEYS } from './ha-section.js';
import { errorMessage, installExitCleanup, log } from './system.js';

/** Paths of the tunnel section, measured in this order. The tunnel under test adds e.g. `{ factory: tlsTunnel, latencyAs: 'tunnel', dialAs: 'dial' }`. */
export const tunnelPaths: TunnelPathEntry[] = [
  { factory: directPath },
  { factory: tlsRelayPath },
  { factory: sshPath },
  { factory: tlsTunnel, latencyAs: 'tunnel', dialAs: 'dial' },
  { factory: wsTunnel },
  { factory: h2Tunnel },
];

/** Sections in run order; a further section (e.g. memory) is one more entry. */
export const sections: Section[] = [createTunnelSection(tunnelPaths), createHolSection(), createMemorySection(), createStoreSection(), createFederationSection(), createConversionSection(), createKubeProxySection(), createHaSection()];

const throughput = (name: string) => `tunnel.throughput_MBps.${name}`;
const latency = (name: string) => `tunnel.latency_ms.${name}`;

export const targets: Target[] = [
  { label: 'tls >= 0.9 x tls_relay', check: (r) => r[throughput('tls')] / r[throughput('tls_relay')], min: 0.9 },
  { label: 'tls >= 1.0 x ssh', check: (r) => r[throughput('tls')] / r[throughput('ssh')], min: 1.0 },
  { label: 'ws >= 0.8 x tls', check: (r) => r[throughput('ws')] / r[throughput('tls')], min: 0.8 },
  { label: 'h2 >= 0.8 x tls', check: (r) => r[throughput('h2')] / r[throughput('tls')], min: 0.8 },
  {
    label: '(tunnel_p50 - direct_p50) <= (ssh_p50 - direct_p50), as a ratio',
    check: (r) => {
      const sshOverhead = r[latency('ssh_p50')] - r[latency('direct_p50')];
      // A ratio to a non-positive overhead says nothing; it reads as n/a.
      return sshOverhead > 0 ? (r[latency('tunnel_p50')] - r[latency('direct_p50')]) / sshOverhead : NaN;
    },
    max: 1.0,
  },
  limit(STREAM_KEY, { max: 10240 }),
  limit(AGENT_KEY, { max: 65536 }),
  limit(HOL_KEY, { min: 0.9 }),
  limit('store.sqlite.writes_per_s', { min: 2000 }),
  limit('store.mysql.writes_per_s', { min: 1000 }),
  limit('federation.propagation.converge_s', { max: 30 }),
  limit('federation.propagation.update_p50_ms', { max: 100 }),
  limit('federation.propagation.update_p99_ms', { max: 1000 }),
  limit(KUBEPROXY_KEYS.clustersOverConnect, { max: 0.2 }),
  limit(KUBEPROXY_KEYS.portForwardRatio, { min: 0.8 }),
  limit(KUBEPROXY_KEYS.watchBytes, { max: 20 * 1024 }),
  // Converged: the replica the agent reached last serves dials as fast as the first (no forwarding hop).
  limit(HA_KEYS.ratio, { max: 1.25 }),
  // A new replica's link: one heartbeat for the others to see it, then the agent's dial (plus noise).
  limit(HA_KEYS.linkNewReplica, { max: 4 * HA_HEARTBEAT_MS }),
  // SIGKILL of the lease holder: the other takes over after a full lease of silence (counted from the
  // last renewal it saw, up to a step before the kill) and within a step of that; margin for a loaded machine.
  { label: `${HA_KEYS.controllerFailover} <= 1.5 x ${HA_KEYS.controllerLease}`, check: (r) => r[HA_KEYS.controllerFailover] / r[HA_KEYS.controllerLease], max: 1.5 },
  // Issue 10: a rolling restart behind the load balancer fails no request.
  limit(HA_KEYS.rollingFailed, { max: 0 }),
  ...['sqlite', 'mysql'].flatMap((backend) => [limit(`store.${backend}.watch_p99_ms`, { max: 50 }), limit(`store.${backend}.list_10k_ms`, { max: 200 })]),
];

async function main(): Promise<void> {
  const { values: options } = parseArgs({
    options: {
      json: { type: 'string' },
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
    },
  });
  const selected = options.only === undefined ? sections : sections.filter((section) => section.name === options.only);
  if (selected.length === 0) {
    throw new Error(`unknown section ${options.only}; sections: ${sections.map((section) => section.name).join(', ')}`);
  }
  installExitCleanup();

  const results = new Results();
  const destinations = await startDestinationServers();
  try {
    const ctx: BenchContext = {
      sizes: options.quick ? QUICK_SIZES : FULL_SIZES,
      destinations: { sinkPort: destinations.sinkPort, httpPort: destinations.httpPort },
      record: (key, value) => results.record(key, value),
    };
    for (const section of selected) {
      try {
        await section.run(ctx);
      } catch (err) {
        log(`section ${section.name} failed: ${errorMessage(err)}`);
        process.exitCode = 1;
      }
    }
  } finally {
    await destinations.close();
  }

  process.stdout.write(`${results.format(targets)}\n`);
  if (options.json !== undefined) {
    await writeFile(options.json, `${JSON.stringify(results.toNested(), null, 2)}\n`);
    log(`results written to ${options.json}`);
  }
}

// Importing this module (to reuse its lists) must not start a run.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    log(errorMessage(err));
    process.exitCode = 1;
  });
}
