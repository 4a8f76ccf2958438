import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { setImmediate } from 'node:timers/promises';
import tls from 'node:tls';
import { agentIdentityFromPeer, peerCertificateOf, userIdentityFromPeer, type PeerSummary } from '../../certs/identity.js';
import { type CertKeyPair, createCA, issueAgentCert, issueClientCert, issueServerCert } from '../../certs/pki.js';

interface HandshakeOutcome {
  /** The client certificate as the server saw it; null when the server rejected the connection. */
  peer: tls.PeerCertificate | null;
  /** peerCertificateOf() of the server's socket, and whether a second call gave the same object. */
  summary: PeerSummary | null;
  cachedOnce: boolean;
  /** What the client read before the connection closed. */
  received: string;
}

/**
 * Runs one mutual-TLS handshake on 127.0.0.1 against a server that trusts only
 * `ca`, then tears everything down before resolving.
 */
async function handshake(ca: CertKeyPair, server: CertKeyPair, client: CertKeyPair): Promise<HandshakeOutcome> {
  const tlsServer = tls.createServer({
    cert: server.certPem,
    key: server.keyPem,
    ca: ca.certPem,
    requestCert: true,
    rejectUnauthorized: true,
  });
  let peer: tls.PeerCertificate | null = null;
  let summary: PeerSummary | null = null;
  let cachedOnce = false;
  tlsServer.on('secureConnection', (socket) => {
    peer = socket.getPeerCertificate();
    summary = peerCertificateOf(socket);
    cachedOnce = peerCertificateOf(socket) === summary;
    socket.end('ok');
  });
  tlsServer.listen(0, '127.0.0.1');
  await once(tlsServer, 'listening');

  const { port } = tlsServer.address() as AddressInfo;
  const socket = tls.connect({ host: '127.0.0.1', port, ca: ca.certPem, cert: client.certPem, key: client.keyPem });
  let received = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (received += chunk));
  // A rejected client sees a reset or an alert; the outcome is judged by `peer` and `received`.
  socket.on('error', () => {});
  await once(socket, 'close');
  await new Promise<void>((resolve, reject) => tlsServer.close((error) => (error ? reject(error) : resolve())));
  return { peer, summary, cachedOnce, received };
}

/**
 * Counts of the handle kinds a leaked socket, server or timer would show up as.
 * Closed handles are only released in the close phase of the event loop, so
 * let two turns pass first; this also lets mocha arm its own test timer before
 * a baseline is taken.
 */
async function networkAndTimerResources(): Promise<Record<string, number>> {
  for (let turn = 0; turn < 2; turn++) await setImmediate();
  const counts: Record<string, number> = {};
  for (const resource of process.getActiveResourcesInfo()) {
    if (/TCP|TLS|Pipe|Timeout|Timer/.test(resource)) counts[resource] = (counts[resource] ?? 0) + 1;
  }
  return counts;
}

describe('certs: identities through a real TLS handshake', function () {
  let ca: CertKeyPair;
  let server: CertKeyPair;
  let agent: CertKeyPair;
  let user: CertKeyPair;

  before(function () {
    ca = createCA({ commonName: 'handshake-test-ca' });
    server = issueServerCert(ca, { commonName: 'proxy', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'] });
    agent = issueAgentCert(ca, { cluster: 'prod-eu-1', tenant: 'acme' });
    user = issueClientCert(ca, { user: 'alice@example.com', groups: ['dev', 'system:masters'] });
  });

  it('reads the agent identity back from the peer certificate and leaks no handles', async function () {
    const baseline = await networkAndTimerResources();

    const { peer, received } = await handshake(ca, server, agent);

    assert.equal(received, 'ok');
    assert.ok(peer);
    assert.deepEqual(agentIdentityFromPeer(peer), { cluster: 'prod-eu-1', tenant: 'acme' });
    assert.equal(userIdentityFromPeer(peer), null, 'an agent certificate must not pass as a user');
    assert.deepEqual(await networkAndTimerResources(), baseline);
  });

  it('reads the user identity back from the peer certificate', async function () {
    const { peer, received } = await handshake(ca, server, user);

    assert.equal(received, 'ok');
    assert.ok(peer);
    assert.deepEqual(userIdentityFromPeer(peer), { user: 'alice@example.com', groups: ['dev', 'system:masters'] });
    assert.equal(agentIdentityFromPeer(peer), null, 'a user certificate must not pass as an agent');
  });

  it('keeps only the subject, SAN and serial of a connection\'s client certificate, decoded once (an open watch holds its connection for hours)', async function () {
    const { peer, summary, cachedOnce } = await handshake(ca, server, user);

    assert.ok(peer && summary);
    assert.deepEqual(Object.keys(summary).sort(), ['serialNumber', 'subject', 'subjectaltname'], 'no DER, public key or fingerprints kept');
    assert.equal(summary.serialNumber, peer.serialNumber);
    assert.deepEqual(userIdentityFromPeer(summary), { user: 'alice@example.com', groups: ['dev', 'system:masters'] });
    assert.ok(cachedOnce, 'the second call reads the cache');
  });

  it('gives a single group as a one-element list', async function () {
    const singleGroupUser = issueClientCert(ca, { user: 'bob', groups: ['ops'] });
    const { peer } = await handshake(ca, server, singleGroupUser);

    assert.ok(peer);
    assert.deepEqual(userIdentityFromPeer(peer), { user: 'bob', groups: ['ops'] });
  });

  it('rejects an agent certificate signed by another CA', async function () {
    const otherCa = createCA({ commonName: 'handshake-test-ca' });
    const foreignAgent = issueAgentCert(otherCa, { cluster: 'prod-eu-1', tenant: 'acme' });
    const baseline = await networkAndTimerResources();

    const { peer, received } = await handshake(ca, server, foreignAgent);

    assert.equal(peer, null, 'the server must not accept the connection');
    assert.equal(received, '');
    assert.deepEqual(await networkAndTimerResources(), baseline);
  });
});
