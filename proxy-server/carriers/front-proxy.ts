// The agent identity an HTTP/2 front proxy forwards. An L7 proxy terminates the agent's TLS, so
// the hub cannot see the agent's certificate itself; like Kubernetes' front-proxy (requestheader)
// scheme, the hub trusts a proxy it can authenticate — a client certificate of the hub's CA whose
// CN is on --agent-front-proxy — to pass on the agent certificate it verified, and re-verifies that
// certificate against its own CA (issuer, signature, validity, purpose, agent URI) before using it.
// Pure decisions: the carrier does the I/O.
import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { agentIdentityFromPeer, userIdentityFromPeer, type AgentIdentity } from '../../certs/identity.js';
import type { RefusalReason } from '../../common/listener-refusals.js';

const CLIENT_AUTH_OID = '1.3.6.1.5.5.7.3.2';

export type ForwardedAgent = { identity: AgentIdentity; serial: string } | { refusal: RefusalReason; message: string };

/** Whether a verified peer certificate is one of the configured front proxies (and not an agent). */
export function isFrontProxy(peer: PeerCertificate, names: ReadonlySet<string>): boolean {
  const user = userIdentityFromPeer(peer);
  return user !== null && names.has(user.user);
}

/** Every certificate of a PEM bundle (the hub's --ca file may hold several during a CA rotation). */
export function parseCertificates(pem: Buffer | string): X509Certificate[] {
  const blocks = String(pem).match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((block) => new X509Certificate(block));
}

/** Verifies the forwarded agent certificate (base64 DER) against `cas`; the identity, or why not. */
export function verifyForwardedAgent(header: string | string[] | undefined, cas: readonly X509Certificate[], now = new Date()): ForwardedAgent {
  if (typeof header !== 'string' || header === '') return { refusal: 'no_certificate', message: 'front proxy forwarded no agent certificate' };
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(Buffer.from(header, 'base64'));
  } catch {
    return { refusal: 'bad_certificate', message: 'forwarded agent certificate does not parse' };
  }
  if (!cas.some((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey))) {
    return { refusal: 'unknown_ca', message: 'forwarded agent certificate is not signed by the hub CA' };
  }
  if (now < new Date(cert.validFrom)) return { refusal: 'certificate_not_yet_valid', message: `forwarded agent certificate valid from ${cert.validFrom}` };
  if (now > new Date(cert.validTo)) return { refusal: 'certificate_expired', message: `forwarded agent certificate expired ${cert.validTo}` };
  const purposes = cert.keyUsage;
  if (purposes !== undefined && !purposes.includes(CLIENT_AUTH_OID)) {
    return { refusal: 'wrong_certificate_purpose', message: 'forwarded agent certificate is not for client authentication' };
  }
  const identity = agentIdentityFromPeer({ subjectaltname: cert.subjectAltName ?? '' } as PeerCertificate);
  if (!identity) return { refusal: 'not_an_agent_certificate', message: 'forwarded certificate is not an agent certificate' };
  return { identity, serial: cert.serialNumber };
}
