// An informer: list, then watch from the list's revision, keeping a cache of objects by key and
// telling handlers what changed. A watch that ends (compaction, a member restart, a dropped
// tunnel stream) is followed by a new list after a backoff; the relist reports the differences as
// events, so nothing is missed. The same class serves the federation side (in-process watches) and
// member clusters (watches through the tunnel).
import type { KubeObject } from '../apiserver/storage.js';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK';

export interface ListWatch {
  list(): Promise<{ items: KubeObject[]; resourceVersion: string }>;
  /** Watches after `resourceVersion`; onEnd is called once when the watch stops for any reason but stop(). */
  watch(resourceVersion: string, onEvent: (type: WatchEventType, obj: KubeObject) => void, onEnd: (err?: Error) => void): { stop(): void };
}

export interface InformerHandlers {
  added?(obj: KubeObject): void;
  updated?(obj: KubeObject, old: KubeObject): void;
  deleted?(obj: KubeObject): void;
  /** The first list is in the cache. */
  synced?(): void;
  /** A list or watch failed (the informer retries by itself). */
  failed?(err: Error): void;
}

export function objectKeyOf(obj: KubeObject): string {
  const { namespace, name } = obj.metadata;
  return namespace ? `${namespace}/${name}` : `${name}`;
}

export class Informer {
  private readonly cache = new Map<string, KubeObject>();
  private watch: { stop(): void } | null = null;
  private retry: NodeJS.Timeout | null = null;
  private stopped = false;
  private failures = 0;
  private synced = false;

  constructor(
    private readonly source: ListWatch,
    private readonly handlers: InformerHandlers,
    private readonly backoff = { baseMs: 100, maxMs: 10_000 },
  ) {}

  get hasSynced(): boolean {
    return this.synced;
  }

  get(key: string): KubeObject | undefined {
    return this.cache.get(key);
  }

  list(): KubeObject[] {
    return [...this.cache.values()];
  }

  start(): void {
    void this.relist();
  }

  stop(): void {
    this.stopped = true;
    this.watch?.stop();
    this.watch = null;
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
  }

  /** Relists now if the informer is waiting out a backoff (e.g. its cluster just became reachable again). */
  retryNow(): void {
    if (this.stopped || !this.retry) return;
    clearTimeout(this.retry);
    this.retry = null;
    this.failures = 0;
    void this.relist();
  }

  private async relist(): Promise<void> {
    if (this.stopped) return;
    let listed;
    try {
      listed = await this.source.list();
    } catch (err) {
      this.handlers.failed?.(err as Error);
      return this.scheduleRelist();
    }
    if (this.stopped) return;
    const seen = new Set<string>();
    for (const obj of listed.items) {
      const key = objectKeyOf(obj);
      seen.add(key);
      this.apply('ADDED', obj);
    }
    for (const [key, old] of [...this.cache]) {
      if (!seen.has(key)) {
        this.cache.delete(key);
        this.handlers.deleted?.(old);
      }
    }
    if (!this.synced) {
      this.synced = true;
      this.handlers.synced?.();
    }
    this.startWatch(listed.resourceVersion);
    this.failures = 0;
  }

  /**
   * Watches from `resourceVersion`. A watch the server simply ends (its timeout, a hub restart of
   * the stream) resumes from the last version seen, bookmarks included, without a relist; any
   * failure (expired version, broken stream) relists after a backoff.
   */
  private startWatch(resourceVersion: string, quietEnds = 0): void {
    let ended = false;
    let last = resourceVersion;
    let events = 0;
    this.watch = this.source.watch(
      resourceVersion,
      (type, obj) => {
        if (ended || this.stopped) return;
        events++;
        if (obj.metadata?.resourceVersion) last = obj.metadata.resourceVersion;
        this.apply(type, obj);
      },
      (err) => {
        if (ended || this.stopped) return;
        ended = true;
        this.watch = null;
        // A server that keeps ending watches at once, silently, is failing: back off and relist.
        const quiet = events === 0 ? quietEnds + 1 : 0;
        if (err || quiet >= 3) {
          if (err) this.handlers.failed?.(err);
          this.scheduleRelist();
        } else this.startWatch(last, quiet);
      },
    );
  }

  private scheduleRelist(): void {
    if (this.stopped) return;
    const delay = Math.min(this.backoff.maxMs, this.backoff.baseMs * 2 ** this.failures++);
    this.retry = setTimeout(() => {
      this.retry = null;
      void this.relist();
    }, delay);
  }

  private apply(type: WatchEventType, obj: KubeObject): void {
    if (type === 'BOOKMARK') return;
    const key = objectKeyOf(obj);
    const old = this.cache.get(key);
    if (type === 'DELETED') {
      if (!old) return;
      this.cache.delete(key);
      this.handlers.deleted?.(obj);
      return;
    }
    if (old && old.metadata.resourceVersion === obj.metadata.resourceVersion) return;
    this.cache.set(key, obj);
    if (old) this.handlers.updated?.(obj, old);
    else this.handlers.added?.(obj);
  }
}
