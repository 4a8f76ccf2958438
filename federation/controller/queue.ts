// A rate-limited work queue in the client-go mould: a key is queued at most once, a key being
// processed is never handed to a second worker (re-adds while it runs are kept and run after it),
// failed keys come back after a per-key exponential backoff, and N workers drain it.
export interface QueueOptions {
  baseDelayMs?: number;
  maxDelayMs?: number;
}

export type Handler<K> = (key: K) => Promise<void>;

export class WorkQueue<K> {
  private readonly queue: K[] = [];
  private readonly queued = new Set<K>();
  private readonly processing = new Set<K>();
  /** Re-added while processing: queued again when the worker finishes. */
  private readonly dirty = new Set<K>();
  private readonly failures = new Map<K, number>();
  private readonly delayed = new Map<K, NodeJS.Timeout>();
  private readonly waiters: Array<() => void> = [];
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private stopped = false;

  constructor(options: QueueOptions = {}) {
    this.baseDelayMs = options.baseDelayMs ?? 5;
    this.maxDelayMs = options.maxDelayMs ?? 30_000;
  }

  /** Keys waiting (not counting those in a worker or in backoff). */
  get depth(): number {
    return this.queue.length;
  }

  get isShutDown(): boolean {
    return this.stopped;
  }

  add(key: K): void {
    if (this.stopped) return;
    const timer = this.delayed.get(key);
    if (timer) {
      clearTimeout(timer);
      this.delayed.delete(key);
    }
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.queue.push(key);
    this.waiters.shift()?.();
  }

  /** Queues `key` after `ms` (an earlier add wins; a later addAfter does not postpone it). */
  addAfter(key: K, ms: number): void {
    if (this.stopped || this.delayed.has(key) || this.queued.has(key)) return;
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    timer.unref();
    this.delayed.set(key, timer);
  }

  /** Queues `key` after its backoff: base × 2^(failures), capped. Returns the delay. */
  addRateLimited(key: K): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const delay = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** n);
    this.addAfter(key, delay);
    return delay;
  }

  /** The key succeeded: its backoff starts over. */
  forget(key: K): void {
    this.failures.delete(key);
  }

  failureCount(key: K): number {
    return this.failures.get(key) ?? 0;
  }

  private async next(): Promise<K | undefined> {
    while (!this.stopped) {
      const key = this.queue.shift();
      if (key !== undefined) {
        this.queued.delete(key);
        this.processing.add(key);
        return key;
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    return undefined;
  }

  private done(key: K): void {
    this.processing.delete(key);
    if (this.dirty.delete(key)) this.add(key);
  }

  /** Runs `concurrency` workers until shutDown(); a handler that throws is logged by onError and the key backs off. */
  run(concurrency: number, handler: Handler<K>, onError: (key: K, err: unknown) => void): Promise<void> {
    const worker = async (): Promise<void> => {
      for (;;) {
        const key = await this.next();
        if (key === undefined) return;
        try {
          await handler(key);
        } catch (err) {
          onError(key, err);
          this.done(key);
          this.addRateLimited(key);
          continue;
        }
        this.done(key);
      }
    };
    return Promise.all(Array.from({ length: concurrency }, worker)).then(() => undefined);
  }

  shutDown(): void {
    this.stopped = true;
    for (const timer of this.delayed.values()) clearTimeout(timer);
    this.delayed.clear();
    this.queue.length = 0;
    this.queued.clear();
    for (const wake of this.waiters.splice(0)) wake();
  }
}
