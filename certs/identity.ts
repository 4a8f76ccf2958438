/**
 * How identities are encoded in certificates and read back from TLS peers.
 * The issuer (pki.ts) and the proxy-server both go through this module so the
 * two sides cannot drift apart.
 *
 * Agents are identified solely by a URI SAN, never by the subject: a URI is
 * what the CA deliberately minted for the agent, while subject fields are
 * shared with user certificates and follow Kubernetes conventions instead.
 */
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { InvalidNameError, isDnsLabel } from './names.js';

export const AGENT_URI_PREFIX = 'urn:fedtunnel:agent:';
/** Subject of agent certs, mirroring the `system:node:<name>` / `system:nodes` convention. */
export const AGENT_COMMON_NAME_PREFIX = 'system:cluster-agent:';
export const AGENT_ORGANIZATION = 'system:cluster-agents';

export interface AgentIdentity {
  cluster: string;
  tenant: string;
}

export interface UserIdentity {
  user: string;
  groups: string[];
}

export function agentUri(tenant: string, cluster: string): string {
  if (!isDnsLabel(tenant)) throw new InvalidNameError(`invalid tenant name ${JSON.stringify(tenant)}: must be a DNS label`);
  if (!isDnsLabel(cluster)) throw new InvalidNameError(`invalid cluster name ${JSON.stringify(cluster)}: must be a DNS label`);
  return `${AGENT_URI_PREFIX}${tenant}:${cluster}`;
}

export function agentIdentityFromPeer(peer: PeerCertificate): AgentIdentity | null {
  const uris = subjectAltNameUris(peer);
  if (uris === null) return null;
  const agentUris = uris.filter(isAgentUri);
  if (agentUris.length !== 1) return null;

  const names = agentUris[0].slice(AGENT_URI_PREFIX.length).split(':');
  if (names.length !== 2) return null;
  const [tenant, cluster] = names;
  if (!isDnsLabel(tenant) || !isDnsLabel(cluster)) return null;
  return { cluster, tenant };
}

/** id-kp-serverAuth: only server certificates carry it (agent and user certificates are clientAuth only). */
const SERVER_AUTH_OID = '1.3.6.1.5.5.7.3.1';

/**
 * A hub replica forwarding a dial to another presents its server certificate as its client
 * certificate: a certificate of our CA with the serverAuth purpose and no agent URI. Returns its
 * common name (for logs), or null for any other certificate.
 */
export function replicaIdentityFromPeer(peer: PeerCertificate): string | null {
  const uris = subjectAltNameUris(peer);
  if (uris === null || uris.some(isAgentUri)) return null;
  if (!peer.ext_key_usage?.includes(SERVER_AUTH_OID)) return null;
  const cn = (peer.subject as unknown as Record<string, unknown> | undefined)?.CN;
  return typeof cn === 'string' && cn !== '' ? cn : null;
}

export function userIdentityFromPeer(peer: Pick<PeerCertificate, 'subject' | 'subjectaltname'>): UserIdentity | null {
  const uris = subjectAltNameUris(peer);
  // An unparseable SAN list might hide an agent URI, so it disqualifies the cert as a user too.
  if (uris === null || uris.some(isAgentUri)) return null;

  // Node's typings claim plain strings, but repeated attributes arrive as arrays.
  const subject = peer.subject as unknown as Record<string, string | string[] | undefined> | undefined;
  const user = subject?.CN;
  // Several CNs would make the user name ambiguous.
  if (typeof user !== 'string' || user === '') return null;
  const organizations = subject?.O;
  const groups = organizations === undefined ? [] : ([] as string[]).concat(organizations);
  return { user, groups };
}

/**
 * Case-insensitive so that a differently-cased agent URI, which the agent parser
 * would not accept, still keeps the certificate from passing as a user.
 */
function isAgentUri(uri: string): boolean {
  return uri.toLowerCase().startsWith(AGENT_URI_PREFIX);
}

/** URI entries of the peer's SAN list; null when the list cannot be parsed unambiguously. */
function subjectAltNameUris(peer: Pick<PeerCertificate, 'subjectaltname'>): string[] | null {
  if (peer.subjectaltname === undefined || peer.subjectaltname === '') return [];
  const entries = parseSubjectAltNames(peer.subjectaltname);
  return entries && entries.filter((entry) => entry.type === 'URI').map((entry) => entry.value);
}

interface SubjectAltName {
  type: string;
  value: string;
}

/**
 * Parses Node's rendering of the SAN extension: `TYPE:value` entries joined by
 * ", ". Since the CVE-2021-44532 fix, Node renders values containing commas,
 * quotes, backslashes or control characters as JSON string literals
 * (`URI:"a,b"`), so a quoted value is decoded with JSON.parse and may contain
 * the separator.
 */
export function parseSubjectAltNames(text: string): SubjectAltName[] | null {
  const entries: SubjectAltName[] = [];
  let position = 0;
  for (;;) {
    const colon = text.indexOf(':', position);
    if (colon < 0) return null;
    const type = text.slice(position, colon);
    let value: string;
    let end: number;
    if (text[colon + 1] === '"') {
      let closingQuote = colon + 2;
      while (closingQuote < text.length && text[closingQuote] !== '"') {
        closingQuote += text[closingQuote] === '\\' ? 2 : 1;
      }
      if (closingQuote >= text.length) return null;
      try {
        value = JSON.parse(text.slice(colon + 1, closingQuote + 1)) as string;
      } catch {
        return null;
      }
      end = closingQuote + 1;
    } else {
      const separator = text.indexOf(', ', colon + 1);
      end = separator < 0 ? text.length : separator;
      value = text.slice(colon + 1, end);
    }
    entries.push({ type, value });
    if (end === text.length) return entries;
    if (!text.startsWith(', ', end)) return null;
    position = end + 2;
  }
}

/** What requests read of a connection's client certificate: whom it names, and its serial (revocation). */
export type PeerSummary = Pick<PeerCertificate, 'subject' | 'subjectaltname' | 'serialNumber'>;

const peerSummaries = new WeakMap<TLSSocket, PeerSummary>();

/**
 * The client certificate of an established TLS connection, decoded once per connection, or null
 * if the peer sent none: getPeerCertificate() decodes the X.509 on every call (about 0.1 ms), and
 * every request of a keep-alive connection is authenticated (and revocation-checked) with it.
 * Only the fields requests read are kept: the whole decoded certificate (DER, public key, modulus,
 * fingerprints: about 3 KB) would live as long as the connection, and a watch holds its HTTP/1.1
 * connection for hours.
 */
export function peerCertificateOf(socket: TLSSocket): PeerSummary | null {
  let peer = peerSummaries.get(socket);
  if (!peer) {
    const full = socket.getPeerCertificate();
    // Before the handshake, or without a client certificate, there is nothing to keep (an empty object); ask again next time.
    if (!full || Object.keys(full).length === 0) return null;
    peer = { subject: full.subject, subjectaltname: full.subjectaltname, serialNumber: full.serialNumber };
    peerSummaries.set(socket, peer);
  }
  return peer;
}
