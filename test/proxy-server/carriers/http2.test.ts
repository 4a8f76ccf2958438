// The hub's HTTP/2 carrier against a real proxy-server process, with raw HTTP/2 clients: what it
// answers to requests that are not an agent link, and to front proxies that do not forward a valid
// agent certificate.
import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import http2 from 'node:http2';
import { X509Certificate } from 'node:crypto';
import { FORWARDED_AGENT_CERT_HEADER } from '../../../wire/http2-carrier.js';
import { testPki } from '../../support/pki.js';
import { startServer, type ServerProcess } from '../../support/processes.js';
import { assertNoLeakedResources, resourceBaseline } from '../../support/leaks.js';
import { metric } from '../../support/metrics.js';

interface Answer {
  status: number;
  body: string;
}

describe('proxy-server: carriers/http2', function () {
  let hub: ServerProcess;
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  const pki = testPki();

  before(async function () {
    baseline = await resourceBaseline();
    hub = await startServer({ extraArgs: ['--agent-front-proxy', 'edge-proxy', '--header-timeout', '1000'] });
  });

  after(async function () {
    await hub?.kill();
    await assertNoLeakedResources(baseline);
  });

  function connect(as: { cert: string; key: string }): http2.ClientHttp2Session {
    const session = http2.connect(`https://localhost:${hub.agentPort}`, { ca: fs.readFileSync(pki.ca.cert), cert: fs.readFileSync(as.cert), key: fs.readFileSync(as.key) });
    session.on('error', () => undefined);
    return session;
  }

  async function request(as: { cert: string; key: string }, headers: http2.OutgoingHttpHeaders): Promise<Answer> {
    const session = connect(as);
    try {
      const stream = session.request(headers, { endStream: false });
      const [answer] = (await Promise.race([
        new Promise((resolve) => stream.once('response', (h) => resolve([h]))),
        new Promise((_, reject) => stream.once('close', () => reject(new Error(`stream closed without an answer (rst ${stream.rstCode})`)))),
      ])) as [http2.IncomingHttpHeaders];
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.end();
      await new Promise((resolve) => stream.once('close', resolve));
      return { status: Number(answer[':status']), body: Buffer.concat(chunks).toString() };
    } finally {
      session.destroy();
    }
  }

  const tunnel = { ':method': 'POST', ':path': '/v1/tunnel' };

  it('another path is 404 with the path to use', async function () {
    const answer = await request(pki.agents.alpha!, { ':method': 'GET', ':path': '/' });
    assert.equal(answer.status, 404);
    assert.match(answer.body, /POST \/v1\/tunnel/);
  });

  it('a front proxy that forwards no agent certificate is 403, counted by reason', async function () {
    const answer = await request(pki.users['edge-proxy']!, tunnel);
    assert.equal(answer.status, 403);
    assert.match(answer.body, /forwarded no agent certificate/);
    assert.ok(metric(await hub.metrics(), 'fedtunnel_listener_refusals_total{listener="agent",reason="no_certificate"}') >= 1);
  });

  it('a front proxy forwarding a user certificate is 403', async function () {
    const header = new X509Certificate(fs.readFileSync(pki.users.alice!.cert)).raw.toString('base64');
    const answer = await request(pki.users['edge-proxy']!, { ...tunnel, [FORWARDED_AGENT_CERT_HEADER]: header });
    assert.equal(answer.status, 403);
    assert.match(answer.body, /not an agent certificate/);
  });

  it('a user certificate that is not a front proxy cannot speak HTTP/2 on the agent port at all', async function () {
    const session = connect(pki.users.alice!);
    await new Promise((resolve) => session.once('close', resolve));
    assert.ok(metric(await hub.metrics(), 'fedtunnel_listener_refusals_total{listener="agent",reason="not_an_agent_certificate"}') >= 1);
  });

  it('an agent connection that opens no tunnel is closed at the header deadline', async function () {
    const session = connect(pki.agents.alpha!);
    const started = Date.now();
    await new Promise((resolve) => session.once('close', resolve));
    assert.ok(Date.now() - started < 5000, `closed after ${Date.now() - started} ms`);
    assert.ok(metric(await hub.metrics(), 'fedtunnel_listener_refusals_total{listener="agent",reason="header_timeout"}') >= 1);
  });
});
