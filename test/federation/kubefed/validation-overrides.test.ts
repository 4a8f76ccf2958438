// Admission of override entries: one cluster by name, or the clusters a label selector matches (the
// native form of per-cell overrides); anything else is a 422 field error naming the entry.
import { strict as assert } from 'node:assert';
import type { KubeObject } from '../../../federation/apiserver/storage.js';
import { validateFederatedObject } from '../../../federation/kubefed/validation.js';
import { toNative } from '../../../federation/topology-webhook/convert.js';

function fedWith(overrides: unknown): KubeObject {
  return { apiVersion: 'types.kubefed.io/v1beta1', kind: 'FederatedConfigMap', metadata: { name: 'x', namespace: 'shop' }, spec: { template: {}, overrides } };
}

const fields = (overrides: unknown): string[] => validateFederatedObject(fedWith(overrides), undefined).map((e) => `${e.field}: ${e.message}`);

describe('kubefed validation: override entries', function () {
  it('accepts clusterName entries and clusterSelector entries', function () {
    assert.deepEqual(fields([
      { clusterName: 'east', clusterOverrides: [{ path: '/data/a', value: '1' }] },
      { clusterSelector: { matchExpressions: [{ key: 'fedtunnel.io/cell', operator: 'In', values: ['cell-a'] }] }, clusterOverrides: [{ path: '/data/a', value: '2' }] },
      { clusterSelector: {}, clusterOverrides: [] },
    ]), []);
  });

  it('refuses an entry with both, with neither, or with a malformed selector', function () {
    assert.deepEqual(fields([{ clusterName: 'east', clusterSelector: {} }]), ['spec.overrides[0]: Invalid value: give clusterName or clusterSelector, not both']);
    assert.deepEqual(fields([{ clusterOverrides: [] }]), ['spec.overrides[0].clusterName: Required value: clusterName or clusterSelector']);
    const bad = fields([{ clusterSelector: { matchExpressions: [{ key: 'fedtunnel.io/cell', operator: 'In', values: ['not a value!'] }] } }]);
    assert.equal(bad.length, 1);
    assert.match(bad[0]!, /^spec\.overrides\[0\]\.clusterSelector\.matchExpressions\[0\]\.values\[0\]: Invalid value/);
  });

  it('checks a cell-form object in its native form: a bad cell name is an error at its native field', function () {
    const native = toNative({ apiVersion: 'types.kubefed.io/v1beta2', kind: 'FederatedConfigMap', metadata: { name: 'x', namespace: 'shop' }, spec: { topology: { type: 'cell' }, template: {}, placement: { cells: [{ name: 'Cell A' }] }, overrides: [{ cellName: 'cell-b!', clusterOverrides: [] }] } });
    assert.deepEqual(validateFederatedObject(native, undefined).map((e) => e.field), ['spec.placement.clusterSelector.matchExpressions[0].values[0]', 'spec.overrides[0].clusterSelector.matchExpressions[0].values[0]']);
  });
});
