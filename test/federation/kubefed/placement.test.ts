// Placement of federated objects: KubeFed's precedence rules, label selector operators, the
// namespace intersection, and properties over random clusters and placements.
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import type { KubeObject } from '../../../federation/apiserver/storage.js';
import { computePlacement, selectedClusters, type ClusterInfo } from '../../../federation/kubefed/placement.js';
import { SelectorShapeError } from '../../../federation/kubefed/label-selector.js';

const CLUSTERS: ClusterInfo[] = [
  { name: 'east', labels: { region: 'us-east', tier: 'prod' } },
  { name: 'west', labels: { region: 'us-west', tier: 'prod' } },
  { name: 'lab', labels: { region: 'eu', canary: '' } },
  { name: 'bare', labels: {} },
];

function fed(placement: unknown): KubeObject {
  return { apiVersion: 'types.kubefed.io/v1beta1', kind: 'FederatedConfigMap', metadata: { name: 'x', namespace: 'ns' }, spec: placement === undefined ? {} : { placement } };
}

const names = (s: Set<string>): string[] => [...s].sort();

describe('kubefed placement: precedence', function () {
  it('no placement selects no cluster', function () {
    assert.deepEqual(names(selectedClusters(fed(undefined), CLUSTERS)), []);
    assert.deepEqual(names(selectedClusters({ metadata: { name: 'x' } }, CLUSTERS)), []);
  });

  it('placement {} selects no cluster', function () {
    assert.deepEqual(names(selectedClusters(fed({}), CLUSTERS)), []);
  });

  it('clusterSelector {} selects every cluster', function () {
    assert.deepEqual(names(selectedClusters(fed({ clusterSelector: {} }), CLUSTERS)), ['bare', 'east', 'lab', 'west']);
  });

  it('clusterSelector null is the same as absent: none', function () {
    assert.deepEqual(names(selectedClusters(fed({ clusterSelector: null }), CLUSTERS)), []);
  });

  it('clusters present wins over clusterSelector, even when empty', function () {
    assert.deepEqual(names(selectedClusters(fed({ clusters: [{ name: 'east' }], clusterSelector: {} }), CLUSTERS)), ['east']);
    assert.deepEqual(names(selectedClusters(fed({ clusters: [], clusterSelector: {} }), CLUSTERS)), []);
  });

  it('clusters: null falls back to clusterSelector (Go decodes it as absent)', function () {
    assert.deepEqual(names(selectedClusters(fed({ clusters: null, clusterSelector: { matchLabels: { region: 'eu' } } }), CLUSTERS)), ['lab']);
  });

  it('names of unknown clusters drop out', function () {
    assert.deepEqual(names(selectedClusters(fed({ clusters: [{ name: 'east' }, { name: 'gone' }] }), CLUSTERS)), ['east']);
  });
});

describe('kubefed placement: clusterSelector operators', function () {
  const sel = (clusterSelector: object) => names(selectedClusters(fed({ clusterSelector }), CLUSTERS));

  it('matchLabels needs every label equal', function () {
    assert.deepEqual(sel({ matchLabels: { tier: 'prod' } }), ['east', 'west']);
    assert.deepEqual(sel({ matchLabels: { tier: 'prod', region: 'us-west' } }), ['west']);
  });

  it('In / NotIn / Exists / DoesNotExist', function () {
    assert.deepEqual(sel({ matchExpressions: [{ key: 'region', operator: 'In', values: ['us-east', 'eu'] }] }), ['east', 'lab']);
    // NotIn also matches clusters without the label, as in Kubernetes.
    assert.deepEqual(sel({ matchExpressions: [{ key: 'region', operator: 'NotIn', values: ['us-east'] }] }), ['bare', 'lab', 'west']);
    assert.deepEqual(sel({ matchExpressions: [{ key: 'canary', operator: 'Exists' }] }), ['lab']);
    assert.deepEqual(sel({ matchExpressions: [{ key: 'tier', operator: 'DoesNotExist' }] }), ['bare', 'lab']);
  });

  it('matchLabels and matchExpressions are ANDed', function () {
    assert.deepEqual(sel({ matchLabels: { tier: 'prod' }, matchExpressions: [{ key: 'region', operator: 'NotIn', values: ['us-west'] }] }), ['east']);
  });

  it('an invalid selector throws instead of selecting nothing (which would delete everywhere)', function () {
    assert.throws(() => selectedClusters(fed({ clusterSelector: { matchExpressions: [{ key: 'a', operator: 'Near' }] } }), CLUSTERS), (e: unknown) => e instanceof SelectorShapeError && e.code === 'InvalidSelector');
  });
});

describe('kubefed placement: namespace intersection', function () {
  it('intersects with the FederatedNamespace placement when given', function () {
    const obj = fed({ clusterSelector: {} });
    assert.deepEqual(names(computePlacement(obj, CLUSTERS, new Set(['east', 'lab', 'elsewhere']))), ['east', 'lab']);
    assert.deepEqual(names(computePlacement(obj, CLUSTERS, new Set())), []);
    assert.deepEqual(names(computePlacement(obj, CLUSTERS)), ['bare', 'east', 'lab', 'west']);
  });
});

describe('kubefed placement: properties', function () {
  const labelValue = fc.constantFrom('a', 'b', 'c');
  const clustersArb = fc.uniqueArray(
    fc.record({ name: fc.constantFrom('c1', 'c2', 'c3', 'c4', 'c5', 'c6'), labels: fc.dictionary(fc.constantFrom('k1', 'k2', 'k3'), labelValue) }),
    { selector: (c) => c.name, maxLength: 6 },
  );
  const expr = fc.oneof(
    fc.record({ key: fc.constantFrom('k1', 'k2', 'k3'), operator: fc.constantFrom('In', 'NotIn'), values: fc.array(labelValue, { minLength: 1, maxLength: 3 }) }),
    fc.record({ key: fc.constantFrom('k1', 'k2', 'k3'), operator: fc.constantFrom('Exists', 'DoesNotExist') }),
  );
  const selectorArb = fc.record({ matchLabels: fc.dictionary(fc.constantFrom('k1', 'k2', 'k3'), labelValue), matchExpressions: fc.array(expr, { maxLength: 3 }) }, { requiredKeys: [] });
  const placementArb = fc.record(
    { clusters: fc.array(fc.record({ name: fc.constantFrom('c1', 'c2', 'c3', 'c7') }), { maxLength: 4 }), clusterSelector: selectorArb },
    { requiredKeys: [] },
  );

  it('placement is a subset of the known clusters', function () {
    fc.assert(
      fc.property(clustersArb, placementArb, (clusters, placement) => {
        const known = new Set(clusters.map((c) => c.name));
        for (const n of selectedClusters(fed(placement), clusters)) assert.ok(known.has(n));
      }),
    );
  });

  it('a clusters list decides alone: the selector never changes the result', function () {
    fc.assert(
      fc.property(clustersArb, placementArb, selectorArb, (clusters, placement, other) => {
        fc.pre(placement.clusters !== undefined);
        const a = selectedClusters(fed(placement), clusters);
        const b = selectedClusters(fed({ ...placement, clusterSelector: other }), clusters);
        assert.deepEqual(names(a), names(b));
        const listed = new Set(placement.clusters!.map((c) => c.name));
        assert.deepEqual(names(a), clusters.map((c) => c.name).filter((n) => listed.has(n)).sort());
      }),
    );
  });

  it('adding a requirement never selects more clusters', function () {
    fc.assert(
      fc.property(clustersArb, selectorArb, expr, (clusters, selector, extra) => {
        const before = selectedClusters(fed({ clusterSelector: selector }), clusters);
        const after = selectedClusters(fed({ clusterSelector: { ...selector, matchExpressions: [...(selector.matchExpressions ?? []), extra] } }), clusters);
        for (const n of after) assert.ok(before.has(n));
      }),
    );
  });

  it('computePlacement = selected ∩ namespace placement', function () {
    fc.assert(
      fc.property(clustersArb, placementArb, fc.uniqueArray(fc.constantFrom('c1', 'c2', 'c3', 'c4', 'c9')), (clusters, placement, nsNames) => {
        const ns = new Set(nsNames);
        const selected = selectedClusters(fed(placement), clusters);
        assert.deepEqual(names(computePlacement(fed(placement), clusters, ns)), names(selected).filter((n) => ns.has(n)));
      }),
    );
  });
});
