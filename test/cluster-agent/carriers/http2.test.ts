// The agent's HTTP/2 carrier (openCarrier with kind http2) against real counterparts on loopback:
// the hub's agent listener (directly and through a CONNECT proxy), an HTTP/2 server that refuses
// the tunnel request, and a TLS server that does not speak HTTP/2.
import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { openCarrier, type CarrierOptions } from '../../../cluster-agent/connector.js';
import { assertNoLeakedResources, resourceBaseline } from '../../support/leaks.js';
import { testPki } from '../../support/pki.js';
import { startServer, type ServerProcess } from '../../support/processes.js';
import { startTinyproxy, type Tinyproxy } from '../../support/tinyproxy.js';

function carrierOptions(port: number, extra: Partial<CarrierOptions> = {}): CarrierOptions {
  const pki = testPki();
  const alpha = pki.agents.alpha!;
  return {
    kind: 'http2',
    server: { host: '127.0.0.1', port },
    serverName: 'localhost',
    secureContext: tls.createSecureContext({ ca: fs.readFileSync(pki.ca.cert), cert: fs.readFileSync(alpha.cert), key: fs.readFileSync(alpha.key) }),
    proxy: null,
    timeoutMs: 5000,
    ...extra,
  };
}

async function listening(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

describe('cluster-agent: carriers/http2', function () {
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let hub: ServerProcess;
  let proxy: Tinyproxy;
  const pki = testPki();

  before(async function () {
    baseline = await resourceBaseline();
    hub = await startServer();
    proxy = await startTinyproxy();
  });

  after(async function () {
    await proxy?.stop();
    await hub?.kill();
    await assertNoLeakedResources(baseline);
  });

  it('opens the tunnel request on the hub, through a CONNECT proxy too; closing the stream closes the connection', async function () {
    for (const via of [null, new URL(`http://127.0.0.1:${proxy.port}`)]) {
      const carrier = await openCarrier(carrierOptions(hub.agentPort, { proxy: via }));
      assert.equal(carrier.coalesceWrites, false);
      carrier.stream.destroy();
      await once(carrier.stream, 'close');
    }
    assert.ok(proxy.connects.includes(`CONNECT 127.0.0.1:${hub.agentPort}`), proxy.connects.join(', '));
  });

  it('an HTTP/2 server that answers the tunnel request with 404 is refused with that status', async function () {
    const other = http2.createSecureServer({ cert: fs.readFileSync(pki.server.cert), key: fs.readFileSync(pki.server.key) }, (_req, res) => res.writeHead(404).end());
    try {
      await assert.rejects(openCarrier(carrierOptions(await listening(other))), /HTTP\/2 tunnel request refused with 404/);
    } finally {
      await new Promise((resolve) => other.close(resolve));
    }
  });

  it('a TLS server that does not negotiate h2 is refused', async function () {
    const other = tls.createServer({ cert: fs.readFileSync(pki.server.cert), key: fs.readFileSync(pki.server.key), ALPNProtocols: ['http/1.1'] }, (socket) => socket.on('error', () => undefined));
    other.on('tlsClientError', () => undefined);
    try {
      await assert.rejects(openCarrier(carrierOptions(await listening(other))), /did not negotiate h2|no application protocol/);
    } finally {
      await new Promise((resolve) => other.close(resolve));
    }
  });
});
