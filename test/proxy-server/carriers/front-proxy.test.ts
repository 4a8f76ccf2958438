// The front-proxy decisions: which peer may forward an agent certificate, and which forwarded
// certificates the hub accepts (against real certificates of the test PKI and of a foreign CA).
import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { createCA, issueAgentCert } from '../../../certs/pki.js';
import { isFrontProxy, parseCertificates, verifyForwardedAgent } from '../../../proxy-server/carriers/front-proxy.js';
import { testPki } from '../../support/pki.js';

const der = (pemFile: string | Buffer): string => new X509Certificate(typeof pemFile === 'string' ? fs.readFileSync(pemFile) : pemFile).raw.toString('base64');

describe('proxy-server: carriers/front-proxy', function () {
  const pki = testPki();
  const cas = parseCertificates(fs.readFileSync(pki.ca.cert));

  it('accepts an agent certificate of the hub CA, with its identity and serial', function () {
    const result = verifyForwardedAgent(der(pki.agents.alpha!.cert), cas);
    assert.ok('identity' in result, JSON.stringify(result));
    assert.deepEqual(result.identity, { cluster: 'alpha', tenant: 'team-a' });
    assert.equal(result.serial, new X509Certificate(fs.readFileSync(pki.agents.alpha!.cert)).serialNumber);
  });

  const refusals: Array<[string, () => string | undefined, string]> = [
    ['no header', () => undefined, 'no_certificate'],
    ['bytes that are not a certificate', () => Buffer.from('not a certificate').toString('base64'), 'bad_certificate'],
    ['an agent certificate of another CA', () => der(Buffer.from(issueAgentCert(createCA(), { cluster: 'alpha', tenant: 'team-a' }).certPem)), 'unknown_ca'],
    ['a user certificate of the hub CA', () => der(pki.users.alice!.cert), 'not_an_agent_certificate'],
    ['the server certificate of the hub CA', () => der(pki.server.cert), 'not_an_agent_certificate'],
  ];
  for (const [what, header, reason] of refusals) {
    it(`refuses ${what}: ${reason}`, function () {
      const result = verifyForwardedAgent(header(), cas);
      assert.ok('refusal' in result, JSON.stringify(result));
      assert.equal(result.refusal, reason);
    });
  }

  it('refuses an agent certificate outside its validity', function () {
    const header = der(pki.agents.alpha!.cert);
    assert.equal((verifyForwardedAgent(header, cas, new Date(Date.now() + 100 * 365 * 86_400_000)) as { refusal: string }).refusal, 'certificate_expired');
    assert.equal((verifyForwardedAgent(header, cas, new Date(0)) as { refusal: string }).refusal, 'certificate_not_yet_valid');
  });

  it('a front proxy is a user certificate whose CN is listed, never an agent certificate', function () {
    const names = new Set(['edge-proxy']);
    assert.equal(isFrontProxy({ subject: { CN: 'edge-proxy' }, subjectaltname: '' } as unknown as PeerCertificate, names), true);
    assert.equal(isFrontProxy({ subject: { CN: 'alice' }, subjectaltname: '' } as unknown as PeerCertificate, names), false);
    assert.equal(isFrontProxy({ subject: { CN: 'edge-proxy' }, subjectaltname: 'URI:urn:fedtunnel:agent:team-a:alpha' } as unknown as PeerCertificate, names), false);
    assert.equal(isFrontProxy({ subject: { CN: 'edge-proxy' }, subjectaltname: '' } as unknown as PeerCertificate, new Set()), false);
  });
});
