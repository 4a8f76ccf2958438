// Per-cluster overrides: each JSON patch op, replace as the default, KubeFed's forbidden paths,
// and failing operations reported as ApplyOverridesFailed with their path.
import { strict as assert } from 'node:assert';
import type { KubeObject } from '../../../federation/apiserver/storage.js';
import { applyOverrides, OverrideError, overridesFor } from '../../../federation/kubefed/overrides.js';

const deployment = (): KubeObject => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web', namespace: 'shop', labels: { app: 'web' } },
  spec: { replicas: 3, template: { spec: { containers: [{ name: 'web', image: 'nginx:1.25' }] } } },
});

function fedWith(overrides: unknown): KubeObject {
  return { metadata: { name: 'web', namespace: 'shop' }, spec: { template: {}, overrides } };
}

function failsWith(code: string, path?: string) {
  return (e: unknown): boolean => e instanceof OverrideError && e.code === code && (path === undefined || e.path === path);
}

describe('kubefed overrides: overridesFor', function () {
  it('returns the cluster\'s operations with op defaulted to replace', function () {
    const obj = fedWith([
      { clusterName: 'east', clusterOverrides: [{ path: '/spec/replicas', value: 5 }, { op: 'add', path: '/metadata/labels/zone', value: 'a' }, { op: 'remove', path: '/metadata/labels/app' }] },
      { clusterName: 'west', clusterOverrides: [{ op: 'replace', path: '/spec/replicas', value: 1 }] },
    ]);
    assert.deepEqual(overridesFor(obj, 'east'), [
      { op: 'replace', path: '/spec/replicas', value: 5 },
      { op: 'add', path: '/metadata/labels/zone', value: 'a' },
      { op: 'remove', path: '/metadata/labels/app' },
    ]);
    assert.deepEqual(overridesFor(obj, 'west'), [{ op: 'replace', path: '/spec/replicas', value: 1 }]);
  });

  it('a cluster without an entry, or without overrides, has none', function () {
    assert.deepEqual(overridesFor(fedWith([{ clusterName: 'east' }]), 'east'), []);
    assert.deepEqual(overridesFor(fedWith([{ clusterName: 'east', clusterOverrides: [] }]), 'west'), []);
    assert.deepEqual(overridesFor({ metadata: {}, spec: {} }, 'east'), []);
  });

  it('rejects what KubeFed rejects: a cluster twice, a forbidden path, a path twice', function () {
    assert.throws(() => overridesFor(fedWith([{ clusterName: 'east' }, { clusterName: 'east' }]), 'east'), failsWith('InvalidOverrides'));
    for (const path of ['/metadata/name', '/metadata/namespace', '/metadata/generateName', '/kind']) {
      assert.throws(() => overridesFor(fedWith([{ clusterName: 'east', clusterOverrides: [{ path, value: 'x' }] }]), 'east'), failsWith('InvalidOverrides', path));
    }
    assert.throws(
      () => overridesFor(fedWith([{ clusterName: 'east', clusterOverrides: [{ path: '/spec/replicas', value: 1 }, { path: '/spec/replicas', value: 2 }] }]), 'east'),
      failsWith('InvalidOverrides', '/spec/replicas'),
    );
  });
});

describe('kubefed overrides: selector-based entries (cells)', function () {
  const cellA = { matchExpressions: [{ key: 'fedtunnel.io/cell', operator: 'In', values: ['cell-a'] }] };
  const labels = { 'fedtunnel.io/cell': 'cell-a', region: 'eu' };

  it('applies every matching entry in list order, the last match winning per path', function () {
    const obj = fedWith([
      { clusterSelector: cellA, clusterOverrides: [{ path: '/spec/replicas', value: 2 }, { op: 'add', path: '/metadata/labels/cell', value: 'a' }] },
      { clusterName: 'east', clusterOverrides: [{ path: '/spec/replicas', value: 9 }] },
      { clusterSelector: { matchLabels: { region: 'us' } }, clusterOverrides: [{ path: '/spec/replicas', value: 100 }] },
    ]);
    assert.deepEqual(overridesFor(obj, 'east', labels), [
      { op: 'replace', path: '/spec/replicas', value: 9 },
      { op: 'add', path: '/metadata/labels/cell', value: 'a' },
    ]);
    // Another cluster of the cell gets the cell's entry only; one outside the cell gets nothing.
    assert.deepEqual(overridesFor(obj, 'west', labels), [
      { op: 'replace', path: '/spec/replicas', value: 2 },
      { op: 'add', path: '/metadata/labels/cell', value: 'a' },
    ]);
    assert.deepEqual(overridesFor(obj, 'north', { region: 'eu' }), []);
    // Without labels only clusterName entries can match.
    assert.deepEqual(overridesFor(obj, 'east'), [{ op: 'replace', path: '/spec/replicas', value: 9 }]);
  });

  it('an empty selector matches every cluster; a malformed one is InvalidOverrides', function () {
    assert.deepEqual(overridesFor(fedWith([{ clusterSelector: {}, clusterOverrides: [{ path: '/spec/replicas', value: 1 }] }]), 'any'), [{ op: 'replace', path: '/spec/replicas', value: 1 }]);
    assert.throws(() => overridesFor(fedWith([{ clusterSelector: { matchExpressions: [{ key: 'a', operator: 'Near' }] }, clusterOverrides: [] }]), 'east', labels), failsWith('InvalidOverrides'));
  });
});

describe('kubefed overrides: applyOverrides', function () {
  it('replace, add and remove; the input object is not changed', function () {
    const obj = deployment();
    const before = JSON.stringify(obj);
    const out = applyOverrides(obj, [
      { op: 'replace', path: '/spec/replicas', value: 7 },
      { op: 'add', path: '/metadata/labels/zone', value: 'b' },
      { op: 'add', path: '/spec/template/spec/containers/-', value: { name: 'sidecar', image: 'envoy' } },
      { op: 'replace', path: '/spec/template/spec/containers/0/image', value: 'nginx:1.27' },
      { op: 'remove', path: '/metadata/labels/app' },
    ]);
    assert.equal(JSON.stringify(obj), before);
    assert.equal((out.spec as any).replicas, 7); // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.deepEqual(out.metadata.labels, { zone: 'b' });
    assert.deepEqual((out.spec as any).template.spec.containers, [{ name: 'web', image: 'nginx:1.27' }, { name: 'sidecar', image: 'envoy' }]); // eslint-disable-line @typescript-eslint/no-explicit-any
  });

  it('apiVersion may be overridden (KubeFed allows it)', function () {
    assert.equal(applyOverrides(deployment(), [{ op: 'replace', path: '/apiVersion', value: 'apps/v1beta2' }]).apiVersion, 'apps/v1beta2');
  });

  it('replace of a missing path fails (KubeFed: json-patch replace needs the key)', function () {
    assert.throws(() => applyOverrides(deployment(), [{ op: 'replace', path: '/spec/paused', value: true }]), failsWith('ApplyOverridesFailed', '/spec/paused'));
  });

  it('remove of a missing path and add under a missing parent fail', function () {
    assert.throws(() => applyOverrides(deployment(), [{ op: 'remove', path: '/metadata/annotations/x' }]), failsWith('ApplyOverridesFailed', '/metadata/annotations/x'));
    assert.throws(() => applyOverrides(deployment(), [{ op: 'add', path: '/nothing/here', value: 1 }]), failsWith('ApplyOverridesFailed', '/nothing/here'));
  });

  it('add/replace without a value fail', function () {
    assert.throws(() => applyOverrides(deployment(), [{ op: 'replace', path: '/spec/replicas' }]), failsWith('ApplyOverridesFailed', '/spec/replicas'));
  });

  it('forbidden paths fail even when given directly', function () {
    assert.throws(() => applyOverrides(deployment(), [{ op: 'replace', path: '/metadata/name', value: 'other' }]), failsWith('ApplyOverridesFailed', '/metadata/name'));
  });

  it('prototype pollution is refused', function () {
    assert.throws(() => applyOverrides(deployment(), [{ op: 'add', path: '/__proto__/polluted', value: true }]), failsWith('ApplyOverridesFailed'));
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it('the error message does not carry the document (it may be a Secret)', function () {
    const secret: KubeObject = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, data: { token: 'c2VjcmV0LXRva2Vu' } };
    try {
      applyOverrides(secret, [{ op: 'replace', path: '/data/missing', value: 'x' }]);
      assert.fail('expected a failure');
    } catch (err) {
      assert.ok(err instanceof OverrideError);
      assert.doesNotMatch(err.message, /c2VjcmV0LXRva2Vu/);
    }
  });
});
