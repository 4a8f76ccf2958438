// A CRD conversion webhook served inside a member cluster's network, reached by the hub's
// embedded federation API server through that cluster's agent: a real proxy-server process, a
// real cluster-agent process, TLS from the API server to the webhook end to end over the tunnel
// stream, verified against the CRD's caBundle for the inner host name.
import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { issueServerCert, readKeyPair } from '../../certs/pki.js';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';
import { testPki } from '../support/pki.js';
import { startAgent, startServer, type LoggedProcess, type ServerProcess } from '../support/processes.js';
import { stopAgent } from '../support/server-state.js';
import { request, type ApiServerProcess } from '../federation/apiserver/harness.js';

const JSON_TYPE = 'application/json';
const V1 = '/apis/example.com/v1/namespaces/default/widgets';
const V2 = '/apis/example.com/v2/namespaces/default/widgets';

/** v1 stores spec.size; v2 calls it spec.replicas. */
function convert(obj: { spec?: Record<string, unknown> }, apiVersion: string): object {
  const { size, replicas, ...rest } = obj.spec ?? {};
  const value = size ?? replicas;
  return { ...obj, apiVersion, spec: { ...rest, ...(apiVersion === 'example.com/v2' ? { replicas: value } : { size: value }) } };
}

describe('conversion webhook behind a cluster-agent (processes)', function () {
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let webhook: https.Server;
  let webhookPort = 0;
  let server: ServerProcess;
  let agent: LoggedProcess;
  let federation: ApiServerProcess;
  const reviews: string[] = [];

  before(async function () {
    baseline = await resourceBaseline();
    const pki = testPki();
    const ca = readKeyPair(path.dirname(pki.ca.cert), path.basename(pki.ca.cert, '.crt'));
    const pair = issueServerCert(ca, { commonName: 'webhook', dnsNames: ['localhost'], ipAddresses: [] });
    webhook = https.createServer({ cert: pair.certPem, key: pair.keyPem }, (req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (body += chunk));
      req.on('end', () => {
        const review = JSON.parse(body);
        reviews.push(review.request.desiredAPIVersion);
        const convertedObjects = review.request.objects.map((o: object) => convert(o, review.request.desiredAPIVersion));
        const text = JSON.stringify({ apiVersion: 'apiextensions.k8s.io/v1', kind: 'ConversionReview', response: { uid: review.request.uid, result: { status: 'Success' }, convertedObjects } });
        res.writeHead(200, { 'content-type': JSON_TYPE }).end(text);
      });
    });
    // "localhost" as the agent will resolve it (IPv4 or IPv6, whichever comes first).
    await new Promise<void>((resolve) => webhook.listen(0, 'localhost', resolve));
    webhookPort = (webhook.address() as AddressInfo).port;
    server = await startServer({ extraArgs: ['--federation-listen', '127.0.0.1:0', '--federation-store', 'sqlite::memory:', '--federation-controller', 'off'] });
    const ready = await server.waitForLog((l) => l.msg === 'proxy-server ready');
    federation = { port: ready.federationPort as number } as ApiServerProcess;
    // Debug level: the agent logs each stream it connects, with the hub's stream id.
    agent = await startAgent({ cluster: 'alpha', server, allow: [`localhost:${webhookPort}`], extraArgs: ['--log-level', 'debug'] });
  });

  after(async function () {
    if (agent) await stopAgent(server, agent, 'alpha');
    await server?.kill();
    webhook?.closeAllConnections();
    await new Promise<void>((resolve) => (webhook ? webhook.close(() => resolve()) : resolve()));
    await assertNoLeakedResources(baseline);
  });

  it('the federation API server converts through https://<host>.<cluster>.tunnel over a real agent', async function () {
    const caBundle = fs.readFileSync(testPki().ca.cert).toString('base64');
    const crd = {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'widgets.example.com' },
      spec: {
        group: 'example.com',
        names: { kind: 'Widget', plural: 'widgets', singular: 'widget' },
        scope: 'Namespaced',
        versions: [
          { name: 'v1', served: true, storage: true },
          { name: 'v2', served: true, storage: false },
        ],
        conversion: { strategy: 'Webhook', webhook: { clientConfig: { url: `https://localhost.alpha.tunnel:${webhookPort}/convert`, caBundle }, conversionReviewVersions: ['v1'] } },
      },
    };
    const post = (p: string, obj: unknown) => request(federation, 'POST', p, { body: JSON.stringify(obj), contentType: JSON_TYPE });
    assert.equal((await post('/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd)).status, 201);

    const since = server.mark;
    const agentSince = agent.mark;
    const created = await post(V2, { apiVersion: 'example.com/v2', kind: 'Widget', metadata: { name: 'w1' }, spec: { replicas: 3 } });
    assert.equal(created.status, 201, created.body);
    assert.deepEqual(created.json().spec, { replicas: 3 });
    assert.deepEqual((await request(federation, 'GET', `${V1}/w1`)).json().spec, { size: 3 }, 'stored in v1 by the webhook');
    assert.ok(reviews.includes('example.com/v1') && reviews.includes('example.com/v2'), `reviews: ${reviews.join(', ')}`);

    // The hub dialed the webhook through the tunnel of cluster alpha...
    const opened = await server.waitForLog((l) => l.msg === 'stream open' && l.requester === 'federation-apiserver', { since });
    assert.equal(opened.cluster, 'alpha');
    assert.equal(opened.target, `localhost:${webhookPort}`);
    assert.match(await server.metrics(), /fedtunnel_dials_total\{cluster="alpha",result="ok"\} [1-9]/);
    // ...and the agent connected that very stream to the webhook's address inside the member.
    const connected = await agent.waitForLog((l) => l.msg === 'destination connected' && l.sid === opened.sid, { since: agentSince });
    assert.equal(connected.target, `localhost:${webhookPort}`);
  });
});
