// The topology webhook's HTTPS server in process (real TLS): a ConversionReview converted and
// counted, a failed conversion and bad requests answered without harm, health and metrics.
import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { DEFAULT_LISTENER_LIMITS } from '../../../common/listener-guard.js';
import { closeServer } from '../../../common/listen.js';
import { createLogger } from '../../../common/log.js';
import { NATIVE_API_VERSION, TOPOLOGY_API_VERSION } from '../../../federation/topology-webhook/convert.js';
import { createTopologyWebhookServer, type TopologyWebhookServer } from '../../../federation/topology-webhook/server.js';
import { metric } from '../../support/metrics.js';
import { testPki } from '../../support/pki.js';

describe('topology webhook: HTTPS server', function () {
  let webhook: TopologyWebhookServer;
  let port = 0;
  let ca: Buffer;
  const registry = new Registry();

  before(async function () {
    const pki = testPki();
    ca = fs.readFileSync(pki.ca.cert);
    webhook = createTopologyWebhookServer({
      tls: { cert: fs.readFileSync(pki.server.cert), key: fs.readFileSync(pki.server.key) },
      log: createLogger('topology-webhook', 'silent'),
      registry,
      limits: DEFAULT_LISTENER_LIMITS,
      maxReviewBytes: 64 * 1024,
    });
    await new Promise<void>((resolve) => webhook.server.listen(0, '127.0.0.1', resolve));
    port = (webhook.server.address() as AddressInfo).port;
  });

  after(async function () {
    await closeServer(webhook.server);
  });

  function call(method: string, path: string, body?: string): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port, method, path, ca, servername: 'localhost', agent: false, headers: body ? { 'Content-Type': 'application/json' } : {} }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  const review = (objects: unknown[], desiredAPIVersion = NATIVE_API_VERSION): string => JSON.stringify({ apiVersion: 'apiextensions.k8s.io/v1', kind: 'ConversionReview', request: { uid: 'abc', desiredAPIVersion, objects } });
  const cellObject = (type: string): object => ({ apiVersion: TOPOLOGY_API_VERSION, kind: 'FederatedConfigMap', metadata: { name: 'm', namespace: 'shop' }, spec: { topology: { type }, placement: { cells: [{ name: 'cell-a' }] } } });

  it('converts a review and counts it', async function () {
    const r = await call('POST', '/convert', review([cellObject('cell')]));
    assert.equal(r.status, 200);
    const { response } = JSON.parse(r.text);
    assert.equal(response.uid, 'abc');
    assert.equal(response.result.status, 'Success');
    assert.equal(response.convertedObjects[0].apiVersion, NATIVE_API_VERSION);
    assert.deepEqual(response.convertedObjects[0].spec.placement.clusterSelector.matchExpressions[0].values, ['cell-a']);
    const text = (await call('GET', '/metrics')).text;
    assert.equal(metric(text, 'fedtunnel_topology_conversions_total{outcome="success"}'), 1);
    assert.equal(metric(text, 'fedtunnel_topology_converted_objects_total'), 1);
    assert.equal(metric(text, 'fedtunnel_topology_conversion_seconds_count{outcome="success"}'), 1);
  });

  it('answers Failed for an object it cannot convert, 400/413 for what is not a review, and keeps serving', async function () {
    const failed = JSON.parse((await call('POST', '/convert', review([cellObject('zone')]))).text);
    assert.equal(failed.response.result.status, 'Failed');
    assert.match(failed.response.result.message, /spec\.topology\.type/);
    assert.equal((await call('POST', '/convert', '{not json')).status, 400);
    assert.equal((await call('POST', '/convert', '{"kind":"ConversionReview"}')).status, 400);
    assert.equal((await call('POST', '/convert', `"${'x'.repeat(70 * 1024)}"`)).status, 413);
    assert.equal((await call('GET', '/convert')).status, 405);
    assert.equal((await call('GET', '/nothing')).status, 404);
    const health = await call('GET', '/healthz');
    assert.deepEqual([health.status, health.text], [200, 'ok']);
    const text = (await call('GET', '/metrics')).text;
    assert.equal(metric(text, 'fedtunnel_topology_conversions_total{outcome="failed"}'), 1);
    assert.equal(metric(text, 'fedtunnel_topology_conversions_total{outcome="bad_request"}'), 3);
  });
});
