// One poll loop per Store instance, shared by all its watchers. The loop follows the log by
// revision ("rows with id > head"); that is gap-free only because both backends commit writes in
// revision order (see the revision counter in sqlite.ts / mysql.ts), so once a revision is visible
// every lower one is too. A local write wakes the loop at once; writes by other processes are
// picked up by the periodic poll.
import { eventOf, inRange, keyRange, type KeyRange, type LogRow } from './log.js';
import { StoreError, type Event, type Watch } from './types.js';

export interface LogPage {
  /** Rows in revision order. */
  rows: LogRow[];
  /** Read in the same snapshot as the rows: if above `after`, some rows may be missing. */
  compactedRevision: number;
}

/** What the hub needs from a backend. */
export interface LogReader {
  currentRevision(): Promise<number>;
  /** Rows with after < id (≤ upTo if given, key in range if given), at most `limit`, ascending. */
  readLog(after: number, limit: number, filter?: { range: KeyRange; upTo: number }): Promise<LogPage>;
}

export interface WatchHubOptions {
  /** How often to look for writes made by other processes; null: only local writes wake it. */
  pollIntervalMs: number | null;
  /** Rows read per query. */
  batchSize: number;
}

interface Watcher {
  range: KeyRange;
  /** Every event up to this revision has been delivered (or was not wanted). */
  position: number;
  /** position has reached the hub's head: the watcher now takes part in the shared tail read. */
  caughtUp: boolean;
  active: boolean;
  onEvent: (e: Event) => void;
  onError: (e: StoreError) => void;
}

export class WatchHub {
  private readonly watchers = new Set<Watcher>();
  /** The shared tail position: all caught-up watchers have seen every row up to it. */
  private head: number | null = null;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | null = null;
  private rerun = false;
  private closed = false;

  constructor(
    private readonly log: LogReader,
    private readonly options: WatchHubOptions,
  ) {}

  watch(prefix: string, fromRevision: number, onEvent: (e: Event) => void, onError: (e: StoreError) => void): Watch {
    if (!Number.isSafeInteger(fromRevision) || fromRevision < 0) throw new RangeError(`invalid revision ${fromRevision}`);
    const watcher: Watcher = { range: keyRange(prefix), position: fromRevision, caughtUp: false, active: true, onEvent, onError };
    if (this.closed) {
      queueMicrotask(() => this.fail(watcher, new StoreError('UNAVAILABLE', 'store is closed')));
    } else {
      // Without watchers the loop stops and head goes stale: the next first watcher starts the
      // shared tail at the then-current revision instead of replaying everything since.
      if (this.watchers.size === 0 && !this.running) this.head = null;
      this.watchers.add(watcher);
      this.wake();
    }
    return {
      cancel: () => {
        watcher.active = false;
        this.watchers.delete(watcher);
      },
    };
  }

  /** Reads new rows now (called after every local commit, and by the poll timer). */
  wake(): void {
    if (this.closed || this.watchers.size === 0) return;
    if (this.running) {
      this.rerun = true;
      return;
    }
    clearTimeout(this.timer);
    this.timer = undefined;
    this.running = this.runTicks();
  }

  /** Ends every watch with 'UNAVAILABLE' and waits for a read in progress to finish. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
    for (const watcher of [...this.watchers]) this.fail(watcher, new StoreError('UNAVAILABLE', 'store is closed'));
  }

  private async runTicks(): Promise<void> {
    try {
      do {
        this.rerun = false;
        if (await this.tick()) this.rerun = true;
      } while (this.rerun && !this.closed);
    } finally {
      this.running = null;
      this.schedulePoll();
    }
  }

  private schedulePoll(): void {
    if (this.closed || this.watchers.size === 0 || this.options.pollIntervalMs === null) return;
    this.timer = setTimeout(() => this.wake(), this.options.pollIntervalMs);
    this.timer.unref();
  }

  /** One round: catch new watchers up to head, then read past head for everyone. True if more rows wait. */
  private async tick(): Promise<boolean> {
    if (this.watchers.size === 0) return false;
    try {
      this.head ??= await this.log.currentRevision();
      for (const watcher of [...this.watchers]) {
        if (!watcher.caughtUp) await this.catchUp(watcher, this.head);
      }
      return await this.readTail();
    } catch (err) {
      const error = err instanceof StoreError ? err : new StoreError('UNAVAILABLE', `watch read failed: ${String(err)}`);
      for (const watcher of [...this.watchers]) this.fail(watcher, error);
      this.head = null;
      return false;
    }
  }

  /** Replays a new watcher's history up to head, reading only its own key range. */
  private async catchUp(watcher: Watcher, head: number): Promise<void> {
    while (watcher.active && watcher.position < head) {
      const page = await this.log.readLog(watcher.position, this.options.batchSize, { range: watcher.range, upTo: head });
      if (page.compactedRevision > watcher.position) {
        this.fail(watcher, compactedError(watcher.position, page.compactedRevision));
        return;
      }
      for (const row of page.rows) this.deliver(watcher, row, eventOf(row));
      if (page.rows.length < this.options.batchSize) watcher.position = head;
    }
    watcher.caughtUp = true;
  }

  private async readTail(): Promise<boolean> {
    const head = this.head!;
    const page = await this.log.readLog(head, this.options.batchSize);
    // Only watchers caught up before this read: one added meanwhile still needs its history first.
    const watchers = [...this.watchers].filter((w) => w.caughtUp);
    for (const watcher of watchers) {
      if (page.compactedRevision > watcher.position) this.fail(watcher, compactedError(watcher.position, page.compactedRevision));
    }
    for (const row of page.rows) {
      let event: Event | undefined;
      for (const watcher of watchers) {
        if (watcher.active && row.id > watcher.position && inRange(row.name, watcher.range)) {
          this.deliver(watcher, row, (event ??= eventOf(row)));
        }
      }
      this.head = row.id;
    }
    for (const watcher of watchers) watcher.position = Math.max(watcher.position, this.head!);
    return page.rows.length === this.options.batchSize;
  }

  private deliver(watcher: Watcher, row: LogRow, event: Event): void {
    if (!watcher.active) return;
    watcher.position = row.id;
    this.invoke(watcher, () => watcher.onEvent(event));
  }

  private fail(watcher: Watcher, error: StoreError): void {
    if (!watcher.active) return;
    watcher.active = false;
    this.watchers.delete(watcher);
    this.invoke(watcher, () => watcher.onError(error));
  }

  /**
   * A callback that throws is a bug in the consumer, not a store failure: its watch ends and the
   * exception is rethrown outside the loop (like a throwing timer callback), so other watchers go on.
   */
  private invoke(watcher: Watcher, callback: () => void): void {
    try {
      callback();
    } catch (err) {
      watcher.active = false;
      this.watchers.delete(watcher);
      queueMicrotask(() => {
        throw err;
      });
    }
  }
}

function compactedError(position: number, compacted: number): StoreError {
  return new StoreError('COMPACTED', `watch from revision ${position} needs history compacted up to ${compacted}`);
}
