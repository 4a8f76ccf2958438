// Strategic merge patch: the pure merge (merge keys, directives) and real kubectl apply of a
// Deployment against the API server binary in --member mode.
import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { applyPatch, PatchError, strategicMergePatch } from '../../../federation/apiserver/patch.js';
import { strategicMerge, StrategicMergeError } from '../../../federation/apiserver/strategic-merge.js';
import { ApiError } from '../../../federation/apiserver/errors.js';
import { assertNoLeakedResources, resourceBaseline } from '../../support/leaks.js';
import { kubectl, startApiServer, type ApiServerProcess } from './harness.js';

const SMP = 'application/strategic-merge-patch+json';

function deployment(spec: Record<string, unknown>): Record<string, unknown> {
  return { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd', namespace: 'n' }, spec: { template: { spec } } };
}

function podSpecOf(obj: unknown): Record<string, unknown> {
  return ((obj as { spec: { template: { spec: Record<string, unknown> } } }).spec.template.spec);
}

describe('apiserver: strategic merge patch (pure)', function () {
  const base = deployment({
    containers: [
      { name: 'app', image: 'app:1', ports: [{ containerPort: 80, protocol: 'TCP' }], env: [{ name: 'A', value: '1' }, { name: 'B', value: '2' }] },
      { name: 'side', image: 'side:1' },
    ],
    tolerations: [{ key: 'a', operator: 'Exists' }],
  });

  it('merges containers by name: an image change keeps ports and env', function () {
    const out = strategicMergePatch(base, { spec: { template: { spec: { containers: [{ name: 'app', image: 'app:2' }] } } } });
    assert.deepEqual(podSpecOf(out).containers, [
      { name: 'app', image: 'app:2', ports: [{ containerPort: 80, protocol: 'TCP' }], env: [{ name: 'A', value: '1' }, { name: 'B', value: '2' }] },
      { name: 'side', image: 'side:1' },
    ]);
  });

  it('adds a container with a new name and deletes one with $patch: delete', function () {
    let out = strategicMergePatch(base, { spec: { template: { spec: { containers: [{ name: 'new', image: 'new:1' }] } } } });
    assert.deepEqual((podSpecOf(out).containers as Array<{ name: string }>).map((c) => c.name), ['app', 'side', 'new']);
    out = strategicMergePatch(base, { spec: { template: { spec: { containers: [{ name: 'side', $patch: 'delete' }] } } } });
    assert.deepEqual((podSpecOf(out).containers as Array<{ name: string }>).map((c) => c.name), ['app']);
  });

  it('orders a merged list by $setElementOrder, unlisted elements after', function () {
    const out = strategicMergePatch(base, {
      spec: { template: { spec: { '$setElementOrder/containers': [{ name: 'new' }, { name: 'app' }], containers: [{ name: 'new', image: 'new:1' }] } } },
    });
    assert.deepEqual((podSpecOf(out).containers as Array<{ name: string }>).map((c) => c.name), ['new', 'app', 'side']);
    assert.ok(!JSON.stringify(out).includes('$'), 'directives are stripped');
  });

  it('merges env by name', function () {
    const out = strategicMergePatch(base, { spec: { template: { spec: { containers: [{ name: 'app', env: [{ name: 'B', value: '20' }, { name: 'C', value: '3' }, { name: 'A', $patch: 'delete' }] }] } } } });
    assert.deepEqual((podSpecOf(out).containers as Array<{ env: unknown }>)[0]!.env, [{ name: 'B', value: '20' }, { name: 'C', value: '3' }]);
  });

  it('null deletes a key, maps merge', function () {
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', labels: { a: '1', b: '2' } }, data: { x: '1', y: '2' } };
    const out = strategicMergePatch(cm, { metadata: { labels: { a: null, c: '3' } }, data: { y: null } });
    assert.deepEqual(out, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', labels: { b: '2', c: '3' } }, data: { x: '1' } });
  });

  it('replaces lists without a merge key (primitive lists, tolerations)', function () {
    const d = deployment({ containers: [{ name: 'app', args: ['a', 'b'] }], tolerations: [{ key: 'a', operator: 'Exists' }] });
    const out = strategicMergePatch(d, { spec: { template: { spec: { containers: [{ name: 'app', args: ['c'] }], tolerations: [{ key: 'b', operator: 'Exists' }] } } } });
    assert.deepEqual((podSpecOf(out).containers as Array<{ args: unknown }>)[0]!.args, ['c']);
    assert.deepEqual(podSpecOf(out).tolerations, [{ key: 'b', operator: 'Exists' }]);
  });

  it('$deleteFromPrimitiveList removes values', function () {
    const ns = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'n', finalizers: ['a', 'b', 'c'] } };
    const out = strategicMergePatch(ns, { metadata: { '$deleteFromPrimitiveList/finalizers': ['b'] } });
    assert.deepEqual((out as { metadata: { finalizers: string[] } }).metadata.finalizers, ['a', 'c']);
  });

  it('$patch: replace on a list and on a map, $retainKeys', function () {
    let out = strategicMergePatch(base, { spec: { template: { spec: { containers: [{ name: 'only', image: 'o' }, { $patch: 'replace' }] } } } });
    assert.deepEqual(podSpecOf(out).containers, [{ name: 'only', image: 'o' }]);
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: { x: '1', y: '2' } };
    out = strategicMergePatch(cm, { data: { $patch: 'replace', z: '3' } });
    assert.deepEqual((out as { data: unknown }).data, { z: '3' });
    out = strategicMergePatch(cm, { data: { $retainKeys: ['y', 'z'], z: '3' } });
    assert.deepEqual((out as { data: unknown }).data, { y: '2', z: '3' });
  });

  it('merges service ports by port', function () {
    const svc = { apiVersion: 'v1', kind: 'Service', metadata: { name: 's' }, spec: { ports: [{ port: 80, targetPort: 8080, name: 'http' }, { port: 443, name: 'https' }] } };
    const out = strategicMergePatch(svc, { spec: { ports: [{ port: 80, targetPort: 9090 }, { port: 53, protocol: 'UDP' }] } });
    assert.deepEqual((out as { spec: { ports: unknown } }).spec.ports, [
      { port: 80, targetPort: 9090, name: 'http' },
      { port: 443, name: 'https' },
      { port: 53, protocol: 'UDP' },
    ]);
  });

  it('fuzz regression: a $patch directive that is an object with a "toString" key is a StrategicMergeError, not a TypeError', function () {
    // Found by test/fuzz: String() of {"toString": 1} throws "Cannot convert object to primitive value".
    const patch = JSON.parse('{"$patch":{"toString":1}}') as unknown;
    assert.throws(() => strategicMerge({}, patch, {}), (e: unknown) => e instanceof StrategicMergeError && /unknown \$patch directive of type object/.test(e.message));
    assert.throws(() => strategicMergePatch(base, patch), PatchError);
  });

  it('fuzz regression: a "__proto__" key in a patch is kept as data, the prototype is untouched', function () {
    const out = strategicMerge({ data: { a: '1' } }, JSON.parse('{"data":{"__proto__":"v"},"__proto__":{"kind":"X"}}'), {}) as Record<string, Record<string, unknown>>;
    assert.equal(Object.getPrototypeOf(out), Object.prototype);
    assert.equal(out.kind, undefined);
    assert.equal(JSON.stringify(out), '{"data":{"a":"1","__proto__":"v"},"__proto__":{"kind":"X"}}');
  });

  it('fuzz regression: a list under a field named like an Object.prototype member ("constructor") is replaced, not merged by an inherited "key"', function () {
    // keys["constructor"] was Object itself, so the list was merged by the key "function Object()…" and refused.
    assert.deepEqual(strategicMerge({ constructor: [1] }, { constructor: [{ a: 1 }] }, {}), { constructor: [{ a: 1 }] });
    assert.deepEqual(strategicMerge({}, { toString: [2], $setElementOrder: [], '$setElementOrder/valueOf': [] }, {}), { toString: [2] });
  });

  it('rejects SMP for kinds without a schema with 415', function () {
    const cr = { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } };
    assert.throws(() => applyPatch(SMP, cr, { spec: { a: 1 } }), (e: unknown) => e instanceof ApiError && e.code === 415 && e.reason === 'UnsupportedMediaType');
  });
});

describe('apiserver: kubectl apply sends strategic merge patches', function () {
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let server: ApiServerProcess;

  before(async function () {
    baseline = await resourceBaseline();
    server = await startApiServer('strategic-merge');
  });

  after(async function () {
    await server?.kill();
    await assertNoLeakedResources(baseline);
  });

  it('applies a Deployment: changes an image, adds and then removes a container', async function () {
    let r = await kubectl(server, ['create', 'namespace', 'smp']);
    assert.equal(r.code, 0, r.stderr);
    const file = path.join(server.home, 'deploy.yaml');
    const container = (image: string) => ({
      name: 'app',
      image,
      ports: [{ containerPort: 8080, protocol: 'TCP' }],
      env: [{ name: 'MODE', value: 'prod' }, { name: 'LEVEL', value: 'info' }],
    });
    const manifest = (containers: unknown[]) =>
      YAML.stringify({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'web', namespace: 'smp' },
        spec: { replicas: 1, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers } } },
      });
    const stored = async () => {
      const g = await kubectl(server, ['get', 'deployment/web', '-n', 'smp', '-o', 'json']);
      assert.equal(g.code, 0, g.stderr);
      return JSON.parse(g.stdout).spec.template.spec.containers as Array<Record<string, unknown>>;
    };

    fs.writeFileSync(file, manifest([container('app:1')]));
    r = await kubectl(server, ['apply', '-f', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /deployment\.apps\/web created/);

    fs.writeFileSync(file, manifest([container('app:2'), { name: 'sidecar', image: 'side:1' }]));
    r = await kubectl(server, ['apply', '-f', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /deployment\.apps\/web configured/);
    let containers = await stored();
    assert.deepEqual(containers.map((c) => c.name), ['app', 'sidecar']);
    assert.equal(containers[0]!.image, 'app:2');
    assert.deepEqual(containers[0]!.ports, [{ containerPort: 8080, protocol: 'TCP' }]);
    assert.deepEqual(containers[0]!.env, [{ name: 'MODE', value: 'prod' }, { name: 'LEVEL', value: 'info' }]);
    assert.equal(containers[1]!.image, 'side:1');

    fs.writeFileSync(file, manifest([container('app:2')]));
    r = await kubectl(server, ['apply', '-f', file]);
    assert.equal(r.code, 0, r.stderr);
    containers = await stored();
    assert.deepEqual(containers.map((c) => c.name), ['app']);
    assert.equal(containers[0]!.image, 'app:2');
    assert.deepEqual(containers[0]!.ports, [{ containerPort: 8080, protocol: 'TCP' }]);
    assert.deepEqual(containers[0]!.env, [{ name: 'MODE', value: 'prod' }, { name: 'LEVEL', value: 'info' }]);

    r = await kubectl(server, ['delete', 'namespace', 'smp']);
    assert.equal(r.code, 0, r.stderr);
  });
});
