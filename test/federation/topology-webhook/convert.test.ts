// The cell ⇄ native conversion: what a cell-placed object becomes natively, that both round trips
// are the identity for random objects (fast-check), and the ConversionReview answer contract.
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import type { KubeObject } from '../../../federation/apiserver/storage.js';
import {
  CELL_LABEL,
  convertObject,
  NATIVE_API_VERSION,
  TOPOLOGY_ANNOTATION,
  TOPOLOGY_API_VERSION,
  TopologyConversionError,
  toNative,
  toTopology,
} from '../../../federation/topology-webhook/convert.js';
import { answerReview } from '../../../federation/topology-webhook/review.js';

const RUNS = 2000;

type Spec = Record<string, unknown>;
const specOf = (o: KubeObject): Spec => o.spec as Spec;

function cellObject(spec: Spec): KubeObject {
  return { apiVersion: TOPOLOGY_API_VERSION, kind: 'FederatedConfigMap', metadata: { name: 'settings', namespace: 'shop', uid: 'u1', resourceVersion: '7' }, spec };
}

describe('topology conversion: v1beta2 → v1beta1', function () {
  it('places cells by an In selector on the cell label and moves per-cell overrides in front as selector entries', function () {
    const native = toNative(
      cellObject({
        topology: { type: 'cell' },
        template: { data: { a: '1' } },
        placement: { cells: [{ name: 'cell-a' }, { name: 'cell-b' }] },
        placementMask: { cells: ['cell-a'] },
        overrides: [
          { clusterName: 'east', clusterOverrides: [{ path: '/data/a', value: 'east' }] },
          { cellName: 'cell-a', clusterOverrides: [{ path: '/data/a', value: 'cell-a' }] },
        ],
      }),
    );
    assert.equal(native.apiVersion, NATIVE_API_VERSION);
    assert.deepEqual(native.spec, {
      template: { data: { a: '1' } },
      placementMask: { cells: ['cell-a'] },
      placement: { clusterSelector: { matchExpressions: [{ key: CELL_LABEL, operator: 'In', values: ['cell-a', 'cell-b'] }] } },
      overrides: [
        { clusterSelector: { matchExpressions: [{ key: CELL_LABEL, operator: 'In', values: ['cell-a'] }] }, clusterOverrides: [{ path: '/data/a', value: 'cell-a' }] },
        { clusterName: 'east', clusterOverrides: [{ path: '/data/a', value: 'east' }] },
      ],
    });
    assert.ok(native.metadata.annotations?.[TOPOLOGY_ANNOTATION], 'the cell form is recorded');
    assert.equal(native.metadata.resourceVersion, '7');
  });

  it('turns a cellSelector into a cluster selector that also requires a cell, and an empty cell list into no cluster', function () {
    const bySelector = toNative(cellObject({ topology: { type: 'cell' }, placement: { cellSelector: { matchLabels: { region: 'eu' } } } }));
    assert.deepEqual(specOf(bySelector).placement, { clusterSelector: { matchLabels: { region: 'eu' }, matchExpressions: [{ key: CELL_LABEL, operator: 'Exists' }] } });
    const none = toNative(cellObject({ topology: { type: 'cell' }, placement: { cells: [] } }));
    assert.deepEqual(specOf(none).placement, { clusters: [] });
  });

  it('adds no annotation for a topology-cluster object whose native form says it all', function () {
    const native = toNative(cellObject({ topology: { type: 'cluster' }, template: {}, placement: { clusters: [{ name: 'east' }] } }));
    assert.equal(native.metadata.annotations, undefined);
    assert.deepEqual(native.spec, { template: {}, placement: { clusters: [{ name: 'east' }] } });
  });

  it('refuses what it cannot convert, naming the field', function () {
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ topology: { type: 'zone' } }, /spec\.topology\.type/],
      [{ topology: { type: 'cell' }, placement: { clusters: [{ name: 'east' }] } }, /not clusters or clusterSelector/],
      [{ topology: { type: 'cell' }, placement: { cells: [{ name: '' }] } }, /cells\[0\]\.name/],
      [{ topology: { type: 'cell' }, placement: { cells: 'cell-a' } }, /cells must be a list/],
      [{ overrides: [{ cellName: 'a', clusterName: 'east' }] }, /overrides\[0\] names a cell and a cluster/],
    ];
    for (const [spec, message] of bad) assert.throws(() => toNative(cellObject(spec)), (e: unknown) => e instanceof TopologyConversionError && message.test(e.message));
    assert.throws(() => convertObject(cellObject({}), 'types.kubefed.io/v9'), TopologyConversionError);
  });
});

describe('topology conversion: v1beta1 → v1beta2', function () {
  it('reads a natively written object as topology cluster, placement and overrides unchanged', function () {
    const native: KubeObject = { apiVersion: NATIVE_API_VERSION, kind: 'FederatedConfigMap', metadata: { name: 'x', namespace: 'shop' }, spec: { template: {}, placement: { clusterSelector: {} }, overrides: [{ clusterName: 'east', clusterOverrides: [] }] } };
    assert.deepEqual(toTopology(native), { ...native, apiVersion: TOPOLOGY_API_VERSION, spec: { ...specOf(native), topology: { type: 'cluster' } } });
  });

  it('ignores a stale annotation (placement edited natively since) and reads the native placement', function () {
    const native = toNative(cellObject({ topology: { type: 'cell' }, placement: { cells: [{ name: 'cell-a' }] } }));
    const edited = { ...native, spec: { ...specOf(native), placement: { clusters: [{ name: 'north' }] } } };
    const read = toTopology(edited);
    assert.deepEqual(read.spec, { topology: { type: 'cluster' }, placement: { clusters: [{ name: 'north' }] } });
    // Written back, the stale record is dropped: the native form is all there is.
    assert.equal(toNative(read).metadata.annotations?.[TOPOLOGY_ANNOTATION], undefined);
  });
});

// Random objects. Names and label values are small alphabets so that equal values collide often.
const name = fc.constantFrom('a', 'b', 'cell-a', 'cell-b', 'east', 'west', 'x-1');
const labelKey = fc.constantFrom('region', 'tier', CELL_LABEL, 'example.com/zone');
const json: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small' }, fc.string(), fc.integer(), fc.boolean(), fc.constant(null), fc.array(tie('value'), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 5 }), tie('value'), { maxKeys: 3 })),
})).value;
const selector = fc.record(
  {
    matchLabels: fc.dictionary(labelKey, name, { maxKeys: 2 }),
    matchExpressions: fc.array(fc.oneof(fc.record({ key: labelKey, operator: fc.constantFrom('In', 'NotIn'), values: fc.array(name, { minLength: 1, maxLength: 3 }) }), fc.record({ key: labelKey, operator: fc.constantFrom('Exists', 'DoesNotExist') })), { maxLength: 2 }),
  },
  { requiredKeys: [] },
);
const ops = fc.array(fc.record({ op: fc.constantFrom('add', 'replace', 'remove'), path: fc.constantFrom('/data/a', '/data/b', '/metadata/labels/x'), value: json }, { requiredKeys: ['path'] }), { maxLength: 3 });
const clusterEntry = fc.oneof(fc.record({ clusterName: name, clusterOverrides: ops }, { requiredKeys: ['clusterName'] }), fc.record({ clusterSelector: selector, clusterOverrides: ops }, { requiredKeys: ['clusterSelector'] }));
const cellEntry = fc.record({ cellName: name, clusterOverrides: ops }, { requiredKeys: ['cellName'] });
const clusterPlacement = fc.record({ clusters: fc.array(fc.record({ name }), { maxLength: 3 }), clusterSelector: selector }, { requiredKeys: [] });
const cellPlacement = fc.record({ cells: fc.array(fc.record({ name }), { maxLength: 3 }), cellSelector: selector }, { requiredKeys: [] });
const common = {
  template: fc.record({ metadata: fc.record({ labels: fc.dictionary(labelKey, name, { maxKeys: 2 }) }, { requiredKeys: [] }), data: fc.dictionary(fc.string({ maxLength: 4 }), fc.string({ maxLength: 6 }), { maxKeys: 3 }) }, { requiredKeys: [] }),
  placementMask: fc.record({ clusters: fc.array(name, { maxLength: 2 }), cells: fc.array(name, { maxLength: 2 }) }, { requiredKeys: [] }),
  retainReplicas: fc.boolean(),
  extra: json,
};
const metadata = fc.record(
  {
    name,
    namespace: name,
    uid: fc.uuid(),
    resourceVersion: fc.integer({ min: 1, max: 1e6 }).map(String),
    labels: fc.dictionary(labelKey, name, { minKeys: 1, maxKeys: 2 }),
    // Any annotation but the reserved one; an empty map is the same as none on a Kubernetes object.
    annotations: fc.dictionary(fc.constantFrom('a', 'kubefed.io/orphan', 'example.com/note'), fc.string({ maxLength: 8 }), { minKeys: 1, maxKeys: 2 }),
  },
  { requiredKeys: ['name'] },
);
const status = fc.option(fc.record({ observedGeneration: fc.nat(), clusters: fc.array(fc.record({ name, status: fc.constantFrom('', 'ClusterNotReady') }), { maxLength: 2 }) }), { nil: undefined });
const topologySpec = fc.oneof(
  fc.record({ topology: fc.constant({ type: 'cell' }), placement: cellPlacement, overrides: fc.array(fc.oneof(cellEntry, clusterEntry), { maxLength: 4 }), ...common }, { requiredKeys: ['topology'] }),
  fc.record({ topology: fc.constantFrom({ type: 'cluster' }, {}), placement: clusterPlacement, overrides: fc.array(fc.oneof(cellEntry, clusterEntry), { maxLength: 4 }), ...common }, { requiredKeys: [] }),
);
const nativeSpec = fc.record({ placement: clusterPlacement, overrides: fc.array(clusterEntry, { maxLength: 4 }), ...common }, { requiredKeys: [] });
const withStatus = (o: KubeObject, s: unknown): KubeObject => (s === undefined ? o : { ...o, status: s });
const topologyObject = fc.tuple(metadata, topologySpec, status).map(([m, spec, s]) => withStatus({ apiVersion: TOPOLOGY_API_VERSION, kind: 'FederatedDeployment', metadata: m, spec }, s));
const nativeObject = fc.tuple(metadata, nativeSpec, status).map(([m, spec, s]) => withStatus({ apiVersion: NATIVE_API_VERSION, kind: 'FederatedDeployment', metadata: m, spec }, s));

describe('topology conversion: round trips (fast-check)', function () {
  it('v1beta2 → v1beta1 → v1beta2 is the identity', function () {
    fc.assert(fc.property(topologyObject, (obj) => assert.deepStrictEqual(toTopology(toNative(structuredClone(obj))), obj)), { seed: 71, numRuns: RUNS });
  });

  it('v1beta1 → v1beta2 → v1beta1 is the identity for natively written objects', function () {
    fc.assert(fc.property(nativeObject, (obj) => assert.deepStrictEqual(toNative(toTopology(structuredClone(obj))), obj)), { seed: 72, numRuns: RUNS });
  });

  it('the native form changes only spec, apiVersion and annotations (what the API server accepts from a webhook)', function () {
    fc.assert(
      fc.property(topologyObject, (obj) => {
        const native = toNative(obj);
        const strip = (o: KubeObject): unknown => ({ ...o, apiVersion: undefined, spec: undefined, metadata: { ...o.metadata, annotations: undefined } });
        assert.deepStrictEqual(strip(native), strip(obj));
        const placement = specOf(native).placement as { clusters?: unknown; clusterSelector?: unknown } | undefined;
        // Natively, a cell-placed object is a selector on the cell label or no cluster at all.
        if ((obj.spec as { topology?: { type?: string } }).topology?.type === 'cell' && placement && (placement.clusterSelector || placement.clusters)) {
          assert.ok(JSON.stringify(placement).includes(CELL_LABEL) || JSON.stringify(placement) === '{"clusters":[]}');
        }
      }),
      { seed: 73, numRuns: RUNS },
    );
  });

  it('is deterministic: the same object converts to the same bytes', function () {
    fc.assert(fc.property(topologyObject, (obj) => assert.equal(JSON.stringify(toNative(obj)), JSON.stringify(toNative(structuredClone(obj))))), { seed: 74, numRuns: 500 });
  });
});

describe('topology conversion: ConversionReview', function () {
  const review = (desiredAPIVersion: string, objects: unknown[]): unknown => ({ apiVersion: 'apiextensions.k8s.io/v1', kind: 'ConversionReview', request: { uid: 'r-1', desiredAPIVersion, objects } });

  it('echoes the uid and converts every object in order to the desired version', function () {
    const a = cellObject({ topology: { type: 'cell' }, placement: { cells: [{ name: 'cell-a' }] } });
    const b = { ...cellObject({}), apiVersion: NATIVE_API_VERSION, metadata: { name: 'b' } };
    const answer = answerReview(review(NATIVE_API_VERSION, [a, b]));
    assert.equal(answer.status, 200);
    const response = (answer.body as { response: { uid: string; result: { status: string }; convertedObjects: KubeObject[] } }).response;
    assert.equal(response.uid, 'r-1');
    assert.equal(response.result.status, 'Success');
    assert.deepEqual(response.convertedObjects.map((o) => [o.apiVersion, o.metadata.name]), [[NATIVE_API_VERSION, 'settings'], [NATIVE_API_VERSION, 'b']]);
  });

  it('fails the whole review, naming the object, when one object cannot be converted', function () {
    const answer = answerReview(review(NATIVE_API_VERSION, [cellObject({}), cellObject({ topology: { type: 'zone' } })]));
    assert.equal(answer.status, 200);
    assert.equal(answer.outcome, 'failed');
    const response = (answer.body as { response: { uid: string; result: { status: string; message: string }; convertedObjects: unknown[] } }).response;
    assert.equal(response.uid, 'r-1');
    assert.equal(response.result.status, 'Failed');
    assert.match(response.result.message, /object 1 \(shop\/settings\): spec\.topology\.type/);
    assert.deepEqual(response.convertedObjects, []);
  });

  it('answers 400 to what is not a ConversionReview v1', function () {
    for (const body of [null, [], { kind: 'ConversionReview' }, { apiVersion: 'apiextensions.k8s.io/v1', kind: 'ConversionReview', request: { uid: 'x' } }]) assert.equal(answerReview(body).status, 400);
  });
});
