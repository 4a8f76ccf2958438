// The API server binary driven by the official JavaScript client (@kubernetes/client-node 1.x),
// authenticated with the harness kubeconfig's client certificate: typed CoreV1Api calls, JSON and
// merge patches, and a Watch that sees ADDED/MODIFIED/DELETED in order and is closed cleanly.
import { strict as assert } from 'node:assert';
import { CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions, Watch, type V1ConfigMap } from '@kubernetes/client-node';
import { assertNoLeakedResources, resourceBaseline } from '../../support/leaks.js';
import { startApiServer, type ApiServerProcess } from './harness.js';

describe('apiserver: @kubernetes/client-node against the binary', function () {
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let server: ApiServerProcess;
  let kc: KubeConfig;
  let core: CoreV1Api;

  before(async function () {
    baseline = await resourceBaseline();
    // Debug level: the server's 'watch ended' line shows that aborting a Watch closes it.
    server = await startApiServer('client-node', ['--log-level', 'debug']);
    kc = new KubeConfig();
    kc.loadFromFile(server.kubeconfig);
    core = kc.makeApiClient(CoreV1Api);
  });

  after(async function () {
    await server?.kill();
    await assertNoLeakedResources(baseline);
  });

  it('lists namespaces', async function () {
    assert.equal(kc.getCurrentUser()?.name, 'admin');
    const list = await core.listNamespace();
    assert.ok(list.items.some((n) => n.metadata?.name === 'default'), JSON.stringify(list));
    assert.match(list.metadata?.resourceVersion ?? '', /^[0-9]+$/);
  });

  it('creates a ConfigMap, applies a JSON patch (the default) and a merge patch', async function () {
    const created = await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'cn', labels: { app: 'x' } }, data: { a: '1' } } });
    assert.equal(created.metadata?.name, 'cn');
    assert.ok(created.metadata?.uid);

    const jsonPatched = await core.patchNamespacedConfigMap({ name: 'cn', namespace: 'default', body: [{ op: 'replace', path: '/data/a', value: '2' }] });
    assert.deepEqual(jsonPatched.data, { a: '2' });

    // client-node 1.x: the patch content type is chosen with a header-setting middleware.
    const merged = await core.patchNamespacedConfigMap(
      { name: 'cn', namespace: 'default', body: { data: { b: '3' }, metadata: { labels: { app: null } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    assert.deepEqual(merged.data, { a: '2', b: '3' });
    assert.equal(merged.metadata?.labels?.app, undefined);
    assert.ok(Number(merged.metadata?.resourceVersion) > Number(created.metadata?.resourceVersion));

    const read = await core.readNamespacedConfigMap({ name: 'cn', namespace: 'default' });
    assert.deepEqual(read.data, { a: '2', b: '3' });
  });

  it('reports API errors with their HTTP code', async function () {
    await assert.rejects(core.readNamespacedConfigMap({ name: 'missing', namespace: 'default' }), (err: { code?: number; body?: string }) => {
      assert.equal(err.code, 404);
      assert.match(String(err.body), /"reason":"NotFound"/);
      return true;
    });
  });

  it('Watch sees ADDED, MODIFIED, DELETED in order; aborting it closes the connection', async function () {
    const start = await core.listNamespacedConfigMap({ namespace: 'default' });
    const events: Array<{ type: string; name: string; data?: Record<string, string> }> = [];
    const waiters = new Set<() => void>();
    let doneErr: unknown = 'not called';
    let markDone!: () => void;
    const done = new Promise<void>((resolve) => (markDone = resolve));
    // watch() resolves with its controller once the watch request is established.
    const controller: AbortController = await new Watch(kc).watch(
      '/api/v1/namespaces/default/configmaps',
      { resourceVersion: start.metadata?.resourceVersion },
      (type, obj: V1ConfigMap) => {
        events.push({ type, name: obj.metadata?.name ?? '', data: obj.data });
        for (const w of [...waiters]) w();
      },
      (err) => {
        doneErr = err;
        markDone();
      },
    );
    const waitFor = (n: number): Promise<void> =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          if (events.length < n) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`only ${events.length} of ${n} events: ${JSON.stringify(events)}`));
        }, 15_000);
        waiters.add(check);
        check();
      });

    await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'w' }, data: { v: '1' } } });
    await core.patchNamespacedConfigMap({ name: 'w', namespace: 'default', body: { data: { v: '2' } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    await core.deleteNamespacedConfigMap({ name: 'w', namespace: 'default' });
    await waitFor(3);
    const mine = events.filter((e) => e.name === 'w');
    assert.deepEqual(
      mine.map((e) => e.type),
      ['ADDED', 'MODIFIED', 'DELETED'],
      JSON.stringify(events),
    );
    assert.deepEqual(mine[1]!.data, { v: '2' });

    const since = server.mark;
    controller.abort();
    await done;
    assert.notEqual(doneErr, 'not called');
    await server.waitForLog((l) => l.msg === 'watch ended' && l.resource === 'configmaps' && l.reason === 'client closed', { since });
  });
});
