import { strict as assert } from 'node:assert';
import { clusterConditions, HealthTracker, withTenantMismatch } from '../../../federation/controller/health.js';

describe('federation/controller: cluster health', function () {
  const thresholds = { failureThreshold: 3, successThreshold: 1 };

  it('decides on the first probe, then needs failureThreshold failures to leave Ready', function () {
    const h = new HealthTracker(thresholds);
    assert.equal(h.probed({ ok: true }).phase, 'Ready');
    assert.equal(h.probed({ ok: false, reachable: false }).phase, 'Ready');
    assert.equal(h.probed({ ok: false, reachable: false }).phase, 'Ready');
    const down = h.probed({ ok: false, reachable: false, message: 'DIAL_TIMEOUT' });
    assert.equal(down.phase, 'Offline');
    assert.equal(down.reason, 'ClusterNotReachable');
    assert.match(down.message, /DIAL_TIMEOUT/);
    assert.equal(h.probed({ ok: true }).phase, 'Ready', 'successThreshold 1');
  });

  it('counts successes against successThreshold when not Ready but reachable', function () {
    const h = new HealthTracker({ failureThreshold: 1, successThreshold: 2 });
    h.probed({ ok: true });
    assert.equal(h.probed({ ok: false, reachable: true }).phase, 'NotReady');
    assert.equal(h.probed({ ok: true }).phase, 'NotReady');
    assert.equal(h.probed({ ok: true }).phase, 'Ready');
  });

  it('goes Offline at once when the last agent link drops, whatever the thresholds', function () {
    const h = new HealthTracker(thresholds);
    h.probed({ ok: true });
    const s = h.linkLost();
    assert.equal(s.phase, 'Offline');
    assert.match(s.message, /no agent link/);
    assert.equal(h.probed({ ok: true }).phase, 'Ready', 'one good probe after the link returns');
  });

  it('builds KubeFed conditions and moves a transition time only when the status changes', function () {
    const h = new HealthTracker(thresholds);
    const ready = clusterConditions(h.probed({ ok: true }), [], 't1');
    assert.deepEqual(
      ready.map((c) => [c.type, c.status, c.reason]),
      [
        ['Ready', 'True', 'ClusterReady'],
        ['Offline', 'False', 'ClusterReachable'],
      ],
    );
    const again = clusterConditions(h.current, ready, 't2');
    assert.equal(again[0]!.lastTransitionTime, 't1');
    assert.equal(again[0]!.lastProbeTime, 't2');
    const offline = clusterConditions(h.linkLost(), again, 't3');
    assert.deepEqual(offline.map((c) => [c.type, c.status, c.lastTransitionTime]), [
      ['Ready', 'Unknown', 't3'],
      ['Offline', 'True', 't3'],
    ]);
    const malformed = clusterConditions(h.malformed('secret has no token'), offline, 't4');
    assert.deepEqual(malformed.map((c) => c.type), ['Ready', 'ConfigMalformed']);
    assert.equal(malformed[1]!.message, 'secret has no token');
  });

  it('a tenant mismatch makes Ready False (reason TenantMismatch) whatever the probes say, keeping the other conditions', function () {
    const healthy = clusterConditions({ phase: 'Ready', reason: 'ClusterReady', message: 'ok' }, [], 't0');
    const mismatched = withTenantMismatch(healthy, healthy, 'label says retail, certificate payments', 't1');
    const ready = mismatched.find((c) => c.type === 'Ready')!;
    assert.deepEqual({ status: ready.status, reason: ready.reason, message: ready.message, lastTransitionTime: ready.lastTransitionTime }, { status: 'False', reason: 'TenantMismatch', message: 'label says retail, certificate payments', lastTransitionTime: 't1' });
    assert.deepEqual(mismatched.find((c) => c.type === 'Offline')?.status, 'False');
    // Still mismatched later: the transition time stays.
    assert.equal(withTenantMismatch(healthy, mismatched, 'm', 't2').find((c) => c.type === 'Ready')!.lastTransitionTime, 't1');
  });
});
