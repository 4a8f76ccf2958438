// The controller lease decisions (pure): who creates, renews, takes over or waits, and when a
// holder must stop leading — on local clocks only.
import { strict as assert } from 'node:assert';
import { decideLease, decodeLease, encodeLease, leaseTimingFor, nextRecord, releasedRecord, stillLeading, validateLeaseTiming, type LeaseRecord, type ObservedLease } from '../../../federation/controller/lease.js';

const timing = leaseTimingFor(6_000);
const record = (holder: string, transitions = 0): LeaseRecord => ({ holder, leaseDurationMs: 6_000, acquireTime: 't0', renewTime: 't1', transitions });
const seen = (holder: string, observedAtMs: number, modRevision = 7): ObservedLease => ({ record: record(holder), modRevision, observedAtMs });

describe('controller lease: decisions', function () {
  it('no lease row: create it', function () {
    assert.deepEqual(decideLease('a', null, 0), { kind: 'create' });
  });

  it('the holder renews, guarded by the revision it read', function () {
    assert.deepEqual(decideLease('a', seen('a', 0), 100_000), { kind: 'renew', expectedModRevision: 7 });
  });

  it('a released lease is acquired at once, not as a takeover', function () {
    assert.deepEqual(decideLease('b', seen('', 1_000), 1_001), { kind: 'acquire', expectedModRevision: 7, takeover: false });
  });

  it('a live lease of another replica: wait until it would go stale, counted from when it was seen', function () {
    assert.deepEqual(decideLease('b', seen('a', 1_000), 3_000), { kind: 'wait', afterMs: 4_000 });
  });

  it('unchanged for a full duration on the follower\'s clock: take over', function () {
    assert.deepEqual(decideLease('b', seen('a', 1_000), 7_000), { kind: 'acquire', expectedModRevision: 7, takeover: true });
    assert.equal(decideLease('b', seen('a', 1_000), 6_999).kind, 'wait');
  });

  it('a holder stops leading before any follower may take over: renew deadline < duration', function () {
    // Renewal sent at 0 (committed, and seen by a follower, no earlier than that).
    assert.equal(stillLeading(0, timing.renewDeadlineMs - 1, timing), true);
    assert.equal(stillLeading(0, timing.renewDeadlineMs, timing), false);
    assert.ok(timing.renewDeadlineMs < timing.leaseDurationMs);
    assert.ok(timing.retryPeriodMs < timing.renewDeadlineMs);
  });

  it('timing that could let two replicas lead is refused', function () {
    assert.throws(() => validateLeaseTiming({ leaseDurationMs: 1_000, renewDeadlineMs: 1_000, retryPeriodMs: 100 }), RangeError);
    assert.throws(() => validateLeaseTiming({ leaseDurationMs: 1_000, renewDeadlineMs: 500, retryPeriodMs: 500 }), RangeError);
    validateLeaseTiming(timing);
  });

  it('records: a renewal keeps acquireTime and transitions; a new holder counts a transition; a release frees it', function () {
    const now = new Date('2026-01-01T00:00:00Z');
    const first = nextRecord('a', null, timing, now);
    assert.deepEqual(first, { holder: 'a', leaseDurationMs: 6_000, acquireTime: now.toISOString(), renewTime: now.toISOString(), transitions: 0 });
    const later = new Date('2026-01-01T00:00:02Z');
    const renewed = nextRecord('a', first, timing, later);
    assert.equal(renewed.acquireTime, first.acquireTime);
    assert.equal(renewed.renewTime, later.toISOString());
    assert.equal(renewed.transitions, 0);
    const released = releasedRecord(renewed, later);
    assert.equal(released.holder, '');
    const taken = nextRecord('b', released, timing, later);
    assert.equal(taken.holder, 'b');
    assert.equal(taken.transitions, 1);
    assert.equal(taken.acquireTime, later.toISOString());
  });

  it('decoding: a round trip, and a row that is not a lease reads as released (it can be overwritten)', function () {
    const r = record('a', 3);
    assert.deepEqual(decodeLease(encodeLease(r)), r);
    for (const junk of ['', 'null', '{"holder":5}', '{"holder":"a","leaseDurationMs":0}', '\u0000\u0001']) {
      const d = decodeLease(Buffer.from(junk));
      assert.equal(d.holder, '', junk);
      assert.equal(decideLease('b', { record: d, modRevision: 1, observedAtMs: 0 }, 0).kind, 'acquire');
    }
  });
});
