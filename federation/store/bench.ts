// Micro-benchmark of a Store backend: write throughput and tail latency, a large list, and how
// soon a watcher sees a write. Meant for an empty database (it writes under /bench/).
import { performance } from 'node:perf_hooks';
import type { Store } from './types.js';

export interface StoreBenchSizes {
  /** Writes in the throughput run (8 in flight: each of 8 workers creates a key, then updates it). */
  writes: number;
  /** Objects of ~1 KiB JSON in the listed prefix. */
  listSize: number;
  /** Single writes whose arrival at a watcher is timed. */
  watchSamples: number;
}

export interface StoreBenchResult {
  writes_per_s: number;
  write_p99_ms: number;
  /** One unpaged list of `listSize` objects at the latest revision (median of 3). */
  list_10k_ms: number;
  /** From the write's acknowledgement to the watcher's callback; 0 when the event came first. */
  watch_p50_ms: number;
  watch_p99_ms: number;
}

export interface StoreBenchOptions {
  /**
   * Opens the Store the watcher runs on; default: the writing Store itself, where a local write
   * wakes the watcher at once. Another instance on the same database shows the cross-process
   * latency, set by its poll interval; samples are then spaced by a random 0-50 ms pause so the
   * writes land at random points of the poll cycle instead of just after a poll.
   */
  openWatcher?: () => Promise<Store>;
}

const IN_FLIGHT = 8;

export async function benchStore(open: () => Promise<Store>, sizes: StoreBenchSizes, options: StoreBenchOptions = {}): Promise<StoreBenchResult> {
  const store = await open();
  const watcherStore = options.openWatcher ? await options.openWatcher() : store;
  try {
    const writes = await measureWrites(store, sizes.writes);
    const list = await measureList(store, sizes.listSize);
    const watch = await measureWatch(store, watcherStore, sizes.watchSamples, watcherStore !== store);
    return {
      writes_per_s: round(writes.perSecond),
      write_p99_ms: round(percentile(writes.latencies, 0.99)),
      list_10k_ms: round(list),
      watch_p50_ms: round(percentile(watch, 0.5)),
      watch_p99_ms: round(percentile(watch, 0.99)),
    };
  } finally {
    if (watcherStore !== store) await watcherStore.close();
    await store.close();
  }
}

/** ~1 KiB of JSON, shaped like a small Kubernetes object. */
function objectJson(name: string, generation: number): Buffer {
  return Buffer.from(
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name, namespace: 'bench', generation, labels: { app: 'bench' } },
      data: { payload: 'x'.repeat(880) },
    }),
  );
}

async function measureWrites(store: Store, count: number): Promise<{ perSecond: number; latencies: number[] }> {
  const latencies: number[] = [];
  const started = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async (_, worker) => {
      const key = `/bench/write/w${worker}`;
      let modRevision = 0;
      for (let i = worker; i < count; i += IN_FLIGHT) {
        const value = objectJson(key, i);
        const before = performance.now();
        const kv = modRevision === 0 ? await store.create(key, value) : await store.update(key, value, modRevision);
        latencies.push(performance.now() - before);
        modRevision = kv.modRevision;
      }
    }),
  );
  return { perSecond: (count / (performance.now() - started)) * 1000, latencies };
}

async function measureList(store: Store, size: number): Promise<number> {
  for (let start = 0; start < size; start += IN_FLIGHT) {
    const batch = Array.from({ length: Math.min(IN_FLIGHT, size - start) }, (_, i) => {
      const name = `obj-${String(start + i).padStart(6, '0')}`;
      return store.create(`/bench/list/${name}`, objectJson(name, 1));
    });
    await Promise.all(batch);
  }
  const timings: number[] = [];
  for (let run = 0; run < 3; run++) {
    const before = performance.now();
    const result = await store.list('/bench/list/');
    timings.push(performance.now() - before);
    if (result.items.length !== size) throw new Error(`listed ${result.items.length} of ${size} objects`);
  }
  return percentile(timings, 0.5);
}

async function measureWatch(writer: Store, watcherStore: Store, samples: number, randomPhase: boolean): Promise<number[]> {
  const received = new Map<number, number>();
  let failure: Error | undefined;
  let notify: (() => void) | undefined;
  const watch = watcherStore.watch(
    '/bench/watch/',
    await writer.currentRevision(),
    (event) => {
      received.set(event.revision, performance.now());
      notify?.();
    },
    (error) => {
      failure = error;
      notify?.();
    },
  );
  const latencies: number[] = [];
  try {
    let modRevision = 0;
    for (let i = 0; i < samples; i++) {
      if (randomPhase) await new Promise((resolve) => setTimeout(resolve, Math.random() * 50));
      const value = objectJson('watched', i);
      const kv = modRevision === 0 ? await writer.create('/bench/watch/obj', value) : await writer.update('/bench/watch/obj', value, modRevision);
      const acked = performance.now();
      modRevision = kv.modRevision;
      while (!received.has(modRevision) && !failure) await new Promise<void>((resolve) => (notify = resolve));
      if (failure) throw failure;
      latencies.push(Math.max(0, received.get(modRevision)! - acked));
    }
  } finally {
    watch.cancel();
  }
  return latencies;
}

function percentile(values: number[], fraction: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))] ?? 0;
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
