import { strict as assert } from 'node:assert';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensurePki } from '../../certs/bundle.js';
import { InvalidNameError } from '../../certs/names.js';
import {
  type CertKeyPair,
  createCA,
  issueAgentCert,
  issueClientCert,
  issueServerCert,
  keyPairPaths,
  readKeyPair,
  writeKeyPair,
} from '../../certs/pki.js';

function fileMode(filePath: string): number {
  return fs.statSync(filePath).mode & 0o777;
}

describe('certs: pki', function () {
  let ca: CertKeyPair;
  let tempDir: string;

  before(function () {
    ca = createCA();
  });

  beforeEach(function () {
    tempDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fedtunnel-pki-'));
  });

  afterEach(function () {
    fs.rmSync(tempDir, { recursive: true, force: true });
  });

  it('creates a CA that can sign, with positive 16-byte serials and backdated validity', function () {
    const caCert = new X509Certificate(ca.certPem);
    assert.ok(caCert.ca);
    assert.equal(caCert.subject, 'CN=fedtunnel-ca');

    const server = new X509Certificate(
      issueServerCert(ca, { commonName: 'proxy', dnsNames: ['localhost', '*.svc.example'], ipAddresses: ['127.0.0.1', '::1'] }).certPem,
    );
    assert.ok(server.checkIssued(caCert) && server.verify(caCert.publicKey));
    assert.equal(server.subjectAltName, 'DNS:localhost, DNS:*.svc.example, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    assert.match(server.serialNumber, /^[4-7][0-9A-F]{31}$/);
    const backdatedMs = Date.now() - Date.parse(server.validFrom);
    assert.ok(backdatedMs >= 4 * 60_000 && backdatedMs <= 6 * 60_000, `notBefore is ${backdatedMs}ms in the past`);
  });

  it('encodes the agent identity in subject and URI SAN', function () {
    const agent = new X509Certificate(issueAgentCert(ca, { cluster: 'c1', tenant: 't1' }).certPem);
    assert.equal(agent.subject, 'CN=system:cluster-agent:c1\nO=system:cluster-agents');
    assert.equal(agent.subjectAltName, 'URI:urn:fedtunnel:agent:t1:c1');
    assert.deepEqual(agent.keyUsage, ['1.3.6.1.5.5.7.3.2']);
  });

  it('rejects invalid cluster and tenant names with InvalidNameError', function () {
    for (const [cluster, tenant] of [
      ['Prod', 't1'],
      ['c_1', 't1'],
      ['', 't1'],
      ['c1', '-t1'],
      ['c1', 't1:x'],
      ['c'.repeat(64), 't1'],
    ]) {
      assert.throws(
        () => issueAgentCert(ca, { cluster, tenant }),
        (error: unknown) => error instanceof InvalidNameError && error.code === 'INVALID_NAME',
        `${cluster}/${tenant}`,
      );
    }
  });

  it('refuses user certificates that claim the agent identity', function () {
    assert.throws(() => issueClientCert(ca, { user: 'system:cluster-agent:c1' }), InvalidNameError);
    assert.throws(() => issueClientCert(ca, { user: 'mallory', groups: ['system:cluster-agents'] }), InvalidNameError);
    assert.throws(() => issueClientCert(ca, { user: '' }), InvalidNameError);
  });

  it('writes keys with mode 0600 and certificates with 0644, creating the directory with 0700', function () {
    const dir = path.join(tempDir, 'nested', 'pki');
    const pair = issueClientCert(ca, { user: 'alice', groups: ['dev'] });

    const paths = writeKeyPair(dir, 'client-alice', pair);

    assert.equal(fileMode(dir), 0o700);
    assert.equal(fileMode(paths.key), 0o600);
    assert.equal(fileMode(paths.cert), 0o644);
    assert.deepEqual(readKeyPair(dir, 'client-alice'), pair);
    assert.deepEqual(fs.readdirSync(dir).sort(), ['client-alice.crt', 'client-alice.key'], 'no temporary files left behind');
  });

  it('tightens a pre-existing key file that had mode 0644', function () {
    const paths = keyPairPaths(tempDir, 'server');
    fs.writeFileSync(paths.key, 'stale', { mode: 0o644 });
    fs.chmodSync(paths.key, 0o644);

    writeKeyPair(tempDir, 'server', ca);

    assert.equal(fileMode(paths.key), 0o600);
    assert.equal(fs.readFileSync(paths.key, 'utf8'), ca.keyPem);
  });

  it('refuses file base names that would escape the directory', function () {
    assert.throws(() => keyPairPaths(tempDir, '../ca'), InvalidNameError);
    assert.throws(() => keyPairPaths(tempDir, 'client-a/b'), InvalidNameError);
  });
});

describe('certs: ensurePki', function () {
  let tempDir: string;

  beforeEach(function () {
    tempDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fedtunnel-bundle-'));
  });

  afterEach(function () {
    fs.rmSync(tempDir, { recursive: true, force: true });
  });

  it('creates every pair once and reuses them on later calls', function () {
    const spec = { clusters: [{ name: 'c1', tenant: 't1' }], users: [{ user: 'alice', groups: ['dev'] }] };

    const paths = ensurePki(tempDir, spec);

    assert.deepEqual(paths, {
      ca: keyPairPaths(tempDir, 'ca'),
      server: keyPairPaths(tempDir, 'server'),
      agents: { c1: keyPairPaths(tempDir, 'agent-c1') },
      users: { alice: keyPairPaths(tempDir, 'client-alice') },
    });
    const caCert = new X509Certificate(fs.readFileSync(paths.ca.cert));
    const server = new X509Certificate(fs.readFileSync(paths.server.cert));
    assert.equal(server.subjectAltName, 'DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    assert.ok(server.verify(caCert.publicKey));

    const before = [paths.ca, paths.server, paths.agents.c1, paths.users.alice].map((pair) => fs.readFileSync(pair.cert, 'utf8'));
    assert.deepEqual(ensurePki(tempDir, spec), paths);
    const after = [paths.ca, paths.server, paths.agents.c1, paths.users.alice].map((pair) => fs.readFileSync(pair.cert, 'utf8'));
    assert.deepEqual(after, before);
  });

  it('reissues a leaf whose identity no longer matches, keeping the rest', function () {
    const paths = ensurePki(tempDir, { clusters: [{ name: 'c1', tenant: 't1' }], users: [] });
    const serverBefore = fs.readFileSync(paths.server.cert, 'utf8');

    ensurePki(tempDir, { clusters: [{ name: 'c1', tenant: 't2' }], users: [] });

    assert.equal(new X509Certificate(fs.readFileSync(paths.agents.c1.cert)).subjectAltName, 'URI:urn:fedtunnel:agent:t2:c1');
    assert.equal(fs.readFileSync(paths.server.cert, 'utf8'), serverBefore);
  });

  it('reissues leaves that were signed by a replaced CA', function () {
    const paths = ensurePki(tempDir, { clusters: [{ name: 'c1', tenant: 't1' }], users: [] });
    writeKeyPair(tempDir, 'ca', createCA());

    ensurePki(tempDir, { clusters: [{ name: 'c1', tenant: 't1' }], users: [] });

    const caCert = new X509Certificate(fs.readFileSync(paths.ca.cert));
    for (const pair of [paths.server, paths.agents.c1]) {
      assert.ok(new X509Certificate(fs.readFileSync(pair.cert)).verify(caCert.publicKey), pair.cert);
    }
  });

  it('refuses to replace a half-present CA', function () {
    ensurePki(tempDir, { clusters: [], users: [] });
    fs.rmSync(keyPairPaths(tempDir, 'ca').key);

    assert.throws(() => ensurePki(tempDir, { clusters: [], users: [] }), /incomplete CA/);
  });
});
