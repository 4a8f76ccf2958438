// The API server's metrics: request labels (pure, bounded whatever the URL), and GET /metrics of
// the real binary after requests of every kind — a write refused by a full disk (SQLite on a small
// tmpfs, as in test/integration/faults-sqlite.test.ts), a revoked and a foreign client certificate,
// a refused write, a watch opened and closed.
import { strict as assert } from 'node:assert';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import net from 'node:net';
import tls from 'node:tls';
import fc from 'fast-check';
import { ALL_VERBS } from '../../../federation/apiserver/authz.js';
import { requestLabels, type RequestLabels } from '../../../federation/apiserver/metrics.js';
import { parseRequestUrl } from '../../../federation/apiserver/routes.js';
import { memberRegistry } from '../../../federation/apiserver/types.js';
import { foreignClientCert } from '../../support/bad-certs.js';
import { assertNoLeakedResources, resourceBaseline } from '../../support/leaks.js';
import { metric } from '../../support/metrics.js';
import { scratchDir } from '../../support/paths.js';
import { testPki } from '../../support/pki.js';
import { fillFileSystem, mountTmpfsOrSkip, unmount } from '../../support/tmpfs.js';
import { openWatch, request, startApiServer, type ApiServerProcess } from './harness.js';

describe('apiserver metrics: request labels', function () {
  const types = memberRegistry();
  const isServed = (g: string, v: string, p: string): boolean => types.lookup(g, v, p) !== undefined;
  const isNamespaced = (g: string, v: string, p: string): boolean => types.lookup(g, v, p)?.namespaced === true;
  const labels = (method: string, url: string): RequestLabels => {
    const { url: u, route } = parseRequestUrl(url, isNamespaced);
    return requestLabels(method, route, u?.searchParams.get('watch') === 'true', isServed);
  };

  it('a served type: the Kubernetes verb, its group and plural', function () {
    const cm = '/api/v1/namespaces/a/configmaps';
    assert.deepEqual(labels('GET', cm), { verb: 'list', group: '', resource: 'configmaps' });
    assert.deepEqual(labels('GET', `${cm}?watch=true`), { verb: 'watch', group: '', resource: 'configmaps' });
    assert.deepEqual(labels('GET', '/api/v1/watch/namespaces/a/configmaps/x'), { verb: 'watch', group: '', resource: 'configmaps' });
    assert.deepEqual(labels('GET', `${cm}/x`), { verb: 'get', group: '', resource: 'configmaps' });
    assert.deepEqual(labels('POST', cm), { verb: 'create', group: '', resource: 'configmaps' });
    assert.deepEqual(labels('PUT', `${cm}/x`), { verb: 'update', group: '', resource: 'configmaps' });
    assert.deepEqual(labels('PATCH', '/apis/apps/v1/namespaces/a/deployments/d/status'), { verb: 'patch', group: 'apps', resource: 'deployments' });
    assert.deepEqual(labels('DELETE', '/api/v1/namespaces/x'), { verb: 'delete', group: '', resource: 'namespaces' });
  });

  it('a method the path does not allow is verb "other"; a type not served is resource "other"', function () {
    assert.equal(labels('DELETE', '/api/v1/namespaces/a/configmaps').verb, 'other');
    assert.equal(labels('POST', '/api/v1/watch/namespaces/a/configmaps').verb, 'other');
    assert.equal(labels('DELETE', '/api/v1/namespaces/a/configmaps/x/status').verb, 'other');
    assert.equal(labels('PROPFIND', '/api/v1/namespaces').verb, 'other');
    assert.deepEqual(labels('GET', '/apis/evil.example/v1/n0pe-123'), { verb: 'list', group: '', resource: 'other' });
    assert.deepEqual(labels('GET', '/api/v2/configmaps'), { verb: 'list', group: '', resource: 'other' });
  });

  it('discovery documents are "discovery"; health, /metrics and unknown paths "other"', function () {
    for (const p of ['/version', '/api', '/apis', '/apis/apps', '/apis/apps/v1', '/api/v1', '/openapi/v2', '/openapi/v3/apis/apps/v1']) assert.deepEqual(labels('GET', p), { verb: 'get', group: '', resource: 'discovery' }, p);
    for (const p of ['/healthz', '/readyz', '/livez/ping', '/metrics', '/', '/nothing/here']) assert.deepEqual(labels('GET', p), { verb: 'get', group: '', resource: 'other' }, p);
  });

  it('whatever the method and URL, every label comes from a bounded set (seeded)', function () {
    const plurals = new Set(types.all().map((t) => t.plural));
    const groups = new Set(types.all().map((t) => t.group));
    const verbs = new Set<string>([...ALL_VERBS, 'other']);
    const segment = fc.oneof(fc.constantFrom('api', 'apis', 'v1', 'apps', 'namespaces', 'watch', 'configmaps', 'deployments', 'status', 'x', 'metrics', 'version'), fc.string({ maxLength: 12 }).map(encodeURIComponent));
    const url = fc.tuple(fc.array(segment, { maxLength: 7 }), fc.constantFrom('', '?watch=true', '?watch=1&x=y')).map(([segs, q]) => `/${segs.join('/')}${q}`);
    const method = fc.oneof(fc.constantFrom(...http.METHODS), fc.string({ minLength: 1, maxLength: 8 }));
    fc.assert(
      fc.property(method, url, (m, u) => {
        const l = labels(m, u);
        assert.ok(verbs.has(l.verb), l.verb);
        assert.ok(l.resource === 'discovery' || l.resource === 'other' || plurals.has(l.resource), l.resource);
        assert.ok(groups.has(l.group), l.group);
        if (l.resource === 'discovery' || l.resource === 'other') assert.equal(l.group, '');
      }),
      { seed: 9, numRuns: 5000 },
    );
  });
});

describe('apiserver metrics: GET /metrics of the binary', function () {
  this.timeout(120_000);
  const CM = '/api/v1/namespaces/default/configmaps';
  const JSON_TYPE = 'application/json';
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let dir = '';
  let mnt = '';
  let server: ApiServerProcess | null = null;

  const create = (name: string, as: 'admin' | 'alice' = 'admin') => request(server!, 'POST', CM, { as, body: JSON.stringify({ metadata: { name }, data: { k: 'v'.repeat(2000) } }), contentType: JSON_TYPE, timeoutMs: 10_000 });
  const scrape = async (): Promise<string> => {
    const r = await request(server!, 'GET', '/metrics');
    assert.equal(r.status, 200, r.body);
    assert.match(String(r.headers['content-type']), /^text\/plain/);
    return r.body;
  };

  before(async function () {
    baseline = await resourceBaseline();
    dir = scratchDir(`apiserver-metrics-${process.pid}`);
    mnt = await mountTmpfsOrSkip(this, dir, 2 * 1024 * 1024, 'the storage refusal of the metrics test');
    const revoked = path.join(dir, 'revoked.txt');
    fs.writeFileSync(revoked, `${new X509Certificate(fs.readFileSync(testPki().users.bob!.cert)).serialNumber}\n`);
    // Debug: the 'watch ended' line tells when the server has closed the watch. A short header
    // timeout, so the slow client on the metrics listener is refused soon.
    const flags = ['--revoked', revoked, '--log-level', 'debug', '--metrics-listen', '127.0.0.1:0', '--header-timeout', '2000'];
    server = await startApiServer('metrics', flags, `sqlite://${path.join(mnt, 'fed.db')}`);
  });

  after(async function () {
    await server?.kill();
    if (mnt) await unmount(mnt);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    await assertNoLeakedResources(baseline);
  });

  it('is readable with RBAC get on the nonResourceURL /metrics (system:masters here), not by a user without it, not anonymously; health stays open', async function () {
    const anonymous = await request(server!, 'GET', '/metrics', { as: 'anonymous' });
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.json().reason, 'Unauthorized');
    assert.equal((await request(server!, 'POST', '/metrics', { as: 'alice', body: '' })).status, 405);
    const forbidden = await request(server!, 'GET', '/metrics', { as: 'alice' });
    assert.equal(forbidden.status, 403);
    assert.equal(forbidden.json().message, 'forbidden: User "alice" cannot get path "/metrics"');
    assert.equal((await request(server!, 'GET', '/readyz', { as: 'anonymous' })).status, 200);
    const text = await scrape();
    assert.match(text, /^# TYPE fedtunnel_apiserver_requests_total counter$/m);
    assert.match(text, /^# TYPE fedtunnel_apiserver_conversion_webhook_calls_total counter$/m);
  });

  it('counts requests by verb, resource and status, watches, refused certificates and writes refused by a full disk', async function () {
    for (let i = 0; i < 3; i++) assert.equal((await create(`cm-${i}`)).status, 201);
    assert.equal((await request(server!, 'GET', `${CM}/cm-0`)).status, 200);
    assert.equal((await request(server!, 'GET', `${CM}/missing`)).status, 404);
    assert.equal((await create('by-alice', 'alice')).status, 403);
    assert.equal((await request(server!, 'GET', CM, { as: 'bob' })).status, 403, 'bob is revoked');
    // A certificate of another CA never gets past the handshake.
    const since = server!.mark;
    const pki = testPki();
    const foreign = tls.connect({ host: '127.0.0.1', port: server!.port, ca: fs.readFileSync(pki.ca.cert), servername: 'localhost', ...foreignClientCert() });
    foreign.on('error', () => undefined);
    foreign.once('secureConnect', () => foreign.write('GET /api/v1/namespaces HTTP/1.1\r\nHost: x\r\n\r\n'));
    await once(foreign, 'close');
    await server!.waitForLog((l) => l.msg === 'connection refused' && l.reason === 'unknown_ca', { since });

    const watch = await openWatch(server!, `${CM}?watch=true`);
    await watch.waitFor(3);
    assert.equal(metric(await scrape(), 'fedtunnel_apiserver_watches{resource="configmaps"}'), 1);
    const closedSince = server!.mark;
    watch.stop();
    await watch.ended;
    await server!.waitForLog((l) => l.msg === 'watch ended' && l.reason === 'client closed', { since: closedSince });

    fillFileSystem(path.join(mnt, 'filler'));
    // Free pages inside the database and its WAL may take a few more writes; then 507.
    let refused = 0;
    for (let i = 0; i < 200 && refused === 0; i++) if ((await create(`full-${i}`)).status === 507) refused++;
    assert.equal(refused, 1, 'the disk never filled up');

    const text = await scrape();
    const requests = (labels: string): number => metric(text, `fedtunnel_apiserver_requests_total{${labels}}`);
    assert.ok(requests('verb="create",group="",resource="configmaps",code="201"') >= 3, text);
    assert.equal(requests('verb="create",group="",resource="configmaps",code="507"'), 1, text);
    assert.equal(requests('verb="create",group="",resource="configmaps",code="403"'), 1, text);
    assert.equal(requests('verb="get",group="",resource="configmaps",code="200"'), 1, text);
    assert.equal(requests('verb="get",group="",resource="configmaps",code="404"'), 1, text);
    assert.equal(requests('verb="list",group="",resource="configmaps",code="403"'), 1, text);
    assert.equal(requests('verb="watch",group="",resource="configmaps",code="200"'), 1, text);
    assert.ok(requests('verb="get",group="",resource="other",code="401"') >= 1, text);
    const decisions = (labels: string): number => metric(text, `fedtunnel_apiserver_authorization_decisions_total{${labels}}`);
    assert.equal(decisions('decision="denied",verb="create"'), 1, text);
    assert.ok(decisions('decision="allowed",verb="create"') >= 4, text);
    assert.ok(decisions('decision="denied",verb="get"') >= 1, text);
    assert.equal(metric(text, 'fedtunnel_apiserver_watches{resource="configmaps"}'), 0);
    assert.equal(metric(text, 'fedtunnel_apiserver_storage_refusals_total{code="NO_SPACE"}'), 1, text);
    assert.ok(metric(text, 'fedtunnel_apiserver_request_duration_seconds_count{verb="create"}') >= 5, text);
    assert.doesNotMatch(text, /fedtunnel_apiserver_request_duration_seconds_count\{verb="watch"\}/, 'watches have no duration');
    assert.equal(metric(text, 'fedtunnel_listener_refusals_total{listener="member_apiserver",reason="unknown_ca"}'), 1, text);
    assert.equal(metric(text, 'fedtunnel_listener_refusals_total{listener="member_apiserver",reason="revoked"}'), 1, text);
    fs.rmSync(path.join(mnt, 'filler'));
    assert.equal((await create('after')).status, 201);
  });

  it('--metrics-listen: plain-HTTP GET /metrics, nothing else, behind the listener guard', async function () {
    const get = (method: string, urlPath: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port: server!.metricsPort!, method, path: urlPath, agent: false }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('error', reject);
        req.end();
      });
    assert.ok(server!.metricsPort, 'the ready line names the metrics port');
    const scraped = await get('GET', '/metrics');
    assert.equal(scraped.status, 200);
    assert.ok(metric(scraped.body, 'fedtunnel_apiserver_requests_total{verb="create",group="",resource="configmaps",code="201"}') >= 1, scraped.body);
    assert.equal((await get('POST', '/metrics')).status, 405);
    assert.equal((await get('GET', '/api/v1/namespaces')).status, 404);
    // A client that never finishes its request head gets 408 at the header deadline and is counted.
    const slow = net.connect({ host: '127.0.0.1', port: server!.metricsPort! });
    let answer = '';
    slow.setEncoding('utf8');
    slow.on('data', (c: string) => (answer += c));
    slow.write('GET /metrics HTTP/1.1\r\nHost: x\r\n');
    await once(slow, 'close');
    assert.match(answer, /^HTTP\/1\.1 408/);
    assert.equal(metric((await get('GET', '/metrics')).body, 'fedtunnel_listener_refusals_total{listener="apiserver_metrics",reason="header_timeout"}'), 1);
  });
});
