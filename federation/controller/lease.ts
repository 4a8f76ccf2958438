// The controller's leader lease, pure: what a replica should do with the lease record it last read
// from the store. Like client-go's leader election, a follower never compares its clock with the
// holder's (replicas' clocks may disagree): it times how long the record has stayed unchanged on
// its own clock, and takes the lease over only after a full lease duration of silence. The holder
// times its renewals from the moment it *sent* them, so it stops leading before any follower can
// have seen its last renewal go stale (renewDeadline < leaseDuration).

/** The lease as stored (JSON under LEASE_KEY). Times are informative (status page); decisions use local clocks. */
export interface LeaseRecord {
  /** The replica that leads; '' after a clean release (anyone may take it at once). */
  holder: string;
  leaseDurationMs: number;
  /** ISO time the holder acquired / last renewed the lease (its own clock). */
  acquireTime: string;
  renewTime: string;
  /** How often the lease changed hands. */
  transitions: number;
}

/** The store key of the federation controller's lease (outside /registry/: not an API object). */
export const CONTROLLER_LEASE_KEY = '/fedtunnel/leases/federation-controller';

export interface LeaseTiming {
  /** A lease not renewed for this long (as seen by a follower) may be taken over. */
  leaseDurationMs: number;
  /** The holder stops leading when it could not renew for this long (< leaseDurationMs). */
  renewDeadlineMs: number;
  /** How often the holder renews and followers look at the lease. */
  retryPeriodMs: number;
}

export const DEFAULT_LEASE_TIMING: LeaseTiming = { leaseDurationMs: 6_000, renewDeadlineMs: 4_000, retryPeriodMs: 1_500 };

export function validateLeaseTiming(t: LeaseTiming): void {
  if (!(t.retryPeriodMs > 0 && t.retryPeriodMs < t.renewDeadlineMs && t.renewDeadlineMs < t.leaseDurationMs)) {
    throw new RangeError(`lease timing must satisfy 0 < retry period (${t.retryPeriodMs} ms) < renew deadline (${t.renewDeadlineMs} ms) < lease duration (${t.leaseDurationMs} ms)`);
  }
}

/** What this replica last read: the record, its store revision, and when (local monotonic ms) that revision was first seen. */
export interface ObservedLease {
  record: LeaseRecord;
  modRevision: number;
  observedAtMs: number;
}

export type LeaseAction =
  /** No lease row yet: create it (ALREADY_EXISTS means someone else was faster). */
  | { kind: 'create' }
  /** We hold it: write a renewal guarded by the revision we read. */
  | { kind: 'renew'; expectedModRevision: number }
  /** Free (released) or expired: write ourselves in, guarded by the revision we read. */
  | { kind: 'acquire'; expectedModRevision: number; takeover: boolean }
  /** Someone else holds a live lease: look again in `afterMs`. */
  | { kind: 'wait'; afterMs: number };

/**
 * The next step for replica `me` at local time `nowMs`, given what it last read (null: no lease
 * row). A record unchanged since `observedAtMs` for a full duration is stale: its holder is dead
 * or cut off (and has stopped leading, see renewDeadlineMs).
 */
export function decideLease(me: string, observed: ObservedLease | null, nowMs: number): LeaseAction {
  if (observed === null) return { kind: 'create' };
  const { record, modRevision, observedAtMs } = observed;
  if (record.holder === me) return { kind: 'renew', expectedModRevision: modRevision };
  if (record.holder === '') return { kind: 'acquire', expectedModRevision: modRevision, takeover: false };
  const staleAt = observedAtMs + record.leaseDurationMs;
  if (nowMs >= staleAt) return { kind: 'acquire', expectedModRevision: modRevision, takeover: true };
  return { kind: 'wait', afterMs: staleAt - nowMs };
}

/**
 * Whether the holder may still act as leader: its last successful renewal was *sent* less than
 * renewDeadlineMs ago. A follower waits leaseDurationMs from when it saw that renewal committed,
 * which is later than it was sent, so the two never lead at once (given renewDeadline < duration).
 */
export function stillLeading(lastRenewSentAtMs: number, nowMs: number, timing: LeaseTiming): boolean {
  return nowMs - lastRenewSentAtMs < timing.renewDeadlineMs;
}

/** The record a replica writes when it creates, renews or acquires the lease. */
export function nextRecord(me: string, previous: LeaseRecord | null, timing: LeaseTiming, now: Date): LeaseRecord {
  const iso = now.toISOString();
  const keeps = previous !== null && previous.holder === me;
  return {
    holder: me,
    leaseDurationMs: timing.leaseDurationMs,
    acquireTime: keeps ? previous.acquireTime : iso,
    renewTime: iso,
    // A release ('') followed by a new holder counts as a transition too.
    transitions: (previous?.transitions ?? 0) + (previous !== null && !keeps ? 1 : 0),
  };
}

/** The record a holder writes on a clean stop: nobody holds it, a follower may take it at once. */
export function releasedRecord(previous: LeaseRecord, now: Date): LeaseRecord {
  return { ...previous, holder: '', renewTime: now.toISOString() };
}

export function encodeLease(record: LeaseRecord): Buffer {
  return Buffer.from(JSON.stringify(record));
}

/** Parses a stored lease; a row that is not a lease (hand-edited, corrupt) reads as released, so it can be overwritten. */
export function decodeLease(value: Buffer): LeaseRecord {
  try {
    const v = JSON.parse(value.toString('utf8')) as Partial<LeaseRecord>;
    if (typeof v.holder === 'string' && typeof v.leaseDurationMs === 'number' && v.leaseDurationMs > 0) {
      return { holder: v.holder, leaseDurationMs: v.leaseDurationMs, acquireTime: String(v.acquireTime ?? ''), renewTime: String(v.renewTime ?? ''), transitions: Number(v.transitions ?? 0) || 0 };
    }
  } catch {
    // fall through: unreadable
  }
  return { holder: '', leaseDurationMs: 1, acquireTime: '', renewTime: '', transitions: 0 };
}

/** Timing from one duration (--controller-lease-duration): renew deadline ⅔ of it, a step every quarter. */
export function leaseTimingFor(leaseDurationMs: number): LeaseTiming {
  return { leaseDurationMs, renewDeadlineMs: Math.round((leaseDurationMs * 2) / 3), retryPeriodMs: Math.max(1, Math.round(leaseDurationMs / 4)) };
}
