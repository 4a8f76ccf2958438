import { strict as assert } from 'node:assert';
import type { KubeObject } from '../../../federation/apiserver/storage.js';
import { contains, desiredObject, HASH_ANNOTATION, isUpToDate, withRetainedFields } from '../../../federation/controller/desired.js';
import type { TargetType } from '../../../federation/kubefed/api.js';

const DEPLOYMENT: TargetType = { group: 'apps', version: 'v1', kind: 'Deployment', plural: 'deployments', namespaced: true };
const SERVICE: TargetType = { group: '', version: 'v1', kind: 'Service', plural: 'services', namespaced: true };

function federated(spec: Record<string, unknown>, kind = 'FederatedDeployment'): KubeObject {
  return { apiVersion: 'types.kubefed.io/v1beta1', kind, metadata: { name: 'web', namespace: 'shop', generation: 1 }, spec };
}

const template = {
  metadata: { labels: { app: 'web' }, annotations: { 'team.example/owner': 'shop' } },
  spec: { replicas: 2, template: { spec: { containers: [{ name: 'web', image: 'nginx:1.27' }] } } },
};

describe('federation/controller: desired member objects', function () {
  it('is the template with identity, managed label and hash; by default template annotations are propagated', function () {
    const { object, hash } = desiredObject(federated({ template }), DEPLOYMENT, 'east');
    assert.equal(object.apiVersion, 'apps/v1');
    assert.equal(object.kind, 'Deployment');
    assert.equal(object.metadata.name, 'web');
    assert.equal(object.metadata.namespace, 'shop');
    assert.deepEqual(object.metadata.labels, { app: 'web', 'kubefed.io/managed': 'true' });
    assert.equal(object.metadata.annotations!['team.example/owner'], 'shop');
    assert.equal(object.metadata.annotations![HASH_ANNOTATION], hash);
    assert.equal((object.spec as { replicas: number }).replicas, 2);
  });

  it('hashes per cluster: an override changes only that cluster\'s hash', function () {
    const fed = federated({ template, overrides: [{ clusterName: 'west', clusterOverrides: [{ path: '/spec/replicas', value: 5 }] }] });
    const east = desiredObject(fed, DEPLOYMENT, 'east');
    const west = desiredObject(fed, DEPLOYMENT, 'west');
    const plain = desiredObject(federated({ template }), DEPLOYMENT, 'west');
    assert.equal((west.object.spec as { replicas: number }).replicas, 5);
    assert.notEqual(east.hash, west.hash);
    assert.equal(east.hash, plain.hash, 'a west override does not touch east');
  });

  it('applies per-cell (selector) overrides by the cluster\'s labels, a per-cluster entry after them winning', function () {
    const cellA = { matchExpressions: [{ key: 'fedtunnel.io/cell', operator: 'In', values: ['cell-a'] }] };
    const fed = federated({
      template,
      overrides: [
        { clusterSelector: cellA, clusterOverrides: [{ path: '/spec/replicas', value: 4 }] },
        { clusterName: 'east', clusterOverrides: [{ path: '/spec/replicas', value: 6 }] },
      ],
    });
    const replicas = (cluster: string, labels: Record<string, string>): number => (desiredObject(fed, DEPLOYMENT, cluster, undefined, labels).object.spec as { replicas: number }).replicas;
    assert.equal(replicas('east', { 'fedtunnel.io/cell': 'cell-a' }), 6);
    assert.equal(replicas('west', { 'fedtunnel.io/cell': 'cell-a' }), 4);
    assert.equal(replicas('north', { 'fedtunnel.io/cell': 'cell-b' }), 2);
  });

  it('retains what the member owns: resourceVersion, finalizers, foreign annotations, service IPs and node ports, replicas when asked', function () {
    const fed = federated({ template: { spec: { type: 'NodePort', ports: [{ name: 'http', port: 80 }] } } }, 'FederatedService');
    const { object } = desiredObject(fed, SERVICE, 'east');
    const live: KubeObject = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web', namespace: 'shop', resourceVersion: '41', finalizers: ['x/y'], annotations: { 'member.example/x': '1' } },
      spec: { type: 'NodePort', clusterIP: '10.0.0.7', clusterIPs: ['10.0.0.7'], ports: [{ name: 'http', port: 80, nodePort: 30080 }] },
    };
    const write = withRetainedFields(object, live, SERVICE, false);
    assert.equal(write.metadata.resourceVersion, '41');
    assert.deepEqual(write.metadata.finalizers, ['x/y']);
    assert.equal(write.metadata.annotations!['member.example/x'], '1');
    const spec = write.spec as { clusterIP: string; ports: Array<{ nodePort: number }> };
    assert.equal(spec.clusterIP, '10.0.0.7');
    assert.equal(spec.ports[0]!.nodePort, 30080);

    const dep = desiredObject(federated({ template, retainReplicas: true }), DEPLOYMENT, 'east').object;
    const scaled: KubeObject = { ...structuredClone(dep), metadata: { ...dep.metadata, resourceVersion: '9' }, spec: { ...(dep.spec as object), replicas: 7 } };
    assert.equal((withRetainedFields(dep, scaled, DEPLOYMENT, true).spec as { replicas: number }).replicas, 7);
    assert.equal((withRetainedFields(dep, scaled, DEPLOYMENT, false).spec as { replicas: number }).replicas, 2);
  });

  it('calls a member up to date when it carries the hash and every managed field, whatever it added', function () {
    const { object, hash } = desiredObject(federated({ template }), DEPLOYMENT, 'east');
    const live: KubeObject = structuredClone(object);
    live.metadata.resourceVersion = '5';
    live.metadata.annotations = { ...live.metadata.annotations, 'deployment.kubernetes.io/revision': '3' };
    (live.spec as Record<string, unknown>).progressDeadlineSeconds = 600;
    const write = withRetainedFields(object, live, DEPLOYMENT, false);
    assert.equal(isUpToDate(live, write, hash), true, 'member-added fields are not drift (kubefed#982)');
    const edited = structuredClone(live);
    (edited.spec as { replicas: number }).replicas = 9;
    assert.equal(isUpToDate(edited, withRetainedFields(object, edited, DEPLOYMENT, false), hash), false, 'a managed field edited in the member is drift');
    assert.equal(isUpToDate(live, write, 'other-hash'), false);
  });

  it('contains: objects by key, arrays element-wise with equal length', function () {
    assert.equal(contains({ a: 1, b: 2 }, { a: 1 }), true);
    assert.equal(contains({ a: [{ x: 1, y: 2 }] }, { a: [{ x: 1 }] }), true);
    assert.equal(contains({ a: [1, 2, 3] }, { a: [1, 2] }), false);
    assert.equal(contains({ a: 1 }, { a: '1' }), false);
    assert.equal(contains(undefined, { a: 1 }), false);
  });
});
