// Client certificates a listener must refuse, each for one reason: expired, not yet valid, from
// another CA. Issued from the test PKI and re-signed with the validity the test needs.
import path from 'node:path';
import forge from 'node-forge';
import { createCA, issueAgentCert, issueClientCert, readKeyPair, type CertKeyPair } from '../../certs/pki.js';
import { testPki } from './pki.js';

const DAY_MS = 86_400_000;

function testCa(): CertKeyPair {
  const pki = testPki();
  return readKeyPair(path.dirname(pki.ca.cert), path.basename(pki.ca.cert, '.crt'));
}

/** A client certificate of the test CA (user `user`) valid only between the two dates. */
export function clientCertValid(user: string, notBefore: Date, notAfter: Date): { cert: string; key: string } {
  const ca = testCa();
  return resigned(ca, issueClientCert(ca, { user, groups: [] }), notBefore, notAfter);
}

/** An agent certificate of the test CA that expired yesterday. */
export function expiredAgentCert(cluster: string, tenant: string): { cert: string; key: string } {
  const ca = testCa();
  return resigned(ca, issueAgentCert(ca, { cluster, tenant }), new Date(Date.now() - 10 * DAY_MS), new Date(Date.now() - DAY_MS));
}

function resigned(ca: CertKeyPair, leaf: CertKeyPair, notBefore: Date, notAfter: Date): { cert: string; key: string } {
  const cert = forge.pki.certificateFromPem(leaf.certPem);
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = notAfter;
  cert.sign(forge.pki.privateKeyFromPem(ca.keyPem), forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: leaf.keyPem };
}

export function expiredClientCert(user = 'expired-user'): { cert: string; key: string } {
  return clientCertValid(user, new Date(Date.now() - 10 * DAY_MS), new Date(Date.now() - DAY_MS));
}

export function notYetValidClientCert(user = 'future-user'): { cert: string; key: string } {
  return clientCertValid(user, new Date(Date.now() + DAY_MS), new Date(Date.now() + 10 * DAY_MS));
}

/** A client certificate of a CA the listeners don't trust. */
export function foreignClientCert(user = 'mallory'): { cert: string; key: string } {
  const leaf = issueClientCert(createCA({ commonName: 'rogue' }), { user, groups: ['system:masters'] });
  return { cert: leaf.certPem, key: leaf.keyPem };
}
