// Authentication of API requests: a verified client certificate (CN = user, O = groups), a bearer
// token from a kube-apiserver static token file (--token-file), or an OIDC ID token (--oidc-*,
// oidc.ts). As in kube-apiserver, any valid authenticator wins (certificate, then token file, then
// OIDC); a request whose only credential is a bearer token no method accepts is unauthenticated (401). Tokens are never logged or kept in clear text:
// only their SHA-256 digests are stored, and they are compared in constant time.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Registry } from 'prom-client';
import type { TLSSocket } from 'node:tls';
import { peerCertificateOf, userIdentityFromPeer } from '../../certs/identity.js';
import { UsageError } from '../../common/flags.js';
import type { Logger } from '../../common/log.js';
import type { UserInfo } from './authz.js';
import { AuthnMetrics } from './authn-metrics.js';
import type { OidcAuthenticator } from './oidc.js';

export interface StaticToken {
  token: string;
  user: string;
  uid: string;
  groups: string[];
}

/** Splits one CSV record (RFC 4180 quoting, "" inside quotes is a quote); null if the quoting is broken. */
export function splitCsvLine(line: string): string[] | null {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    while (line[i] === ' ' || line[i] === '\t') i++; // like Go's csv.Reader with TrimLeadingSpace
    let field = '';
    if (line[i] === '"') {
      i++;
      for (;;) {
        if (i >= line.length) return null;
        if (line[i] === '"') {
          if (line[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += line[i++];
      }
      while (line[i] === ' ' || line[i] === '\t') i++;
      if (i < line.length && line[i] !== ',') return null;
    } else {
      const end = line.indexOf(',', i);
      field = line.slice(i, end < 0 ? line.length : end);
      if (field.includes('"')) return null;
      i = end < 0 ? line.length : end;
    }
    fields.push(field);
    if (i >= line.length) return fields;
    i++; // the comma
  }
}

/**
 * Parses a static token file: one `token,user,uid[,"group1,group2"]` record a line. Blank lines and
 * lines starting with # are skipped. A bad line is a UsageError naming the file and line number
 * (never the line itself: it holds a token).
 */
export function parseTokenFile(text: string, fileName = 'token file'): StaticToken[] {
  const out: StaticToken[] = [];
  const seen = new Set<string>();
  const lines = text.split(/\r?\n/);
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!;
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    const where = `${fileName} line ${n + 1}`;
    const fields = splitCsvLine(line);
    if (!fields) throw new UsageError(`--token-file: ${where}: malformed CSV quoting`);
    if (fields.length < 3 || fields.length > 4) throw new UsageError(`--token-file: ${where}: expected token,user,uid[,"groups"], found ${fields.length} columns`);
    const [token, user, uid, groupText] = fields.map((f) => f.trim()) as [string, string, string, string | undefined];
    if (token === '') throw new UsageError(`--token-file: ${where}: empty token`);
    if (/[\s]/.test(token)) throw new UsageError(`--token-file: ${where}: the token contains whitespace`);
    if (user === '') throw new UsageError(`--token-file: ${where}: empty user name`);
    if (seen.has(token)) throw new UsageError(`--token-file: ${where}: duplicate token`);
    seen.add(token);
    const groups = groupText === undefined ? [] : groupText.split(',').map((g) => g.trim()).filter((g) => g !== '');
    out.push({ token, user, uid, groups });
  }
  return out;
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** Looks tokens up by comparing SHA-256 digests in constant time against every entry. */
export class TokenAuthenticator {
  private readonly entries: Array<{ hash: Buffer; user: UserInfo }>;

  constructor(tokens: readonly StaticToken[]) {
    this.entries = tokens.map((t) => ({ hash: digest(t.token), user: { user: t.user, groups: [...t.groups] } }));
  }

  get size(): number {
    return this.entries.length;
  }

  authenticate(token: string): UserInfo | null {
    const h = digest(token);
    let found: UserInfo | null = null;
    // No early exit: every entry is compared, whichever matches.
    for (const e of this.entries) {
      if (timingSafeEqual(h, e.hash) && found === null) found = e.user;
    }
    return found ? { user: found.user, groups: [...found.groups] } : null;
  }
}

/**
 * Why a request that authenticated as nobody (401) was refused, for the warn log and the
 * listener's refusal counter — never the token itself: an unknown bearer token, a verified
 * certificate that is not a user's (an agent's), or no credentials at all.
 */
export function unauthenticatedReason(req: IncomingMessage): 'invalid_token' | 'not_a_user_certificate' | 'no_credentials' {
  if (bearerToken(req.headers.authorization) !== undefined) return 'invalid_token';
  const socket = req.socket as TLSSocket;
  if (socket.authorized && peerCertificateOf(socket) !== null) return 'not_a_user_certificate';
  return 'no_credentials';
}

/**
 * The bearer token of an Authorization header, as kube-apiserver reads it: `Bearer <token>`
 * (scheme case-insensitive). undefined when there is no bearer token at all.
 */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const parts = header.trim().split(' ');
  if (parts.length !== 2 || parts[0]!.toLowerCase() !== 'bearer' || parts[1] === '') return undefined;
  return parts[1];
}

/** The user of a verified client certificate of the request, or null. */
function certificateUser(req: IncomingMessage): UserInfo | null {
  const socket = req.socket as TLSSocket;
  if (!socket.authorized) return null;
  const peer = peerCertificateOf(socket);
  return peer && userIdentityFromPeer(peer);
}

/**
 * Who sent a request, or null (401). One job only — no authorization — so every front door of
 * the hub (the federation API server; the /clusters proxy of issue 8) can share one.
 */
export interface Authenticator {
  authenticate(req: IncomingMessage): Promise<UserInfo | null>;
}

/**
 * Client certificate, then static token file, then OIDC; counts attempts by method and result and
 * warns (reason only, never the token) when a bearer token is refused.
 */
export class RequestAuthenticator implements Authenticator {
  private readonly metrics: AuthnMetrics;
  private readonly warned = new WeakMap<object, Set<string>>();

  constructor(
    private readonly methods: { tokens?: TokenAuthenticator; oidc?: OidcAuthenticator },
    registry: Registry,
    private readonly log: Logger,
  ) {
    this.metrics = AuthnMetrics.of(registry);
  }

  async authenticate(req: IncomingMessage): Promise<UserInfo | null> {
    const certUser = certificateUser(req);
    if (certUser) {
      this.metrics.attempts.inc({ method: 'client_certificate', result: 'success' });
      return certUser;
    }
    const token = bearerToken(req.headers.authorization);
    if (token === undefined) return null;
    const { tokens, oidc } = this.methods;
    if (tokens) {
      const user = tokens.authenticate(token);
      this.metrics.attempts.inc({ method: 'token_file', result: user ? 'success' : 'failure' });
      if (user) return user;
    }
    if (!oidc) return null;
    const result = await oidc.authenticate(token);
    this.metrics.attempts.inc({ method: 'oidc', result: 'user' in result ? 'success' : result.refused });
    if ('user' in result) return result.user;
    // Once per connection and reason: a keep-alive client retrying a bad token cannot flood the log (the counter has them all).
    const warned = this.warned.get(req.socket) ?? new Set<string>();
    if (!warned.has(result.refused)) {
      warned.add(result.refused);
      this.warned.set(req.socket, warned);
      this.log.warn({ reason: result.refused, remote: req.socket.remoteAddress }, 'oidc token refused');
    }
    return null;
  }
}

/**
 * The verified client certificate of a request when `isRevoked` says its serial is revoked, else
 * null. The server refuses such a request with 403 even if it also carries a valid bearer token:
 * a connection made with a revoked certificate is not to be served at all.
 */
export function revokedClientCertificate(req: IncomingMessage, isRevoked?: (serialHex: string) => boolean): { serial: string; user: string | undefined } | null {
  const socket = req.socket as TLSSocket;
  if (!isRevoked || !socket.authorized) return null;
  const peer = peerCertificateOf(socket);
  if (!peer?.serialNumber || !isRevoked(peer.serialNumber)) return null;
  return { serial: peer.serialNumber.toLowerCase(), user: userIdentityFromPeer(peer)?.user };
}
