// Runs the lease decisions of lease.ts against the store: exactly one replica sharing a store
// leads (runs the federation controller) at a time. The lease is one row written with
// compare-and-swap (the store's modRevision guard, on SQLite and MySQL alike); the holder renews
// it every retry period, followers read it as often and also watch it, so a release is noticed
// within the store's watch latency instead of a poll period.
import { performance } from 'node:perf_hooks';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from '../../common/log.js';
import { StoreError, type Store, type Watch } from '../store/types.js';
import {
  CONTROLLER_LEASE_KEY,
  decideLease,
  decodeLease,
  encodeLease,
  nextRecord,
  releasedRecord,
  validateLeaseTiming,
  type LeaseRecord,
  type LeaseTiming,
  type ObservedLease,
} from './lease.js';

export interface LeaderElectorOptions {
  store: Store;
  /** This replica's identity (--instance): unique among the replicas sharing the store. */
  identity: string;
  timing: LeaseTiming;
  log: Logger;
  metrics: Registry;
  /** Called when this replica becomes the leader. */
  startedLeading(): void;
  /** Called when it stops leading (lost the lease or stopping); the lease is released only after this resolves. */
  stoppedLeading(): Promise<void>;
  key?: string;
}

/** What the status page shows. */
export interface LeaseState {
  holder: string | null;
  leading: boolean;
  record: LeaseRecord | null;
}

type Change = 'acquired' | 'takeover' | 'lost' | 'released';

class LeaseMetrics {
  readonly leader: Gauge;
  readonly transitions: Counter<'change'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.leader = new Gauge({ name: 'fedtunnel_federation_controller_leader', help: '1 while this replica holds the controller lease and runs the federation controller, 0 otherwise', registers });
    this.transitions = new Counter({
      name: 'fedtunnel_federation_controller_lease_transitions_total',
      help: 'Controller lease changes seen by this replica: acquired (free lease), takeover (expired holder), lost (could not renew, or another replica won), released (clean stop)',
      labelNames: ['change'],
      registers,
    });
  }
}

export class LeaderElector {
  private readonly key: string;
  private readonly metrics: LeaseMetrics;
  private observed: ObservedLease | null = null;
  private leading = false;
  private timer: NodeJS.Timeout | null = null;
  /** Fires when the holder has not renewed for renewDeadlineMs: it stops leading even while a store call hangs. */
  private expiry: NodeJS.Timeout | null = null;
  private watch: Watch | null = null;
  private ticking: Promise<void> | null = null;
  private again = false;
  /** Leadership changes run one after another: a new term starts only after the last one stopped. */
  private transition: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly options: LeaderElectorOptions) {
    validateLeaseTiming(options.timing);
    this.key = options.key ?? CONTROLLER_LEASE_KEY;
    this.metrics = new LeaseMetrics(options.metrics);
    this.metrics.leader.set(0);
  }

  get isLeader(): boolean {
    return this.leading;
  }

  state(): LeaseState {
    const record = this.observed?.record ?? null;
    return { holder: record && record.holder !== '' ? record.holder : null, leading: this.leading, record };
  }

  start(): void {
    this.wake();
  }

  /** Stops campaigning; a leader stops its work (stoppedLeading) and then releases the lease so another replica takes over at once. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.clearTimers();
    this.watch?.cancel();
    this.watch = null;
    await this.ticking;
    if (this.leading) this.setLeading(false, 'released');
    await this.transition;
    // Also a lease won by a step that finished while stopping (never led): free it rather than let it expire.
    await this.release();
  }

  private clearTimers(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.expiry) clearTimeout(this.expiry);
    this.timer = this.expiry = null;
  }

  /** Runs one decision now (or right after the one in progress). */
  private wake(): void {
    if (this.stopped) return;
    if (this.ticking) {
      this.again = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.ticking = this.tick()
      .catch((err: unknown) => this.options.log.warn({ err: (err as Error).message }, 'controller lease: step failed; retrying'))
      .then((nextMs) => {
        this.ticking = null;
        if (this.stopped) return;
        if (this.again) {
          this.again = false;
          this.wake();
          return;
        }
        this.timer = setTimeout(() => this.wake(), nextMs ?? this.options.timing.retryPeriodMs);
      });
  }

  /** One read-decide-write step; returns when to look again. */
  private async tick(): Promise<number> {
    const { timing, identity } = this.options;
    if (!this.watch) this.startWatch(await this.options.store.currentRevision());
    const kv = await this.options.store.get(this.key);
    const now = performance.now();
    if (kv === null) this.observed = null;
    else if (this.observed?.modRevision !== kv.modRevision) this.observed = { record: decodeLease(kv.value), modRevision: kv.modRevision, observedAtMs: now };
    const action = decideLease(identity, this.observed, now);
    if (action.kind === 'wait') {
      if (this.leading) this.setLeading(false, 'lost');
      return Math.max(1, Math.min(timing.retryPeriodMs, action.afterMs));
    }
    const record = nextRecord(identity, this.observed?.record ?? null, timing, new Date());
    const sentAt = performance.now();
    try {
      const written =
        action.kind === 'create' ? await this.options.store.create(this.key, encodeLease(record)) : await this.options.store.update(this.key, encodeLease(record), action.expectedModRevision);
      this.observed = { record, modRevision: written.modRevision, observedAtMs: performance.now() };
      if (this.stopped) return timing.retryPeriodMs; // stop() releases what we just wrote (guarded by this revision)
      this.renewed(sentAt);
      if (!this.leading) {
        this.setLeading(true, action.kind === 'acquire' && action.takeover ? 'takeover' : 'acquired');
        this.options.log.info({ holder: identity, transitions: record.transitions }, 'controller lease acquired: this replica runs the federation controller');
      }
      return timing.retryPeriodMs;
    } catch (err) {
      if (err instanceof StoreError && (err.code === 'CONFLICT' || err.code === 'ALREADY_EXISTS' || err.code === 'NOT_FOUND')) {
        // Another replica wrote first: read again at once (and stop leading if it took our lease).
        if (this.leading) this.setLeading(false, 'lost');
        return 1;
      }
      // The store is unreachable: keep trying; a leader stops at its renew deadline (expiry timer).
      this.options.log.warn({ err: (err as Error).message, code: (err as StoreError).code }, 'controller lease: store write failed');
      return timing.retryPeriodMs;
    }
  }

  /** A follower wakes on every write to the lease (a release is seen within the watch latency). */
  private startWatch(from: number): void {
    if (this.watch || this.stopped) return;
    const watch = this.options.store.watch(
      this.key,
      from,
      (e) => {
        // Our own writes (renewals, our acquisition) are not news: waking on them would renew in a
        // tight loop (the SQLite store delivers a write's event before the write returns). A leader
        // needs no wake at all: a takeover can only follow its renew deadline, which its timers own.
        if (e.kv.key !== this.key || this.leading || this.writtenByUs(e.kv.value)) return;
        this.wake();
      },
      () => {
        // Compacted or unavailable: the periodic read carries on; the next step watches again.
        if (this.watch === watch) this.watch = null;
      },
    );
    this.watch = watch;
  }

  private writtenByUs(value: Buffer): boolean {
    try {
      return decodeLease(value).holder === this.options.identity;
    } catch {
      return false;
    }
  }

  private renewed(sentAt: number): void {
    if (this.expiry) clearTimeout(this.expiry);
    const left = Math.max(1, sentAt + this.options.timing.renewDeadlineMs - performance.now());
    this.expiry = setTimeout(() => {
      this.expiry = null;
      if (!this.leading || this.stopped) return;
      this.options.log.warn({ renewDeadlineMs: this.options.timing.renewDeadlineMs }, 'controller lease: not renewed within the deadline; stopping the controller');
      this.setLeading(false, 'lost');
    }, left);
  }

  private setLeading(leading: boolean, change: Change): void {
    if (this.leading === leading) return;
    this.leading = leading;
    this.metrics.leader.set(leading ? 1 : 0);
    this.metrics.transitions.inc({ change });
    if (!leading && this.expiry) {
      clearTimeout(this.expiry);
      this.expiry = null;
    }
    if (leading) {
      this.transition = this.transition.then(() => {
        // Lost again before the previous term finished stopping: do not start.
        if (this.leading) this.options.startedLeading();
      });
    } else {
      if (change === 'lost') this.options.log.warn({ holder: this.observed?.record.holder }, 'controller lease lost: stopping the federation controller');
      this.transition = this.transition.then(() => this.options.stoppedLeading()).catch((err: unknown) => this.options.log.error({ err: (err as Error).message }, 'controller lease: stopping the controller failed'));
    }
  }

  /** Writes the lease free (guarded by our last write), so a follower takes it over without waiting out the duration. */
  private async release(): Promise<void> {
    const observed = this.observed;
    if (!observed || observed.record.holder !== this.options.identity) return;
    try {
      await this.options.store.update(this.key, encodeLease(releasedRecord(observed.record, new Date())), observed.modRevision);
      this.options.log.info('controller lease released');
    } catch (err) {
      // Taken over meanwhile, or the store is down: the lease expires by itself.
      this.options.log.warn({ err: (err as Error).message }, 'controller lease: release failed; it expires after its duration');
    }
  }
}
