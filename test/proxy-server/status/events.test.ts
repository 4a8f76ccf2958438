// The status event stream's bounds, in process over real loopback HTTP: a viewer that does not
// read is dropped once its queue passes the limit (others keep receiving), and viewers past the
// cap get a 503 Status.
import { strict as assert } from 'node:assert';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { Registry } from 'prom-client';
import { AgentRegistry } from '../../../proxy-server/registry.js';
import { StatusCollector } from '../../../proxy-server/status/collector.js';
import { StatusStream } from '../../../proxy-server/status/events.js';
import type { Access, FederationView } from '../../../proxy-server/status/model.js';
import { assertNoLeakedResources, resourceBaseline } from '../../support/leaks.js';
import { metric } from '../../support/metrics.js';

const everything: Access = { mayReach: () => true, mayList: () => true };

describe('proxy-server/status: event stream limits (loopback HTTP)', function () {
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let server: http.Server;
  let registry: Registry;
  let collector: StatusCollector;
  let stream: StatusStream;
  let generation = 0;
  const requests = new Set<http.ClientRequest>();

  /** A federation view of ~100 KB that differs at every read: each tick is a large state event. */
  const bigFederation = async (): Promise<FederationView> => ({
    enabled: true,
    clusters: [],
    objects: Array.from({ length: 500 }, (_, i) => ({ kind: 'FederatedConfigMap', group: 'types.kubefed.io', plural: 'federatedconfigmaps', namespace: 'ns', name: `object-${generation}-${i}-${'x'.repeat(100)}`, propagation: 'True', reason: '', clusters: [] })),
    truncated: false,
  });

  beforeEach(async function () {
    baseline = await resourceBaseline();
    registry = new Registry();
    collector = new StatusCollector({ instance: 'hub-0', agents: new AgentRegistry(10), lease: () => ({ mode: 'off', holder: null, note: '' }), federation: () => bigFederation(), log: pino({ level: 'silent' }) });
    stream = new StatusStream(collector, registry, pino({ level: 'silent' }), { maxClients: 2, maxBufferedBytes: 256 * 1024 });
    server = http.createServer((_req, res) => stream.open(res, 'tester', everything));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });

  afterEach(async function () {
    stream.close();
    collector.stop();
    for (const req of requests) req.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await assertNoLeakedResources(baseline);
  });

  function open(): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, path: '/status/events', agent: false }, resolve);
      requests.add(req);
      req.on('error', reject);
    });
  }

  /** One collector tick with a changed federation: every viewer gets a large state event. */
  async function tick(): Promise<void> {
    generation++;
    await collector.refreshFederation();
    collector.emit('tick');
  }

  it('drops a viewer that does not read once its queue passes the limit; a reading viewer keeps up', async function () {
    const slow = await open();
    slow.pause();
    const fast = await open();
    let fastBytes = 0;
    fast.on('data', (chunk: Buffer) => (fastBytes += chunk.length));
    // A paused client does not read its socket, so it cannot see the close: the hub's count tells.
    const slowDropped = async (): Promise<boolean> => metric(await registry.metrics(), 'fedtunnel_status_refused_total{reason="slow_client"}') === 1;
    // Kernel buffers absorb the first megabytes; the hub's own queue then grows past 256 KiB.
    let dropped = false;
    for (let i = 0; i < 400 && !dropped; i++) {
      await tick();
      await new Promise((resolve) => setImmediate(resolve));
      dropped = await slowDropped();
    }
    assert.ok(dropped, 'the slow viewer was dropped');
    const metrics = await registry.metrics();
    assert.equal(metric(metrics, 'fedtunnel_status_refused_total{reason="slow_client"}'), 1);
    assert.equal(metric(metrics, 'fedtunnel_status_clients'), 1, 'the fast viewer is still connected');
    const before = fastBytes;
    await tick();
    const deadline = Date.now() + 5000;
    while (fastBytes === before && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.ok(fastBytes > before, 'the fast viewer still receives events');
  });

  it('refuses viewers past the cap with a 503 Status', async function () {
    const first = await open();
    const second = await open();
    first.resume();
    second.resume();
    const third = await open();
    assert.equal(third.statusCode, 503);
    assert.equal(third.headers['retry-after'], '5');
    const body = await new Promise<string>((resolve) => {
      let text = '';
      third.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve(text));
    });
    assert.deepEqual({ ...JSON.parse(body), message: undefined }, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', reason: 'ServiceUnavailable', code: 503, message: undefined });
    assert.equal(metric(await registry.metrics(), 'fedtunnel_status_refused_total{reason="too_many_clients"}'), 1);
    assert.equal(metric(await registry.metrics(), 'fedtunnel_status_clients'), 2);
  });
});
