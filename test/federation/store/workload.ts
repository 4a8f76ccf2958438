// Helpers shared by the store tests and their child processes: write workloads, watch
// recording, and the checks on what a watch stream must contain.
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { StoreError, type Event, type KeyValue, type Store, type StoreErrorCode } from '../../../federation/store/types.js';

export const text = (s: string): Buffer => Buffer.from(s);

export async function expectStoreError(promise: Promise<unknown>, code: StoreErrorCode): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof StoreError, `expected a StoreError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
}

export async function until(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Collects a watch's events and its error. */
export class WatchRecorder {
  readonly events: Event[] = [];
  error: StoreError | undefined;
  private readonly watch;

  constructor(store: Store, prefix: string, fromRevision: number) {
    this.watch = store.watch(
      prefix,
      fromRevision,
      (event) => this.events.push(event),
      (error) => (this.error = error),
    );
  }

  async waitFor(count: number): Promise<Event[]> {
    await until(() => this.events.length >= count || this.error !== undefined, `${count} watch events (have ${this.events.length})`);
    if (this.error) throw this.error;
    return this.events;
  }

  cancel(): void {
    this.watch.cancel();
  }
}

export function assertStrictlyIncreasing(revisions: number[]): void {
  for (let i = 1; i < revisions.length; i++) {
    assert.ok(revisions[i]! > revisions[i - 1]!, `revision ${revisions[i]} follows ${revisions[i - 1]} at index ${i}`);
  }
}

/** A write the store acknowledged, as the writer saw it. */
export interface AckedWrite {
  revision: number;
  key: string;
  value: string;
}

/**
 * `workers` loops, each doing `updatesPerWorker` successful compare-and-swap updates on keys
 * picked from `keys` (which must exist), retrying on CONFLICT. Returns every acknowledged write.
 */
export async function runConcurrentUpdates(stores: Store[], keys: string[], workers: number, updatesPerWorker: number): Promise<AckedWrite[]> {
  const acked: AckedWrite[] = [];
  await Promise.all(
    Array.from({ length: workers }, async (_, worker) => {
      const store = stores[worker % stores.length]!;
      for (let step = 0; step < updatesPerWorker; ) {
        const key = keys[(worker * 7 + step * 3) % keys.length]!;
        const current = (await store.get(key))!;
        const value = `w${worker}-s${step}`;
        try {
          const kv = await store.update(key, text(value), current.modRevision);
          acked.push({ revision: kv.modRevision, key, value });
          step++;
        } catch (err) {
          if (!(err instanceof StoreError && err.code === 'CONFLICT')) throw err;
        }
      }
    }),
  );
  return acked;
}

/** Every acknowledged write appears exactly once, in revision order, and each prevKv is the key's previous event. */
export function assertStreamMatches(events: Event[], acked: AckedWrite[]): void {
  assertStrictlyIncreasing(events.map((e) => e.revision));
  const expected = [...acked].sort((a, b) => a.revision - b.revision);
  assert.deepEqual(
    events.map((e) => ({ revision: e.revision, key: e.kv.key, value: e.kv.value.toString() })),
    expected,
  );
  const last = new Map<string, KeyValue>();
  for (const event of events) {
    const previous = last.get(event.kv.key);
    if (previous) assert.deepEqual(event.prevKv, previous, `prevKv of revision ${event.revision}`);
    last.set(event.kv.key, event.kv);
  }
}

/**
 * A self-checking value of some KiB (the kill -9 test looks for torn values): JSON whose `sum`
 * is the SHA-256 of the rest.
 */
export function checkedValue(seq: number): Buffer {
  const pad = String(seq % 10).repeat(1024 * (1 + (seq % 32)));
  return Buffer.from(JSON.stringify({ seq, pad, sum: sha256(`${seq}:${pad}`) }));
}

/** The seq of a checkedValue, or an exception if the value is not one, whole and intact. */
export function verifyCheckedValue(value: Buffer): number {
  const { seq, pad, sum } = JSON.parse(value.toString()) as { seq: number; pad: string; sum: string };
  assert.equal(sum, sha256(`${seq}:${pad}`), `checksum of value ${seq}`);
  return seq;
}

export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
