import { strict as assert } from 'node:assert';
import type { KubeObject } from '../../../federation/apiserver/storage.js';
import { decide, DeleteOptionError, memberDeleteOptions, type DecisionInput } from '../../../federation/controller/decide.js';
import { desiredObject } from '../../../federation/controller/desired.js';
import type { TargetType } from '../../../federation/kubefed/api.js';

const CONFIGMAP: TargetType = { group: '', version: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespaced: true };

function fed(extra: Partial<KubeObject['metadata']> = {}, spec: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: 'types.kubefed.io/v1beta1',
    kind: 'FederatedConfigMap',
    metadata: { name: 'cfg', namespace: 'shop', generation: 1, ...extra },
    spec: { template: { data: { color: 'blue' } }, placement: { clusters: [{ name: 'east' }] }, ...spec },
  };
}

function input(over: Partial<DecisionInput>): DecisionInput {
  return { fed: fed(), target: CONFIGMAP, cluster: 'east', placed: true, ready: true, member: undefined, ...over };
}

function live(obj: KubeObject, rv = '10'): KubeObject {
  return { ...structuredClone(obj), metadata: { ...structuredClone(obj.metadata), resourceVersion: rv } };
}

describe('federation/controller: per-cluster sync decision', function () {
  it('reports ClusterNotReady and writes nothing to a cluster that is not ready', function () {
    const d = decide(input({ ready: false }));
    assert.deepEqual([d.action.kind, d.status], ['none', 'ClusterNotReady']);
  });

  it('creates when placed and absent, does nothing when up to date, updates on drift', function () {
    assert.equal(decide(input({})).action.kind, 'create');
    const { object, hash } = desiredObject(fed(), CONFIGMAP, 'east');
    const member = live(object);
    assert.equal(decide(input({ member })).action.kind, 'none');
    assert.equal(decide(input({ member, lastWritten: { resourceVersion: '10', hash } })).action.kind, 'none');
    const drifted = live(object, '11');
    (drifted.data as Record<string, string>).color = 'red';
    const d = decide(input({ member: drifted, lastWritten: { resourceVersion: '10', hash } }));
    assert.equal(d.action.kind, 'update');
    if (d.action.kind === 'update') {
      assert.equal((d.action.object.data as Record<string, string>).color, 'blue');
      assert.equal(d.action.object.metadata.resourceVersion, '11', 'the PUT carries the live resourceVersion');
    }
  });

  it('deletes from a cluster the object is no longer placed in, or only unmanages it when orphaning', function () {
    const member = live(desiredObject(fed(), CONFIGMAP, 'east').object);
    assert.equal(decide(input({ placed: false, member })).action.kind, 'delete');
    const orphan = decide(input({ placed: false, member, fed: fed({ annotations: { 'kubefed.io/orphan': 'true' } }) }));
    assert.equal(orphan.action.kind, 'unmanage');
    if (orphan.action.kind === 'unmanage') {
      assert.equal(orphan.action.object.metadata.labels?.['kubefed.io/managed'], undefined);
      assert.equal((orphan.action.object.data as Record<string, string>).color, 'blue', 'everything else stays');
    }
    assert.equal(decide(input({ placed: false })).action.kind, 'none');
  });

  it('deletes everywhere when the federated object is being deleted', function () {
    const member = live(desiredObject(fed(), CONFIGMAP, 'east').object);
    const d = decide(input({ member, fed: fed({ deletionTimestamp: '2026-01-01T00:00:00Z', finalizers: ['kubefed.io/sync-controller'] }) }));
    assert.deepEqual([d.action.kind, d.status], ['delete', 'WaitingForRemoval']);
  });

  it('reports ApplyOverridesFailed for an override that cannot apply, and writes nothing', function () {
    const bad = fed({}, { overrides: [{ clusterName: 'east', clusterOverrides: [{ op: 'replace', path: '/data/missing/deeper', value: 1 }] }] });
    const d = decide(input({ fed: bad }));
    assert.deepEqual([d.action.kind, d.status], ['none', 'ApplyOverridesFailed']);
    assert.ok(d.message);
  });
});

describe('federation/controller: kubefed.io/deleteoption', function () {
  const fed = (annotation?: string): KubeObject => ({ apiVersion: 'types.kubefed.io/v1beta1', kind: 'FederatedConfigMap', metadata: { name: 'x', ...(annotation === undefined ? {} : { annotations: { 'kubefed.io/deleteoption': annotation } }) } });

  it('deletes members in the background unless the annotation says otherwise', function () {
    assert.deepEqual(memberDeleteOptions(fed()), { propagationPolicy: 'Background' });
    assert.deepEqual(memberDeleteOptions(fed('{"propagationPolicy":"Orphan","gracePeriodSeconds":0}')), { propagationPolicy: 'Orphan', gracePeriodSeconds: 0 });
    assert.deepEqual(memberDeleteOptions(fed('{}')), { propagationPolicy: 'Background' });
  });

  for (const bad of ['not json', '[]', '{"propagationPolicy":"Later"}', '{"gracePeriodSeconds":-1}', '{"gracePeriodSeconds":"5"}']) {
    it(`refuses ${bad} with a DeleteOptionError`, function () {
      assert.throws(() => memberDeleteOptions(fed(bad)), DeleteOptionError);
    });
  }
});
