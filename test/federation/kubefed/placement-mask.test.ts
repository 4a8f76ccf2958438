import { strict as assert } from 'node:assert';
import type { KubeObject } from '../../../federation/apiserver/storage.js';
import { CELL_LABEL } from '../../../federation/kubefed/api.js';
import { inPlacementMask, placementMaskOf, validatePlacementMask } from '../../../federation/kubefed/placement-mask.js';
import { validateFederatedObject } from '../../../federation/kubefed/validation.js';
import { propagatedVersionName } from '../../../federation/kubefed/propagated-version.js';
import { isDnsSubdomain } from '../../../federation/apiserver/validation.js';

function fed(placementMask?: unknown): KubeObject {
  return { apiVersion: 'types.kubefed.io/v1beta1', kind: 'FederatedConfigMap', metadata: { name: 'cfg', namespace: 'shop' }, spec: { template: {}, ...(placementMask !== undefined ? { placementMask } : {}) } };
}

const east = { name: 'east', labels: { [CELL_LABEL]: 'cell-a' } };
const west = { name: 'west', labels: { [CELL_LABEL]: 'cell-b' } };
const north = { name: 'north', labels: {} };

describe('federation/kubefed: spec.placementMask', function () {
  it('no mask: every cluster is inside', function () {
    for (const c of [east, west, north]) assert.equal(inPlacementMask(placementMaskOf(fed()), c), true);
  });

  it('clusters by name and by cell (union); an empty mask holds every cluster', function () {
    const mask = placementMaskOf(fed({ clusters: [{ name: 'north' }], cells: [{ name: 'cell-a' }] }));
    assert.deepEqual([east, west, north].map((c) => inPlacementMask(mask, c)), [true, false, true]);
    const empty = placementMaskOf(fed({}));
    assert.deepEqual([east, west, north].map((c) => inPlacementMask(empty, c)), [false, false, false]);
  });

  it('admission: a 422 field error for each bad shape, none for good ones', function () {
    assert.deepEqual(validatePlacementMask({ clusters: [{ name: 'east' }], cells: [{ name: 'cell-a' }] }), []);
    assert.deepEqual(validatePlacementMask({}), []);
    const fields = (m: unknown): string[] => validatePlacementMask(m).map((e) => e.field);
    assert.deepEqual(fields('cell-a'), ['spec.placementMask']);
    assert.deepEqual(fields({ cell: [] }), ['spec.placementMask.cell']);
    assert.deepEqual(fields({ clusters: 'east' }), ['spec.placementMask.clusters']);
    assert.deepEqual(fields({ clusters: [{ name: 'East_1' }, {}] }), ['spec.placementMask.clusters[0].name', 'spec.placementMask.clusters[1].name']);
    assert.deepEqual(fields({ cells: [{ name: 'cell-a' }, { name: 'cell-a' }, { name: 'bad value!' }] }), ['spec.placementMask.cells[1].name', 'spec.placementMask.cells[2].name']);
    assert.match(validatePlacementMask({ cells: [{ name: 'cell-a' }, { name: 'cell-a' }] })[0]!.message, /Duplicate value: "cell-a"/);
    // Wired into the Federated<Kind> admission.
    assert.deepEqual(validateFederatedObject(fed({ clusters: 3 }), undefined).map((e) => e.field), ['spec.placementMask.clusters']);
  });

  it('PropagatedVersion names: KubeFed\'s <kind>-<name>, cut to a unique valid name when too long', function () {
    const cm = { group: '', version: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespaced: true };
    assert.equal(propagatedVersionName(cm, 'settings'), 'configmap-settings');
    const a = propagatedVersionName(cm, `${'a'.repeat(250)}-x`);
    const b = propagatedVersionName(cm, `${'a'.repeat(250)}-y`);
    assert.ok(a.length <= 253 && isDnsSubdomain(a) && isDnsSubdomain(b));
    assert.notEqual(a, b);
  });
});
