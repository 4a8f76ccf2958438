// Raw HTTP contracts of the API server binary: Status errors (401/403/404/405/409/413/415/422/400)
// leave the store unchanged, finalizers, the status subresource, generation, patches, pagination
// and watch streams.
import { strict as assert } from 'node:assert';
import { assertNoLeakedResources, resourceBaseline } from '../../support/leaks.js';
import { openWatch, request, startApiServer, type ApiServerProcess } from './harness.js';
import { MAX_BODY_DEPTH } from '../../../federation/apiserver/body.js';

const JSON_TYPE = 'application/json';
const CM = '/api/v1/namespaces/h/configmaps';

describe('apiserver: HTTP contracts of the binary', function () {
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let server: ApiServerProcess;

  const post = (p: string, obj: unknown) => request(server, 'POST', p, { body: JSON.stringify(obj), contentType: JSON_TYPE });
  const storeRevision = async (): Promise<string> => (await request(server, 'GET', '/api/v1/namespaces')).json().metadata.resourceVersion;
  const assertStatus = (r: { status: number; json: () => any }, code: number, reason: string): void => { // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.equal(r.status, code, JSON.stringify(r.json()));
    const s = r.json();
    assert.equal(s.kind, 'Status');
    assert.equal(s.apiVersion, 'v1');
    assert.equal(s.status, 'Failure');
    assert.equal(s.code, code);
    assert.equal(s.reason, reason);
    assert.equal(typeof s.message, 'string');
  };

  before(async function () {
    baseline = await resourceBaseline();
    server = await startApiServer('http', ['--bookmark-interval-ms', '200']);
    assert.equal((await post('/api/v1/namespaces', { metadata: { name: 'h' } })).status, 201);
  });

  after(async function () {
    await server?.kill();
    await assertNoLeakedResources(baseline);
  });

  it('serves health and discovery documents', async function () {
    assert.equal((await request(server, 'GET', '/healthz', { as: 'anonymous' })).body, 'ok');
    assert.equal((await request(server, 'GET', '/readyz')).status, 200);
    assert.deepEqual((await request(server, 'GET', '/api')).json().versions, ['v1']);
    const groups = (await request(server, 'GET', '/apis')).json();
    assert.equal(groups.kind, 'APIGroupList');
    assert.deepEqual(groups.groups.map((g: { name: string }) => g.name), ['apps', 'apiextensions.k8s.io', 'rbac.authorization.k8s.io', 'authorization.k8s.io', 'authentication.k8s.io']);
    const core = (await request(server, 'GET', '/api/v1')).json();
    assert.equal(core.kind, 'APIResourceList');
    const cm = core.resources.find((r: { name: string }) => r.name === 'configmaps');
    assert.deepEqual(cm.verbs.sort(), ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch']);
    const apps = (await request(server, 'GET', '/apis/apps/v1')).json();
    assert.ok(apps.resources.some((r: { name: string }) => r.name === 'deployments/status'));
    assertStatus(await request(server, 'GET', '/apis/nope/v1'), 404, 'NotFound');
  });

  it('401 without a client certificate; 403 (RBAC) for a user without bindings, who still reads discovery', async function () {
    assertStatus(await request(server, 'GET', CM, { as: 'anonymous' }), 401, 'Unauthorized');
    assertStatus(await request(server, 'POST', CM, { as: 'bob', body: '{"metadata":{"name":"a"}}', contentType: JSON_TYPE }), 403, 'Forbidden');
    const read = await request(server, 'GET', CM, { as: 'bob' });
    assertStatus(read, 403, 'Forbidden');
    assert.deepEqual(read.json().details, { group: '', kind: 'configmaps' });
    assert.match(read.json().message, /^configmaps is forbidden: User "bob" cannot list resource "configmaps" in API group "" in the namespace "[a-z0-9-]+"$/);
    assert.equal((await request(server, 'GET', '/api/v1', { as: 'bob' })).status, 200);
    assert.equal((await request(server, 'GET', '/version', { as: 'bob' })).status, 200);
  });

  it('409 Conflict on a stale update, 409 AlreadyExists on a duplicate create', async function () {
    const created = (await post(CM, { metadata: { name: 'c1' }, data: { a: '1' } })).json();
    assertStatus(await post(CM, { metadata: { name: 'c1' } }), 409, 'AlreadyExists');
    const fresh = await request(server, 'PUT', `${CM}/c1`, { body: JSON.stringify({ ...created, data: { a: '2' } }), contentType: JSON_TYPE });
    assert.equal(fresh.status, 200);
    assert.notEqual(fresh.json().metadata.resourceVersion, created.metadata.resourceVersion);
    const before = await storeRevision();
    assertStatus(await request(server, 'PUT', `${CM}/c1`, { body: JSON.stringify({ ...created, data: { a: '3' } }), contentType: JSON_TYPE }), 409, 'Conflict');
    assert.equal(await storeRevision(), before);
    assert.deepEqual((await request(server, 'GET', `${CM}/c1`)).json().data, { a: '2' });
  });

  it('bad input is refused with the right Status and never changes the store', async function () {
    const before = await storeRevision();
    assertStatus(await post(CM, { metadata: { name: 'Bad_Name' } }), 422, 'Invalid');
    assertStatus(await post('/api/v1/namespaces', { metadata: { name: 'a.b' } }), 422, 'Invalid');
    assertStatus(await post(CM, { metadata: {} }), 422, 'Invalid');
    assertStatus(await request(server, 'POST', CM, { body: '{"metadata": {', contentType: JSON_TYPE }), 400, 'BadRequest');
    assertStatus(await request(server, 'POST', CM, { body: '[1,2]', contentType: JSON_TYPE }), 400, 'BadRequest');
    assertStatus(await post(CM, { kind: 'Secret', metadata: { name: 'k' } }), 400, 'BadRequest');
    assertStatus(await request(server, 'POST', CM, { body: 'a: b', contentType: 'text/plain' }), 415, 'UnsupportedMediaType');
    assertStatus(await request(server, 'PATCH', `${CM}/c1`, { body: '{}', contentType: 'application/apply-patch+yaml' }), 415, 'UnsupportedMediaType');
    assertStatus(await request(server, 'PATCH', `${CM}/c1`, { body: '{not json', contentType: 'application/merge-patch+json' }), 400, 'BadRequest');
    assertStatus(await request(server, 'PATCH', `${CM}/c1`, { body: '[{"op":"test","path":"/data/a","value":"x"}]', contentType: 'application/json-patch+json' }), 422, 'Invalid');
    assertStatus(await request(server, 'PATCH', `${CM}/c1`, { body: '{"metadata":{"name":"other"}}', contentType: 'application/merge-patch+json' }), 400, 'BadRequest');
    assertStatus(await request(server, 'GET', `${CM}?labelSelector=${encodeURIComponent('a in (b')}`), 400, 'BadRequest');
    assertStatus(await request(server, 'GET', `${CM}?fieldSelector=spec.x%3D1`), 400, 'BadRequest');
    assertStatus(await request(server, 'GET', `${CM}?continue=garbage`), 400, 'BadRequest');
    assertStatus(await request(server, 'DELETE', CM), 405, 'MethodNotAllowed');
    assertStatus(await request(server, 'POST', `${CM}/c1`, { body: '{}', contentType: JSON_TYPE }), 405, 'MethodNotAllowed');
    assertStatus(await request(server, 'GET', `${CM}/missing`), 404, 'NotFound');
    assertStatus(await request(server, 'GET', '/api/v1/namespaces/h/configmaps/c1/status'), 404, 'NotFound');
    const big = JSON.stringify({ metadata: { name: 'big' }, data: { a: 'x'.repeat(3 * 1024 * 1024) } });
    assertStatus(await request(server, 'POST', CM, { body: big, contentType: JSON_TYPE }), 413, 'RequestEntityTooLarge');
    assert.equal(await storeRevision(), before);
    assert.equal((await request(server, 'GET', '/livez')).status, 200, 'the server is still up');
  });

  it('merge, strategic and JSON patches', async function () {
    let r = await request(server, 'PATCH', `${CM}/c1`, { body: '{"metadata":{"labels":{"x":"1"}},"data":{"b":"2"}}', contentType: 'application/merge-patch+json' });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json().data, { a: '2', b: '2' });
    r = await request(server, 'PATCH', `${CM}/c1`, { body: '{"data":{"a":null}}', contentType: 'application/strategic-merge-patch+json' });
    assert.deepEqual(r.json().data, { b: '2' });
    r = await request(server, 'PATCH', `${CM}/c1`, { body: '[{"op":"add","path":"/data/c","value":"3"},{"op":"remove","path":"/metadata/labels/x"}]', contentType: 'application/json-patch+json' });
    assert.deepEqual(r.json().data, { b: '2', c: '3' });
    assert.deepEqual(r.json().metadata.labels, {});
  });

  it('fuzz regression: bodies nested deeper than MAX_BODY_DEPTH are 400, a JSON patch that builds one is 422, the store is unchanged', async function () {
    // Found by test/fuzz: 5000 nested arrays parsed, then overflowed the stack in the patch code (500).
    assert.equal((await post(CM, { metadata: { name: 'deep' } })).status, 201);
    const before = await storeRevision();
    const nested = (depth: number): string => '['.repeat(depth) + ']'.repeat(depth);
    assertStatus(await request(server, 'POST', CM, { body: `{"metadata":{"name":"d2"},"x":${nested(MAX_BODY_DEPTH)}}`, contentType: JSON_TYPE }), 400, 'BadRequest');
    assertStatus(await request(server, 'PATCH', `${CM}/deep`, { body: `{"x":${nested(5000)}}`, contentType: 'application/merge-patch+json' }), 400, 'BadRequest');
    // Each half is within the limit; the patched object (a deep value added deep inside another) is not.
    const half = MAX_BODY_DEPTH - 10;
    const ops = `[{"op":"add","path":"/x","value":${nested(half)}},{"op":"add","path":"/x${'/0'.repeat(half)}","value":${nested(half)}}]`;
    assertStatus(await request(server, 'PATCH', `${CM}/deep`, { body: ops, contentType: 'application/json-patch+json' }), 422, 'Invalid');
    assert.equal(await storeRevision(), before);
  });

  it('lists with limit and continue, and selectors', async function () {
    for (const n of ['p1', 'p2', 'p3', 'p4']) assert.equal((await post(CM, { metadata: { name: n, labels: { page: 'yes' } } })).status, 201);
    const names: string[] = [];
    let cont = '';
    let pages = 0;
    do {
      const r = (await request(server, 'GET', `${CM}?labelSelector=page%3Dyes&limit=3${cont ? `&continue=${encodeURIComponent(cont)}` : ''}`)).json();
      assert.equal(r.kind, 'ConfigMapList');
      names.push(...r.items.map((i: { metadata: { name: string } }) => i.metadata.name));
      cont = r.metadata.continue ?? '';
      pages++;
    } while (cont);
    assert.deepEqual(names, ['p1', 'p2', 'p3', 'p4']);
    assert.equal(pages, 2);
    const byName = (await request(server, 'GET', `/api/v1/configmaps?fieldSelector=metadata.name%3Dp2,metadata.namespace%3Dh`)).json();
    assert.deepEqual(byName.items.map((i: { metadata: { name: string } }) => i.metadata.name), ['p2']);
    const table = (await request(server, 'GET', `${CM}?labelSelector=page`, { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json' })).json();
    assert.equal(table.kind, 'Table');
    assert.deepEqual(table.columnDefinitions.map((c: { name: string }) => c.name), ['Name', 'Data', 'Age']);
    assert.equal(table.rows.length, 4);
  });

  it('finalizers keep a deleted object until an update empties them', async function () {
    assert.equal((await post(CM, { metadata: { name: 'fin', finalizers: ['example.com/hold'] } })).status, 201);
    const del = await request(server, 'DELETE', `${CM}/fin`);
    assert.equal(del.status, 200);
    const marked = (await request(server, 'GET', `${CM}/fin`)).json();
    assert.ok(marked.metadata.deletionTimestamp);
    assert.deepEqual(marked.metadata.finalizers, ['example.com/hold']);
    const r = await request(server, 'PATCH', `${CM}/fin`, { body: '{"metadata":{"finalizers":null}}', contentType: 'application/merge-patch+json' });
    assert.equal(r.status, 200);
    assertStatus(await request(server, 'GET', `${CM}/fin`), 404, 'NotFound');
  });

  it('status subresource and generation for deployments', async function () {
    const D = '/apis/apps/v1/namespaces/h/deployments';
    const created = (await post(D, { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd' }, spec: { replicas: 1 }, status: { replicas: 9 } })).json();
    assert.equal(created.metadata.generation, 1);
    assert.equal(created.status, undefined, 'status is not set through the main resource');
    let r = (await request(server, 'PUT', `${D}/d/status`, { body: JSON.stringify({ ...created, spec: { replicas: 5 }, status: { replicas: 1 } }), contentType: JSON_TYPE })).json();
    assert.deepEqual(r.status, { replicas: 1 });
    assert.deepEqual(r.spec, { replicas: 1 }, 'spec is not changed through /status');
    assert.equal(r.metadata.generation, 1);
    r = (await request(server, 'PATCH', `${D}/d`, { body: '{"spec":{"replicas":3},"status":{"replicas":0}}', contentType: 'application/merge-patch+json' })).json();
    assert.equal(r.metadata.generation, 2);
    assert.deepEqual(r.status, { replicas: 1 });
    r = (await request(server, 'PATCH', `${D}/d`, { body: '{"metadata":{"labels":{"a":"b"}}}', contentType: 'application/merge-patch+json' })).json();
    assert.equal(r.metadata.generation, 2, 'metadata changes do not bump the generation');
  });

  it('watch streams ADDED/MODIFIED/DELETED, bookmarks, and both URL forms', async function () {
    const start = (await request(server, 'GET', CM)).json().metadata.resourceVersion;
    const w = await openWatch(server, `${CM}?watch=true&resourceVersion=${start}&allowWatchBookmarks=true`);
    const named = await openWatch(server, `/api/v1/watch/namespaces/h/configmaps/w1?resourceVersion=${start}`);
    try {
      assert.equal(w.status, 200);
      await post(CM, { metadata: { name: 'w1' } });
      await post(CM, { metadata: { name: 'w2' } });
      await request(server, 'PATCH', `${CM}/w1`, { body: '{"data":{"k":"v"}}', contentType: 'application/merge-patch+json' });
      await request(server, 'DELETE', `${CM}/w1`);
      const seen = () => w.events.filter((e) => e.type !== 'BOOKMARK').map((e) => `${e.type} ${e.object.metadata.name}`);
      const deadline = Date.now() + 10_000;
      while (seen().length < 4 && Date.now() < deadline) await w.waitFor(w.events.length + 1);
      assert.deepEqual(seen(), ['ADDED w1', 'ADDED w2', 'MODIFIED w1', 'DELETED w1']);
      await named.waitFor(3);
      assert.deepEqual(named.events.map((e) => e.type), ['ADDED', 'MODIFIED', 'DELETED']);
      while (!w.events.some((e) => e.type === 'BOOKMARK')) await w.waitFor(w.events.length + 1);
      const bookmark = w.events.find((e) => e.type === 'BOOKMARK')!;
      assert.equal(bookmark.object.kind, 'ConfigMap');
      assert.match(bookmark.object.metadata.resourceVersion, /^\d+$/);
    } finally {
      w.stop();
      named.stop();
    }
  });

  it('a watch without resourceVersion starts with the current objects', async function () {
    const w = await openWatch(server, `${CM}?watch=1&fieldSelector=metadata.name%3Dp1`);
    try {
      await w.waitFor(1);
      assert.equal(w.events[0]!.type, 'ADDED');
      assert.equal(w.events[0]!.object.metadata.name, 'p1');
    } finally {
      w.stop();
    }
  });
});
