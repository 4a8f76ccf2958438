// openCarrier(): the agent's outbound carrier against real counterparts on loopback — a real
// proxy-server's agent listener, tinyproxy demanding credentials, a TLS server that speaks
// another protocol, and a listener that accepts and never answers.
import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { openCarrier, type CarrierOptions } from '../../cluster-agent/connector.js';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';
import { testPki } from '../support/pki.js';
import { startServer, type ServerProcess } from '../support/processes.js';
import { startTinyproxy, type Tinyproxy } from '../support/tinyproxy.js';

function carrierOptions(port: number, extra: Partial<CarrierOptions> = {}): CarrierOptions {
  const pki = testPki();
  const alpha = pki.agents.alpha!;
  return {
    kind: 'tls',
    server: { host: '127.0.0.1', port },
    serverName: 'localhost',
    secureContext: tls.createSecureContext({ ca: fs.readFileSync(pki.ca.cert), cert: fs.readFileSync(alpha.cert), key: fs.readFileSync(alpha.key) }),
    proxy: null,
    timeoutMs: 5000,
    ...extra,
  };
}

async function closeServer(server: net.Server): Promise<void> {
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

describe('cluster-agent: connector', function () {
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let hub: ServerProcess;
  let proxy: Tinyproxy;
  const credentials = { user: 'egress', password: 's3cret' };

  before(async function () {
    baseline = await resourceBaseline();
    hub = await startServer();
    proxy = await startTinyproxy({ basicAuth: credentials });
  });

  after(async function () {
    await proxy?.stop();
    await hub?.kill();
    await assertNoLeakedResources(baseline);
  });

  for (const kind of ['tls', 'ws'] as const) {
    it(`${kind}: through a CONNECT proxy with credentials from the proxy URL`, async function () {
      const carrier = await openCarrier(carrierOptions(hub.agentPort, { kind, proxy: new URL(`http://${credentials.user}:${credentials.password}@127.0.0.1:${proxy.port}`) }));
      assert.ok(proxy.connects.includes(`CONNECT 127.0.0.1:${hub.agentPort}`), proxy.connects.join(', '));
      // Mutual TLS with the agent listener succeeded through the proxy; we send no HELLO and leave.
      carrier.stream.destroy();
    });
  }

  it('a proxy refusing CONNECT (wrong credentials) fails with its status in the error', async function () {
    await assert.rejects(
      openCarrier(carrierOptions(hub.agentPort, { proxy: new URL(`http://${credentials.user}:wrong@127.0.0.1:${proxy.port}`) })),
      /proxy 127\.0\.0\.1:\d+ answered CONNECT with 40[17]/,
    );
  });

  it('a server that does not negotiate ALPN fedtunnel/1 is refused', async function () {
    const pki = testPki();
    const other = tls.createServer({ cert: fs.readFileSync(pki.server.cert), key: fs.readFileSync(pki.server.key), ALPNProtocols: ['h2'] }, (socket) => socket.on('error', () => undefined));
    other.on('tlsClientError', () => undefined);
    other.listen(0, '127.0.0.1');
    await once(other, 'listening');
    try {
      await assert.rejects(openCarrier(carrierOptions((other.address() as net.AddressInfo).port)), /did not negotiate fedtunnel\/1|no application protocol/);
    } finally {
      await closeServer(other);
    }
  });

  it('a listener that never answers the TLS handshake fails at the connect timeout, leaving no socket', async function () {
    const sockets = new Set<net.Socket>();
    const blackHole = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
    });
    blackHole.listen(0, '127.0.0.1');
    await once(blackHole, 'listening');
    try {
      const started = performance.now();
      await assert.rejects(openCarrier(carrierOptions((blackHole.address() as net.AddressInfo).port, { timeoutMs: 300 })), /not established within 300 ms/);
      assert.ok(performance.now() - started >= 250, 'not before the timeout');
    } finally {
      for (const socket of sockets) socket.destroy();
      await closeServer(blackHole);
    }
  });
});
