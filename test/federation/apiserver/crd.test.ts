// CustomResourceDefinitions registered at runtime, served in several versions, converted by an
// HTTPS webhook (apiextensions.k8s.io/v1 ConversionReview) reached through an injected dialer.
// The API server is embedded in the test process (createApiServer) so the dialer can be counted.
import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createCA, issueServerCert, readKeyPair } from '../../../certs/pki.js';
import { createLogger } from '../../../common/log.js';
import { Registry } from 'prom-client';
import { ConversionWebhookError, Converter, netDialer, type ConversionWebhookResult, type Dialer } from '../../../federation/apiserver/conversion.js';
import { serverNameOf } from '../../../proxy-server/targets.js';
import { federationDialer } from '../../../proxy-server/federation-dialer.js';
import type { DialFunction } from '../../../proxy-server/dialer.js';
import type { TunnelStream } from '../../../wire/stream.js';
import { createApiServer, type ApiServer } from '../../../federation/apiserver/server.js';
import { memberRegistry } from '../../../federation/apiserver/types.js';
import { openStore } from '../../../federation/store/open.js';
import type { Store } from '../../../federation/store/types.js';
import { assertNoLeakedResources, resourceBaseline } from '../../support/leaks.js';
import { metric } from '../../support/metrics.js';
import { scratchDir } from '../../support/paths.js';
import { testPki } from '../../support/pki.js';
import { kubectl, mastersCert, openWatch, request, type ApiServerProcess } from './harness.js';

const JSON_TYPE = 'application/json';
const CRDS = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';
const V1 = '/apis/example.com/v1/namespaces/default/widgets';
const V2 = '/apis/example.com/v2/namespaces/default/widgets';
const STORE_KEY = '/registry/example.com/widgets/default/w1';

type Mode = 'ok' | 'wrongUid' | 'wrongCount' | 'changeName' | 'http500' | 'notJson' | 'failure' | 'hang';

/** v1 stores spec.size; v2 calls it spec.replicas. */
function convertWidget(obj: any, desired: string): any { // eslint-disable-line @typescript-eslint/no-explicit-any
  const spec = { ...(obj.spec ?? {}) };
  if (desired === 'example.com/v2' && 'size' in spec) {
    spec.replicas = spec.size;
    delete spec.size;
  }
  if (desired === 'example.com/v1' && 'replicas' in spec) {
    spec.size = spec.replicas;
    delete spec.replicas;
  }
  return { ...obj, apiVersion: desired, spec };
}

describe('apiserver: CustomResourceDefinitions with webhook conversion', function () {
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let store: Store;
  let api: ApiServer;
  let webhook: https.Server;
  let webhookPort = 0;
  let caBundle = '';
  let mode: Mode = 'ok';
  let dials: string[] = [];
  let reviews = 0;
  let server: ApiServerProcess;
  const metrics = new Registry();
  /** Webhook calls counted with this result so far, and observed in the duration histogram. */
  const webhookCalls = async (result: ConversionWebhookResult): Promise<number> => {
    const text = await metrics.metrics();
    const calls = metric(text, `fedtunnel_apiserver_conversion_webhook_calls_total{result="${result}"}`);
    assert.equal(metric(text, `fedtunnel_apiserver_conversion_webhook_duration_seconds_count{result="${result}"}`), calls);
    return calls;
  };

  const post = (p: string, obj: unknown) => request(server, 'POST', p, { body: JSON.stringify(obj), contentType: JSON_TYPE });
  const put = (p: string, obj: unknown) => request(server, 'PUT', p, { body: JSON.stringify(obj), contentType: JSON_TYPE });
  const crd = (url: string, extra: object = {}, bundle = caBundle) => ({
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: 'widgets.example.com' },
    spec: {
      group: 'example.com',
      names: { kind: 'Widget', plural: 'widgets', singular: 'widget', shortNames: ['wd'] },
      scope: 'Namespaced',
      versions: [
        { name: 'v1', served: true, storage: true, subresources: { status: {} } },
        { name: 'v2', served: true, storage: false, subresources: { status: {} } },
      ],
      conversion: { strategy: 'Webhook', webhook: { clientConfig: { url, caBundle: bundle }, conversionReviewVersions: ['v1'] } },
      ...extra,
    },
  });

  before(async function () {
    baseline = await resourceBaseline();
    const pki = testPki();
    const ca = readKeyPair(path.dirname(pki.ca.cert), path.basename(pki.ca.cert, '.crt'));
    const pair = issueServerCert(ca, { commonName: 'webhook', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    caBundle = Buffer.from(fs.readFileSync(pki.ca.cert)).toString('base64');
    webhook = https.createServer({ cert: pair.certPem, key: pair.keyPem }, (req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        reviews++;
        if (mode === 'hang') return;
        if (mode === 'http500') {
          res.writeHead(500).end('boom');
          return;
        }
        if (mode === 'notJson') {
          res.writeHead(200, { 'Content-Type': JSON_TYPE }).end('<html>not a ConversionReview</html>');
          return;
        }
        const review = JSON.parse(body);
        assert.equal(review.kind, 'ConversionReview');
        assert.equal(review.apiVersion, 'apiextensions.k8s.io/v1');
        const desired = review.request.desiredAPIVersion as string;
        let convertedObjects = review.request.objects.map((o: unknown) => convertWidget(o, desired));
        if (mode === 'wrongCount') convertedObjects = [...convertedObjects, convertedObjects[0]];
        if (mode === 'changeName') convertedObjects = convertedObjects.map((o: any) => ({ ...o, metadata: { ...o.metadata, name: 'other' } })); // eslint-disable-line @typescript-eslint/no-explicit-any
        const result = mode === 'failure' ? { status: 'Failure', message: 'cannot convert widgets today' } : { status: 'Success' };
        const response = { uid: mode === 'wrongUid' ? 'not-the-uid' : review.request.uid, result, convertedObjects: mode === 'failure' ? [] : convertedObjects };
        const text = JSON.stringify({ apiVersion: 'apiextensions.k8s.io/v1', kind: 'ConversionReview', response });
        res.writeHead(200, { 'Content-Type': JSON_TYPE, 'Content-Length': Buffer.byteLength(text) }).end(text);
      });
    });
    await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
    webhookPort = (webhook.address() as AddressInfo).port;

    store = await openStore('sqlite::memory:');
    const dialer: Dialer = (hostPort) => {
      dials.push(hostPort);
      return netDialer(hostPort);
    };
    api = await createApiServer({
      store,
      registry: memberRegistry(),
      log: createLogger('apiserver', 'silent'),
      tls: { ca: fs.readFileSync(pki.ca.cert), cert: fs.readFileSync(pki.server.cert), key: fs.readFileSync(pki.server.key) },
      dialer,
      conversionTimeoutMs: 3000,
      metrics,
    });
    const port = await api.listen('127.0.0.1', 0);
    const home = scratchDir('apiserver-crd');
    const kubeconfig = path.join(home, 'kubeconfig');
    const admin = mastersCert();
    fs.writeFileSync(
      kubeconfig,
      `apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: https://127.0.0.1:${port}\n    certificate-authority: ${pki.ca.cert}\n` +
        `users:\n- name: admin\n  user:\n    client-certificate: ${admin.cert}\n    client-key: ${admin.key}\n` +
        `contexts:\n- name: admin\n  context:\n    cluster: test\n    user: admin\ncurrent-context: admin\n`,
    );
    server = { port, kubeconfig, home } as ApiServerProcess;
  });

  after(async function () {
    await api?.close();
    await store?.close();
    if (webhook) {
      webhook.closeAllConnections();
      await new Promise<void>((resolve) => webhook.close(() => resolve()));
    }
    await assertNoLeakedResources(baseline);
  });

  const url = (): string => `https://127.0.0.1:${webhookPort}/convert`;

  it('rejects invalid CRDs with a 422 Status', async function () {
    const twoStorage = crd(url(), { versions: [{ name: 'v1', served: true, storage: true }, { name: 'v2', served: true, storage: true }] });
    let r = await post(CRDS, twoStorage);
    assert.equal(r.status, 422, r.body);
    assert.equal(r.json().reason, 'Invalid');
    assert.match(r.json().message, /exactly one version marked as storage/);
    r = await post(CRDS, { ...crd(url()), metadata: { name: 'wrong.example.com' } });
    assert.equal(r.status, 422, r.body);
    r = await post(CRDS, crd(url(), { names: { kind: 'widget', plural: 'Widgets' } }));
    assert.equal(r.status, 422, r.body);
    assert.equal((await request(server, 'GET', '/apis/example.com/v1')).status, 404);
  });

  it('registers the type at once: discovery and kubectl api-resources', async function () {
    const r = await post(CRDS, crd(url()));
    assert.equal(r.status, 201, r.body);
    const v2 = (await request(server, 'GET', '/apis/example.com/v2')).json();
    assert.ok(v2.resources.some((x: { name: string }) => x.name === 'widgets'));
    assert.ok(v2.resources.some((x: { name: string }) => x.name === 'widgets/status'));
    const groups = (await request(server, 'GET', '/apis')).json();
    assert.ok(groups.groups.some((g: { name: string }) => g.name === 'example.com'));
    const k = await kubectl(server, ['api-resources']);
    assert.equal(k.code, 0, k.stderr);
    assert.match(k.stdout, /^widgets\s+wd\s+example\.com\/v\d\s+true\s+Widget$/m);
    assert.match(k.stdout, /^customresourcedefinitions\s+crd,crds\s+apiextensions\.k8s\.io\/v1\s+false\s+CustomResourceDefinition$/m);
  });

  it('stores in v1 and converts through the webhook for v2 (create, get, list, kubectl, watch)', async function () {
    dials = [];
    reviews = 0;
    const created = await post(V2, { apiVersion: 'example.com/v2', kind: 'Widget', metadata: { name: 'w1', labels: { a: 'b' } }, spec: { replicas: 3 } });
    assert.equal(created.status, 201, created.body);
    assert.equal(created.json().apiVersion, 'example.com/v2');
    assert.deepEqual(created.json().spec, { replicas: 3 });
    const raw = JSON.parse((await store.get(STORE_KEY))!.value.toString('utf8'));
    assert.equal(raw.apiVersion, 'example.com/v1');
    assert.deepEqual(raw.spec, { size: 3 });
    assert.ok(dials.length >= 2, `dialer calls: ${dials.length}`);
    assert.ok(dials.every((d) => d === `127.0.0.1:${webhookPort}`));
    assert.ok(reviews >= 2);
    assert.equal(await webhookCalls('ok'), reviews, 'every call the webhook answered is counted ok');

    const viaV1 = (await request(server, 'GET', `${V1}/w1`)).json();
    assert.equal(viaV1.apiVersion, 'example.com/v1');
    assert.deepEqual(viaV1.spec, { size: 3 });
    const viaV2 = (await request(server, 'GET', `${V2}/w1`)).json();
    assert.equal(viaV2.apiVersion, 'example.com/v2');
    assert.deepEqual(viaV2.spec, { replicas: 3 });
    assert.equal(viaV2.metadata.resourceVersion, viaV1.metadata.resourceVersion);

    const list = (await request(server, 'GET', V2)).json();
    assert.equal(list.kind, 'WidgetList');
    assert.deepEqual(list.items.map((i: { apiVersion: string; spec: unknown }) => [i.apiVersion, i.spec]), [['example.com/v2', { replicas: 3 }]]);

    const k = await kubectl(server, ['get', 'widgets.v2.example.com', 'w1', '-n', 'default', '-o', 'yaml']);
    assert.equal(k.code, 0, k.stderr);
    assert.match(k.stdout, /apiVersion: example\.com\/v2/);
    assert.match(k.stdout, /replicas: 3/);
    const k1 = await kubectl(server, ['get', 'widgets.v1.example.com', '-n', 'default', '-o', 'jsonpath={.items[0].spec.size}']);
    assert.equal(k1.stdout, '3', k1.stderr);

    const watch = await openWatch(server, `${V2}?watch=true`);
    try {
      await watch.waitFor(1);
      assert.equal(watch.events[0]!.type, 'ADDED');
      assert.deepEqual(watch.events[0]!.object.spec, { replicas: 3 });
      const updated = await put(`${V1}/w1`, { ...viaV1, spec: { size: 5 } });
      assert.equal(updated.status, 200, updated.body);
      await watch.waitFor(2);
      assert.equal(watch.events[1]!.type, 'MODIFIED');
      assert.equal(watch.events[1]!.object.apiVersion, 'example.com/v2');
      assert.deepEqual(watch.events[1]!.object.spec, { replicas: 5 });
    } finally {
      watch.stop();
    }

    const patched = await request(server, 'PATCH', `${V2}/w1`, { body: JSON.stringify({ spec: { replicas: 6 } }), contentType: 'application/merge-patch+json' });
    assert.equal(patched.status, 200, patched.body);
    assert.deepEqual(patched.json().spec, { replicas: 6 });
    assert.deepEqual(JSON.parse((await store.get(STORE_KEY))!.value.toString('utf8')).spec, { size: 6 });
  });

  const counted: Record<Exclude<Mode, 'ok' | 'hang'>, ConversionWebhookResult> = { wrongUid: 'bad_response', wrongCount: 'bad_response', changeName: 'bad_response', failure: 'webhook_failed', http500: 'http_error', notJson: 'bad_response' };
  for (const [bad, result] of Object.entries(counted) as Array<[keyof typeof counted, ConversionWebhookResult]>) {
    it(`a webhook answering ${bad} fails the request with a Status and writes nothing; the call is counted as ${result}`, async function () {
      const calls = await webhookCalls(result);
      const before = await store.currentRevision();
      const stored = (await store.get(STORE_KEY))!.value.toString('utf8');
      const current = (await request(server, 'GET', `${V2}/w1`)).json();
      mode = bad;
      try {
        const r = await put(`${V2}/w1`, { ...current, spec: { replicas: 9 } });
        assert.equal(r.status, 500, r.body);
        assert.equal(r.json().kind, 'Status');
        assert.equal(r.json().reason, 'InternalError');
        assert.match(r.json().message, /conversion webhook for widgets\.example\.com failed/);
        const g = await request(server, 'GET', `${V2}/w1`);
        assert.equal(g.status, 500);
        const c = await post(V2, { metadata: { name: 'w2' }, spec: { replicas: 1 } });
        assert.equal(c.status, 500, c.body);
      } finally {
        mode = 'ok';
      }
      assert.equal(await store.currentRevision(), before);
      assert.equal((await store.get(STORE_KEY))!.value.toString('utf8'), stored);
      assert.equal(await store.get('/registry/example.com/widgets/default/w2'), null);
      assert.deepEqual((await request(server, 'GET', `${V1}/w1`)).json().spec, { size: 6 });
      assert.equal(await webhookCalls(result), calls + 3, 'the update, the get and the create each called the webhook once');
    });
  }

  it('a webhook failing mid-watch ends the watch with an ERROR Status, neither hanging nor skipping the event', async function () {
    const watch = await openWatch(server, `${V2}?watch=true`);
    const current = (await request(server, 'GET', `${V1}/w1`)).json();
    try {
      await watch.waitFor(1);
      assert.equal(watch.events[0]!.type, 'ADDED');
      mode = 'http500';
      // Written in the storage version: only the watch, serving v2, needs the webhook.
      const updated = await put(`${V1}/w1`, { ...current, spec: { size: 8 } });
      assert.equal(updated.status, 200, updated.body);
      await watch.waitFor(2);
      const failed = watch.events[1]!;
      assert.equal(failed.type, 'ERROR', JSON.stringify(watch.events));
      assert.equal(failed.object.kind, 'Status');
      assert.equal(failed.object.code, 500);
      assert.match(failed.object.message, /conversion webhook for widgets\.example\.com failed/);
      await watch.ended;
      assert.equal(watch.events.length, 2, 'nothing follows the ERROR');
    } finally {
      mode = 'ok';
      watch.stop();
    }
    const latest = (await request(server, 'GET', `${V1}/w1`)).json();
    assert.equal((await put(`${V1}/w1`, { ...latest, spec: { size: 6 } })).status, 200);
  });

  const replaceCrd = async (obj: ReturnType<typeof crd>): Promise<void> => {
    const current = (await request(server, 'GET', `${CRDS}/widgets.example.com`)).json();
    const r = await put(`${CRDS}/widgets.example.com`, { ...obj, metadata: { ...obj.metadata, resourceVersion: current.metadata.resourceVersion } });
    assert.equal(r.status, 200, r.body);
  };

  it('kubectl apply creates and patches a custom resource in v2', async function () {
    const doc = (n: number) => `apiVersion: example.com/v2\nkind: Widget\nmetadata:\n  name: w3\n  namespace: default\nspec:\n  replicas: ${n}\n`;
    let k = await kubectl(server, ['apply', '-f', '-'], doc(2));
    assert.equal(k.code, 0, k.stderr);
    k = await kubectl(server, ['apply', '-f', '-'], doc(4));
    assert.equal(k.code, 0, k.stderr);
    assert.deepEqual(JSON.parse((await store.get('/registry/example.com/widgets/default/w3'))!.value.toString('utf8')).spec, { size: 4 });
    k = await kubectl(server, ['delete', 'widgets.v2.example.com', 'w3', '-n', 'default']);
    assert.equal(k.code, 0, k.stderr);
  });

  it('a webhook certificate not signed by the caBundle fails the request', async function () {
    await replaceCrd(crd(url(), {}, Buffer.from(createCA({ commonName: 'other-ca' }).certPem).toString('base64')));
    try {
      const before = await store.currentRevision();
      const calls = await webhookCalls('connection_failed');
      const w = await put(`${V2}/w1`, { metadata: { name: 'w1' }, spec: { replicas: 9 } });
      assert.equal(w.status, 500, w.body);
      assert.match(w.json().message, /conversion webhook for widgets\.example\.com failed: .*certificate/i);
      assert.equal(await store.currentRevision(), before);
      assert.equal(await webhookCalls('connection_failed'), calls + 1);
    } finally {
      await replaceCrd(crd(url()));
    }
  });

  it('a webhook that never answers times out', async function () {
    mode = 'hang';
    try {
      const calls = await webhookCalls('timeout');
      const started = Date.now();
      const g = await request(server, 'GET', `${V2}/w1`);
      assert.equal(g.status, 500, g.body);
      assert.match(g.json().message, /timed out after 3000 ms/);
      assert.ok(Date.now() - started < 8000);
      const before = await store.currentRevision();
      const w = await put(`${V2}/w1`, { metadata: { name: 'w1' }, spec: { replicas: 9 } });
      assert.equal(w.status, 500, w.body);
      assert.equal(await store.currentRevision(), before, 'a timed-out conversion writes nothing');
      // the GET and the PUT each waited for the webhook once
      assert.equal(await webhookCalls('timeout'), calls + 2);
    } finally {
      mode = 'ok';
    }
    assert.equal((await request(server, 'GET', `${V2}/w1`)).status, 200);
  });

  it('an unreachable webhook fails the request with a Status and writes nothing', async function () {
    const closed = https.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await replaceCrd(crd(`https://127.0.0.1:${deadPort}/convert`));
    const before = await store.currentRevision();
    const calls = await webhookCalls('connection_failed');
    const w = await put(`${V2}/w1`, { metadata: { name: 'w1' }, spec: { replicas: 9 } });
    assert.equal(w.status, 500, w.body);
    assert.match(w.json().message, /conversion webhook for widgets\.example\.com failed: .*ECONNREFUSED/);
    assert.equal(await webhookCalls('connection_failed'), calls + 1);
    assert.equal(await store.currentRevision(), before);
    assert.deepEqual((await request(server, 'GET', `${V1}/w1`)).json().spec, { size: 6 });
  });

  it('strategy None: a cluster-scoped type whose versions differ only in apiVersion', async function () {
    dials = [];
    const def = {
      metadata: { name: 'gadgets.example.com' },
      spec: {
        group: 'example.com',
        names: { kind: 'Gadget', plural: 'gadgets' },
        scope: 'Cluster',
        versions: [
          { name: 'v1beta1', served: true, storage: false },
          { name: 'v1', served: true, storage: true },
        ],
        conversion: { strategy: 'None' },
      },
    };
    assert.equal((await post(CRDS, def)).status, 201);
    try {
      const c = await post('/apis/example.com/v1beta1/gadgets', { metadata: { name: 'g1' }, spec: { color: 'red' } });
      assert.equal(c.status, 201, c.body);
      assert.equal(c.json().apiVersion, 'example.com/v1beta1');
      const raw = JSON.parse((await store.get('/registry/example.com/gadgets/g1'))!.value.toString('utf8'));
      assert.equal(raw.apiVersion, 'example.com/v1');
      assert.deepEqual(raw.spec, { color: 'red' });
      const g = (await request(server, 'GET', '/apis/example.com/v1/gadgets/g1')).json();
      assert.equal(g.apiVersion, 'example.com/v1');
      assert.deepEqual(g.spec, { color: 'red' });
      assert.deepEqual(dials, []);
      const k = await kubectl(server, ['get', 'gadgets.v1beta1.example.com', 'g1', '-o', 'jsonpath={.apiVersion} {.spec.color}']);
      assert.equal(k.stdout, 'example.com/v1beta1 red', k.stderr);
    } finally {
      assert.equal((await request(server, 'DELETE', `${CRDS}/gadgets.example.com`)).status, 200);
    }
  });

  // A socket stands in for the tunnel here; test/integration/webhook-tunnel.test.ts runs it over a real agent.
  it('the proxy-server dialer routes <host>.<cluster>.tunnel to dial() with the inner host name, other hosts directly only when direct egress is on', async function () {
    assert.equal(serverNameOf('localhost.alpha.tunnel'), 'localhost');
    assert.equal(serverNameOf('webhook.ns.svc.alpha.tunnel'), 'webhook.ns.svc');
    assert.equal(serverNameOf('127.0.0.1'), '127.0.0.1');
    const dialed: Array<[string, string]> = [];
    const dial: DialFunction = async (cluster, address) => {
      dialed.push([cluster, address]);
      return (await netDialer(address.replace(/^localhost:/, '127.0.0.1:'))) as unknown as TunnelStream;
    };
    const direct: string[] = [];
    const converter = new Converter({ dialer: federationDialer(dial, { directEgress: true, direct: (hp) => (direct.push(hp), netDialer(hp)) }), timeoutMs: 3000 });
    const versioning = { name: 'widgets.example.com', storageVersion: 'v1', conversion: { strategy: 'Webhook' as const, url: `https://localhost.alpha.tunnel:${webhookPort}/convert`, caBundle, conversionReviewVersions: ['v1'] } };
    const obj = { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'x', namespace: 'default' }, spec: { size: 7 } };
    const [out] = await converter.convert(versioning, [obj], 'example.com/v2');
    assert.deepEqual(out!.spec, { replicas: 7 });
    assert.deepEqual(dialed, [['alpha', `localhost:${webhookPort}`]]);
    assert.deepEqual(direct, []);
    await converter.convert({ ...versioning, conversion: { ...versioning.conversion, url: `https://127.0.0.1:${webhookPort}/convert` } }, [obj], 'example.com/v2');
    assert.deepEqual(direct, [`127.0.0.1:${webhookPort}`]);
    // The default: tunnel only; a direct address fails the conversion with a 500 naming the flag.
    const dialedDirectly: string[] = [];
    const tunnelOnly = new Converter({ dialer: federationDialer(dial, { direct: (hp) => (dialedDirectly.push(hp), netDialer(hp)) }), timeoutMs: 3000 });
    await assert.rejects(
      tunnelOnly.convert({ ...versioning, conversion: { ...versioning.conversion, url: `https://127.0.0.1:${webhookPort}/convert` } }, [obj], 'example.com/v2'),
      (err: unknown) => err instanceof ConversionWebhookError && err.code === 500 && err.result === 'connection_failed' && /direct egress from the hub is off \(--federation-direct-egress/.test(err.message),
    );
    assert.equal(dialedDirectly.length, 0, 'nothing dialed directly');
    assert.equal((await tunnelOnly.convert(versioning, [obj], 'example.com/v2'))[0]!.apiVersion, 'example.com/v2');
  });

  it('registers stored CRDs when a server starts on the same store', async function () {
    const pki = testPki();
    const second = await createApiServer({
      store,
      registry: memberRegistry(),
      log: createLogger('apiserver', 'silent'),
      tls: { ca: fs.readFileSync(pki.ca.cert), cert: fs.readFileSync(pki.server.cert), key: fs.readFileSync(pki.server.key) },
    });
    try {
      const t = second.resources.registry.lookup('example.com', 'v2', 'widgets');
      assert.ok(t);
      assert.equal(t.crd?.storageVersion, 'v1');
    } finally {
      await second.close();
    }
  });

  it('deleting the CRD removes the type from discovery', async function () {
    const r = await request(server, 'DELETE', `${CRDS}/widgets.example.com`);
    assert.equal(r.status, 200, r.body);
    assert.equal((await request(server, 'GET', `${V2}/w1`)).status, 404);
    assert.equal((await request(server, 'GET', '/apis/example.com/v2')).status, 404);
    assert.ok(!(await request(server, 'GET', '/apis')).json().groups.some((g: { name: string }) => g.name === 'example.com'));
    assert.equal(await store.get(STORE_KEY), null, 'the objects of a deleted CRD are deleted');
    const k = await kubectl(server, ['get', 'widgets.v2.example.com', '-n', 'default']);
    assert.notEqual(k.code, 0);
    // Created again: served at once, and empty.
    assert.equal((await post(CRDS, crd(url()))).status, 201);
    const list = (await request(server, 'GET', V2)).json();
    assert.deepEqual(list.items, []);
    assert.equal((await request(server, 'DELETE', `${CRDS}/widgets.example.com`)).status, 200);
  });
});
