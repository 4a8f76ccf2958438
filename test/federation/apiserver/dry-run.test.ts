// dryRun=All on every write verb (a bug there writes to the store), and watch edges: timeoutSeconds
// ends the stream, a future resourceVersion is refused. Against the API server binary.
import { strict as assert } from 'node:assert';
import { assertNoLeakedResources, resourceBaseline } from '../../support/leaks.js';
import { request, startApiServer, type ApiServerProcess } from './harness.js';

const CM = '/api/v1/namespaces/default/configmaps';
const json = 'application/json';

describe('apiserver: dryRun on every write verb, watch timeouts and future versions', function () {
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let server: ApiServerProcess;

  before(async function () {
    baseline = await resourceBaseline();
    server = await startApiServer('dry-run', ['--log-level', 'debug']);
    const r = await request(server, 'POST', CM, { body: JSON.stringify({ metadata: { name: 'real' }, data: { v: '1' } }), contentType: json });
    assert.equal(r.status, 201, r.body);
  });

  after(async function () {
    await server?.kill();
    await assertNoLeakedResources(baseline);
  });

  async function stored(name: string): Promise<{ status: number; data?: Record<string, string>; resourceVersion?: string }> {
    const r = await request(server, 'GET', `${CM}/${name}`);
    if (r.status !== 200) return { status: r.status };
    const o = r.json();
    return { status: 200, data: o.data, resourceVersion: o.metadata.resourceVersion };
  }

  it('create: answers the object it would create and stores nothing', async function () {
    const r = await request(server, 'POST', `${CM}?dryRun=All`, { body: JSON.stringify({ metadata: { name: 'ghost' }, data: { v: '1' } }), contentType: json });
    assert.equal(r.status, 201, r.body);
    assert.equal(r.json().metadata.name, 'ghost');
    assert.equal((await stored('ghost')).status, 404);
  });

  it('update, merge patch and JSON patch: answer the result and leave the stored object alone', async function () {
    const before = await stored('real');
    const current = (await request(server, 'GET', `${CM}/real`)).json();
    const put = await request(server, 'PUT', `${CM}/real?dryRun=All`, { body: JSON.stringify({ ...current, data: { v: 'put' } }), contentType: json });
    assert.equal(put.status, 200, put.body);
    assert.equal(put.json().data.v, 'put');
    const merge = await request(server, 'PATCH', `${CM}/real?dryRun=All`, { body: JSON.stringify({ data: { v: 'merge' } }), contentType: 'application/merge-patch+json' });
    assert.equal(merge.status, 200, merge.body);
    assert.equal(merge.json().data.v, 'merge');
    const patch = await request(server, 'PATCH', `${CM}/real?dryRun=All`, { body: JSON.stringify([{ op: 'replace', path: '/data/v', value: 'json' }]), contentType: 'application/json-patch+json' });
    assert.equal(patch.status, 200, patch.body);
    assert.deepEqual(await stored('real'), before);
  });

  it('delete: by query and by DeleteOptions body, the object stays', async function () {
    const before = await stored('real');
    assert.equal((await request(server, 'DELETE', `${CM}/real?dryRun=All`)).status, 200);
    const body = await request(server, 'DELETE', `${CM}/real`, { body: JSON.stringify({ kind: 'DeleteOptions', apiVersion: 'v1', dryRun: ['All'] }), contentType: json });
    assert.equal(body.status, 200, body.body);
    assert.deepEqual(await stored('real'), before);
  });

  it('a watch with timeoutSeconds ends by itself, and says so', async function () {
    const since = server.mark;
    const r = await request(server, 'GET', `${CM}?watch=1&timeoutSeconds=1&resourceVersion=${(await stored('real')).resourceVersion}`);
    assert.equal(r.status, 200);
    await server.waitForLog((l) => l.msg === 'watch ended' && l.reason === 'timeout', { since });
  });

  it('a watch from a future resourceVersion is refused with a Status', async function () {
    const r = await request(server, 'GET', `${CM}?watch=1&resourceVersion=999999999`);
    assert.equal(r.status, 504);
    assert.match(r.json().message, /Too large resource version/);
  });
});
