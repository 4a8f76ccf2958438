// MemberClient against a real member-mode API server process. The dial here is a plain TCP
// connect standing in for dial(cluster, host:port) (the tunnel's own tests and the controller's
// integration test cover the real one): what is tested is the client on top of any Duplex.
import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import forge from 'node-forge';
import { issueServerCert, readKeyPair } from '../../../certs/pki.js';
import net from 'node:net';
import { once } from 'node:events';
import pino from 'pino';
import { MemberClient, MemberError, type ClusterDial } from '../../../federation/controller/member-client.js';
import { memberConfig } from '../../../federation/controller/member-config.js';
import type { KubeObject } from '../../../federation/apiserver/storage.js';
import { assertNoLeakedResources, resourceBaseline } from '../../support/leaks.js';
import { testPki } from '../../support/pki.js';
import { mastersCert, startApiServer, type ApiServerProcess } from '../apiserver/harness.js';

const CONFIGMAPS = { group: '', version: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespaced: true };
const log = pino({ level: 'silent' });

describe('controller: MemberClient (client-node over a dialed stream)', function () {
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let server: ApiServerProcess;
  let hang: net.Server;
  let hangPort = 0;
  let expiredPort = 0;
  const hung = new Set<net.Socket>();
  const clients: MemberClient[] = [];
  const dialed: string[] = [];

  /** Every address goes to the member API server (or the hanging one), whatever the name. */
  const dial: ClusterDial = async (_cluster, address) => {
    dialed.push(address);
    const port = address.startsWith('hang.') ? hangPort : address.startsWith('refuse.') ? 1 : address.startsWith('expired.') || address.startsWith('localhost:443') ? expiredPort : server.port;
    const socket = net.connect(port, '127.0.0.1');
    await once(socket, 'connect');
    return socket;
  };

  function client(endpoint: string, extra: Record<string, unknown> = {}, ca = fs.readFileSync(testPki().ca.cert)): MemberClient {
    const admin = mastersCert();
    const b64 = (f: string): string => fs.readFileSync(f).toString('base64');
    const config = memberConfig(
      { apiVersion: 'core.kubefed.io/v1beta1', kind: 'KubeFedCluster', metadata: { name: 'm1' }, spec: { apiEndpoint: endpoint, caBundle: ca.toString('base64'), secretRef: { name: 's' }, ...extra } },
      { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, data: { 'tls.crt': b64(admin.cert), 'tls.key': b64(admin.key) } },
    );
    const c = new MemberClient(config, dial, { log, requestTimeoutMs: 1000 });
    clients.push(c);
    return c;
  }

  before(async function () {
    baseline = await resourceBaseline();
    server = await startApiServer('member-client');
    // Accepts and never answers: a member that hangs.
    hang = net.createServer((s) => {
      hung.add(s);
      s.on('close', () => hung.delete(s));
    });
    hang.listen(0, '127.0.0.1');
    await once(hang, 'listening');
    hangPort = (hang.address() as net.AddressInfo).port;
  });

  after(async function () {
    for (const c of clients) c.close();
    for (const s of hung) s.destroy();
    hang?.close();
    await server?.kill();
    await assertNoLeakedResources(baseline);
  });

  it('creates, reads, updates, lists, watches and deletes through the dialed stream', async function () {
    const c = client(`https://127.0.0.1:${server.port}`);
    const obj: KubeObject = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'mc', namespace: 'default', labels: { 'kubefed.io/managed': 'true' } }, data: { a: '1' } };
    const created = await c.create(CONFIGMAPS, obj);
    assert.ok(created.metadata.resourceVersion);
    await assert.rejects(c.create(CONFIGMAPS, obj), (e: MemberError) => e.code === 'AlreadyExists' && e.status === 409);
    const listed = await c.list(CONFIGMAPS, { labelSelector: 'kubefed.io/managed=true' });
    assert.deepEqual(listed.items.map((o) => [o.kind, o.metadata.name]), [['ConfigMap', 'mc']]);

    const events: string[] = [];
    let onEvent: () => void = () => undefined;
    const w = c.watch(CONFIGMAPS, { labelSelector: 'kubefed.io/managed=true', resourceVersion: listed.resourceVersion }, (type, o) => {
      if (type !== 'BOOKMARK') events.push(`${type} ${o.metadata.name} ${(o.data as { a?: string } | undefined)?.a ?? ''}`);
      onEvent();
    }, (err) => events.push(`end ${err?.message ?? ''}`));
    const two = new Promise<void>((resolve) => (onEvent = () => events.length >= 2 && resolve()));
    const read = await c.get(CONFIGMAPS, 'default', 'mc');
    await c.update(CONFIGMAPS, { ...read!, data: { a: '2' } });
    await c.delete(CONFIGMAPS, 'default', 'mc');
    await two;
    w.stop();
    assert.deepEqual(events.slice(0, 2), ['MODIFIED mc 2', 'DELETED mc 2']);
    assert.equal(await c.get(CONFIGMAPS, 'default', 'mc'), null);
    await c.delete(CONFIGMAPS, 'default', 'mc'); // already gone: not an error
    await c.healthz(1000);
    assert.match(await c.version(), /^v1\./);
    assert.ok(dialed.every((a) => a === `127.0.0.1:${server.port}`));
  });

  it('verifies the member against caBundle, and the name unless SubjectName is disabled', async function () {
    const otherCa = Buffer.from(fs.readFileSync(testPki().server.cert)); // not the CA that signed the member's certificate
    await assert.rejects(client(`https://127.0.0.1:${server.port}`, {}, otherCa).healthz(1000), (e: MemberError) => e.code === 'TLSError');
    await assert.rejects(client(`https://member.example:${server.port}`).healthz(1000), (e: MemberError) => e.code === 'TLSError' && /ALTNAME|altnames/i.test(e.message));
    await client(`https://member.example:${server.port}`, { disabledTLSValidations: ['SubjectName'] }).healthz(1000);
    assert.ok(dialed.includes(`member.example:${server.port}`), 'the name inside the member is what is dialed');
  });

  it('accepts an expired member certificate only with ValidityPeriod disabled, and still checks its CA', async function () {
    // A member API server whose certificate (signed by the test CA) expired yesterday.
    const pki = testPki();
    const ca = readKeyPair(path.dirname(pki.ca.cert), path.basename(pki.ca.cert, '.crt'));
    const leaf = issueServerCert(ca, { commonName: 'expired-member', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    const cert = forge.pki.certificateFromPem(leaf.certPem);
    cert.validity.notBefore = new Date(Date.now() - 10 * 86_400_000);
    cert.validity.notAfter = new Date(Date.now() - 86_400_000);
    cert.sign(forge.pki.privateKeyFromPem(ca.keyPem), forge.md.sha256.create());
    const expired = https.createServer({ cert: forge.pki.certificateToPem(cert), key: leaf.keyPem }, (_req, res) => res.end('ok'));
    expired.listen(0, '127.0.0.1');
    await once(expired, 'listening');
    expiredPort = (expired.address() as net.AddressInfo).port;
    try {
      await assert.rejects(client('https://expired.example:443').healthz(1000), (e: MemberError) => e.code === 'TLSError' && /CERT_HAS_EXPIRED/.test(e.message));
      await client('https://expired.example:443', { disabledTLSValidations: ['ValidityPeriod', 'SubjectName'] }).healthz(1000);
      await client(`https://localhost:443`, { disabledTLSValidations: ['ValidityPeriod'] }).healthz(1000);
      const otherCa = Buffer.from(fs.readFileSync(pki.server.cert));
      await assert.rejects(client('https://expired.example:443', { disabledTLSValidations: ['ValidityPeriod'] }, otherCa).healthz(1000), (e: MemberError) => e.code === 'TLSError');
      await assert.rejects(client('https://expired.example:443', { disabledTLSValidations: ['ValidityPeriod'] }).healthz(1000), (e: MemberError) => e.code === 'TLSError' && /ALTNAME|altnames/i.test(e.message));
    } finally {
      for (const c of clients.splice(0)) c.close();
      expired.closeAllConnections();
      expired.close();
    }
  });

  it('gives a typed error for a member that cannot be reached or hangs', async function () {
    await assert.rejects(client('https://refuse.example:443').healthz(1000), (e: MemberError) => e.code === 'Unreachable');
    const started = Date.now();
    await assert.rejects(client('https://hang.example:443').list(CONFIGMAPS), (e: MemberError) => e.code === 'Timeout');
    assert.ok(Date.now() - started < 10_000);
  });
});
