import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import type { KubeObject } from '../../../federation/apiserver/storage.js';
import { desiredObject } from '../../../federation/controller/desired.js';
import {
  appliedIn,
  applyChanges,
  recordOf,
  revisionOf,
  rolloutFor,
  snapshotOf,
  withSnapshot,
  type RecordChange,
  type VersionRecord,
} from '../../../federation/controller/rollout.js';
import { federatedStatus } from '../../../federation/controller/status.js';
import type { TargetType } from '../../../federation/kubefed/api.js';

const CONFIGMAP: TargetType = { group: '', version: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespaced: true };

function fed(data: Record<string, string>, extra: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: 'types.kubefed.io/v1beta1',
    kind: 'FederatedConfigMap',
    metadata: { name: 'cfg', namespace: 'shop', generation: 1 },
    spec: { template: { data }, placement: { clusters: [{ name: 'east' }, { name: 'west' }] }, overrides: [{ clusterName: 'west', clusterOverrides: [{ path: '/data/region', op: 'add', value: 'west' }] }], ...extra },
  };
}

const EMPTY: VersionRecord = { clusterVersions: [], revisions: [] };

describe('federation/controller: gray release (revisions, rollout, applied-revision record)', function () {
  it('a revision changes with the template or the overrides, not with placement or the mask', function () {
    const base = revisionOf(snapshotOf(fed({ color: 'blue' })));
    assert.notEqual(revisionOf(snapshotOf(fed({ color: 'red' }))), base);
    assert.notEqual(revisionOf(snapshotOf(fed({ color: 'blue' }, { overrides: [] }))), base);
    assert.equal(revisionOf(snapshotOf(fed({ color: 'blue' }, { placement: { clusters: [] }, placementMask: { cells: [{ name: 'cell-a' }] } }))), base);
  });

  it('a snapshot re-applied gives exactly the member content of its revision, for every cluster', function () {
    const old = fed({ color: 'blue' });
    const now = fed({ color: 'red' }, { overrides: [] });
    for (const cluster of ['east', 'west']) {
      assert.deepEqual(desiredObject(withSnapshot(now, snapshotOf(old)), CONFIGMAP, cluster), desiredObject(old, CONFIGMAP, cluster));
    }
    // Spec fields other than template and overrides stay the current ones.
    assert.deepEqual((withSnapshot(now, snapshotOf(old)).spec as Record<string, unknown>).placement, (now.spec as Record<string, unknown>).placement);
  });

  it('rollout: inside the mask current; outside the recorded revision; with nothing recorded, nothing', function () {
    const base = { currentRevision: 'r2', memberIsCurrent: false };
    assert.deepEqual(rolloutFor({ ...base, inMask: true, applied: { revision: 'r1', snapshotKept: true } }), { mode: 'current' });
    assert.deepEqual(rolloutFor({ ...base, inMask: false, applied: { revision: 'r1', snapshotKept: true } }), { mode: 'held', revision: 'r1' });
    assert.deepEqual(rolloutFor({ ...base, inMask: false, applied: { revision: 'r2', snapshotKept: true } }), { mode: 'current' });
    assert.deepEqual(rolloutFor({ ...base, inMask: false }), { mode: 'withheld' });
    assert.deepEqual(rolloutFor({ ...base, inMask: false, applied: { revision: 'r1', snapshotKept: false } }), { mode: 'withheld' });
    // The member already has the current content (write landed, record did not): current, never rolled back.
    assert.deepEqual(rolloutFor({ ...base, inMask: false, memberIsCurrent: true, applied: { revision: 'r1', snapshotKept: true } }), { mode: 'current' });
  });

  it('rollout never hands the current revision to a cluster outside the mask that does not already have it (property)', function () {
    fc.assert(
      fc.property(fc.boolean(), fc.constantFrom('r1', 'r2', undefined), fc.boolean(), fc.boolean(), (inMask, appliedRev, kept, memberIsCurrent) => {
        const r = rolloutFor({ inMask, currentRevision: 'r2', applied: appliedRev ? { revision: appliedRev, snapshotKept: kept } : undefined, memberIsCurrent });
        if (r.mode === 'current') assert.ok(inMask || memberIsCurrent || appliedRev === 'r2');
        if (r.mode === 'held') assert.equal(r.revision, appliedRev);
      }),
    );
  });

  it('the record keeps one snapshot per held revision, sorted clusters, and prunes what no cluster holds', function () {
    const s1 = snapshotOf(fed({ color: 'blue' }));
    const s2 = snapshotOf(fed({ color: 'red' }));
    let rec = applyChanges(EMPTY, [
      { kind: 'applied', cluster: 'west', version: 'h-w1', revision: 'r1', snapshot: s1 },
      { kind: 'applied', cluster: 'east', version: 'h-e1', revision: 'r1', snapshot: s1 },
      { kind: 'applied', cluster: 'north', version: 'h-n1', revision: 'r1', snapshot: s1 },
    ]);
    assert.deepEqual(rec.clusterVersions.map((c) => c.clusterName), ['east', 'north', 'west']);
    assert.equal(rec.revisions.length, 1);
    rec = applyChanges(rec, [{ kind: 'applied', cluster: 'east', version: 'h-e2', revision: 'r2', snapshot: s2 }]);
    assert.deepEqual(rec.revisions.map((r) => r.revision).sort(), ['r1', 'r2']);
    assert.deepEqual(appliedIn(rec, 'west')?.snapshot, s1);
    assert.deepEqual(appliedIn(rec, 'east'), { revision: 'r2', version: 'h-e2', snapshot: s2 });
    rec = applyChanges(rec, [
      { kind: 'applied', cluster: 'west', version: 'h-w2', revision: 'r2', snapshot: s2 },
      { kind: 'removed', cluster: 'north' },
    ]);
    assert.deepEqual(rec.revisions.map((r) => r.revision), ['r2']);
    assert.equal(appliedIn(rec, 'north'), undefined);
    // Round trip through a stored object, malformed entries dropped.
    assert.deepEqual(recordOf(JSON.parse(JSON.stringify(rec))), rec);
    assert.deepEqual(recordOf({ clusterVersions: [{ clusterName: 1 }, 'x'], revisions: [null] }), EMPTY);
  });

  it('applying changes is idempotent and every held revision has its snapshot (property)', function () {
    const change = fc.oneof(
      fc.record({ kind: fc.constant('applied' as const), cluster: fc.constantFrom('a', 'b', 'c'), version: fc.constantFrom('h1', 'h2'), revision: fc.constantFrom('r1', 'r2', 'r3'), snapshot: fc.constant({ template: { data: { k: 'v' } } }) }),
      fc.record({ kind: fc.constant('removed' as const), cluster: fc.constantFrom('a', 'b', 'c') }),
    );
    fc.assert(
      fc.property(fc.array(change, { maxLength: 12 }), (changes: RecordChange[]) => {
        const once = applyChanges(EMPTY, changes);
        assert.deepEqual(applyChanges(once, changes.slice(-1).filter((c) => c.kind === 'removed')), applyChanges(once, []));
        assert.deepEqual(applyChanges(once, []), once);
        const held = new Set(once.clusterVersions.map((c) => c.revision));
        assert.deepEqual(new Set(once.revisions.map((r) => r.revision)), held);
        for (const c of once.clusterVersions) assert.ok(appliedIn(once, c.clusterName)?.snapshot);
      }),
    );
  });

  it('status.clusters[] shows revision and rollout next to KubeFed\'s fields', function () {
    const results = new Map([
      ['east', { status: '' as const, revision: 'r2', rollout: 'Current' as const }],
      ['west', { status: 'UpdateFailed' as const, message: 'boom', revision: 'r1', rollout: 'Masked' as const }],
      ['north', { status: '' as const, rollout: 'Masked' as const }],
    ]);
    const s = federatedStatus({ fed: fed({ color: 'red' }), results, collectStatus: false, now: '2026-01-01T00:00:00Z' });
    assert.deepEqual(s.clusters, [
      { name: 'east', revision: 'r2', rollout: 'Current' },
      { name: 'north', rollout: 'Masked' },
      { name: 'west', status: 'UpdateFailed', message: 'boom', revision: 'r1', rollout: 'Masked' },
    ]);
  });
});
