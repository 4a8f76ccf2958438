import { strict as assert } from 'node:assert';
import type { KubeObject } from '../../../federation/apiserver/storage.js';
import { aggregateReplicas, federatedStatus, statusDiffers, type ClusterResult } from '../../../federation/controller/status.js';

const fed: KubeObject = { apiVersion: 'types.kubefed.io/v1beta1', kind: 'FederatedDeployment', metadata: { name: 'web', namespace: 'shop', generation: 4 } };

describe('federation/controller: federated status', function () {
  it('lists clusters with KubeFed status values and a Propagation condition', function () {
    const results = new Map<string, ClusterResult>([
      ['west', { status: 'ClusterNotReady', message: 'cluster west is not ready' }],
      ['east', { status: '' }],
    ]);
    const s = federatedStatus({ fed, results, collectStatus: false, now: 't1' });
    assert.equal(s.observedGeneration, 4);
    assert.deepEqual(s.clusters, [{ name: 'east' }, { name: 'west', status: 'ClusterNotReady', message: 'cluster west is not ready' }]);
    const [condition] = s.conditions as Array<Record<string, string>>;
    assert.equal(condition!.type, 'Propagation');
    assert.equal(condition!.status, 'False');
    assert.equal(condition!.reason, 'CheckClusters');
  });

  it('is True with no reason when every cluster is propagated, and keeps transition times while unchanged', function () {
    const ok = new Map<string, ClusterResult>([['east', { status: '' }]]);
    const first = federatedStatus({ fed, results: ok, collectStatus: false, now: 't1' });
    const again = federatedStatus({ fed: { ...fed, status: first }, results: ok, collectStatus: false, now: 't2' });
    assert.equal(statusDiffers(first, again), false, 'nothing changed: no write');
    const [condition] = again.conditions as Array<Record<string, string>>;
    assert.deepEqual([condition!.status, condition!.reason, condition!.lastTransitionTime], ['True', undefined, 't1']);
  });

  it('collects remote status when asked and sums replicas across clusters', function () {
    const results = new Map<string, ClusterResult>([
      ['east', { status: '', remoteStatus: { replicas: 2, readyReplicas: 2 } }],
      ['west', { status: '', remoteStatus: { replicas: 3, readyReplicas: 1 } }],
    ]);
    const s = federatedStatus({ fed, results, collectStatus: true, now: 't' });
    assert.deepEqual((s.clusters as Array<{ remoteStatus: unknown }>)[1]!.remoteStatus, { replicas: 3, readyReplicas: 1 });
    assert.deepEqual(s.aggregate, { replicas: 5, readyReplicas: 3 });
    assert.equal(aggregateReplicas([{ phase: 'Active' }]), undefined, 'no workload fields: no aggregate');
  });

  it('reports NamespaceNotFederated as the aggregate reason', function () {
    const s = federatedStatus({ fed, results: new Map(), aggregateReason: 'NamespaceNotFederated', collectStatus: false, now: 't' });
    assert.equal((s.conditions as Array<Record<string, string>>)[0]!.reason, 'NamespaceNotFederated');
  });
});
