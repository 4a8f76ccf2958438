// OIDC ID-token authentication (kube-apiserver's --oidc-* flags): discovery of the issuer's
// jwks_uri, keys fetched and cached by jose's remote JWKS (refetched when a token names an unknown
// key, so issuer key rotation works), issuer/audience/exp/nbf checked with a small clock skew, and
// only asymmetric algorithms accepted (alg "none" and HMAC are refused: an HMAC "secret" would be
// the issuer's public key). Token material is never logged: refusals carry a reason only.
import https from 'node:https';
import { createRemoteJWKSet, customFetch, errors as joseErrors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { Logger } from '../../common/log.js';
import type { UserInfo } from './authz.js';
import { userFromClaims, type ClaimMapping, type ClaimRefusal } from './oidc-claims.js';

export interface OidcOptions extends ClaimMapping {
  issuerUrl: string;
  /** The audience (aud) a token must carry. */
  clientId: string;
  /** PEM CA bundle for the issuer's TLS; null: the system's CAs. */
  ca: Buffer | null;
}

/** Asymmetric signatures only. */
export const OIDC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];
/** Allowed difference between our clock and the issuer's for exp and nbf. */
export const OIDC_CLOCK_SKEW_SECONDS = 10;
/** A token naming a key not in the cached set refetches the JWKS at most this often. */
const JWKS_COOLDOWN_MS = 5_000;
/** The JWKS is refetched when older than this even if every key is known. */
const JWKS_MAX_AGE_MS = 10 * 60_000;
/** After a failed discovery, the next try waits at least this long (requests meanwhile get 401). */
const DISCOVERY_RETRY_MS = 1_000;
const FETCH_TIMEOUT_MS = 5_000;
const MAX_DOCUMENT_BYTES = 1024 * 1024;

export type OidcRefusal =
  | ClaimRefusal
  | 'expired'
  | 'not_yet_valid'
  | 'wrong_audience'
  | 'wrong_issuer'
  | 'bad_signature'
  | 'unknown_key'
  | 'disallowed_algorithm'
  | 'malformed'
  | 'invalid_claims'
  | 'issuer_unavailable';

export type OidcResult = { user: UserInfo } | { refused: OidcRefusal };

/** Why jose refused a token (pure). */
export function refusalOf(error: unknown): OidcRefusal {
  if (error instanceof joseErrors.JWTExpired) return 'expired';
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    if (error.claim === 'aud') return 'wrong_audience';
    if (error.claim === 'iss') return 'wrong_issuer';
    if (error.claim === 'nbf') return 'not_yet_valid';
    return 'invalid_claims';
  }
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'bad_signature';
  if (error instanceof joseErrors.JWKSNoMatchingKey || error instanceof joseErrors.JWKSMultipleMatchingKeys) return 'unknown_key';
  if (error instanceof joseErrors.JOSEAlgNotAllowed || error instanceof joseErrors.JOSENotSupported) return 'disallowed_algorithm';
  if (error instanceof joseErrors.JWSInvalid || error instanceof joseErrors.JWTInvalid) return 'malformed';
  // Fetching the JWKS failed (timeout, connection, not 200, not a key set).
  return 'issuer_unavailable';
}

/** GET over HTTPS with the issuer's CA, as a fetch Response (what jose's remote JWKS expects). */
function httpsFetcher(ca: Buffer | null): (url: string, init?: { signal?: AbortSignal; headers?: Headers }) => Promise<Response> {
  return (url, init) =>
    new Promise<Response>((resolve, reject) => {
      const headers: Record<string, string> = {};
      init?.headers?.forEach((value, key) => (headers[key] = value));
      const req = https.get(url, { ...(ca ? { ca } : {}), headers, signal: init?.signal ?? AbortSignal.timeout(FETCH_TIMEOUT_MS) }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_DOCUMENT_BYTES) req.destroy(new Error(`response larger than ${MAX_DOCUMENT_BYTES} bytes`));
          else chunks.push(chunk);
        });
        res.on('end', () => resolve(new Response(Buffer.concat(chunks), { status: res.statusCode ?? 500, headers: { 'content-type': String(res.headers['content-type'] ?? '') } })));
        res.on('error', reject);
      });
      req.on('error', reject);
    });
}

export class OidcAuthenticator {
  private jwks: JWTVerifyGetKey | null = null;
  private discovery: Promise<JWTVerifyGetKey | null> | null = null;
  private lastDiscoveryFailure = 0;
  private readonly fetch: ReturnType<typeof httpsFetcher>;

  constructor(
    private readonly options: OidcOptions,
    private readonly log: Logger,
  ) {
    this.fetch = httpsFetcher(options.ca);
  }

  /** Starts discovery in the background: the server starts even when the issuer is down. */
  start(): void {
    void this.keys();
  }

  async authenticate(token: string): Promise<OidcResult> {
    const keys = await this.keys();
    if (!keys) return { refused: 'issuer_unavailable' };
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, keys, {
        issuer: this.options.issuerUrl,
        audience: this.options.clientId,
        algorithms: OIDC_ALGORITHMS,
        clockTolerance: OIDC_CLOCK_SKEW_SECONDS,
        requiredClaims: ['exp'],
      }));
    } catch (error) {
      return { refused: refusalOf(error) };
    }
    const user = userFromClaims(payload, this.options, this.options.issuerUrl);
    return 'refused' in user ? user : { user };
  }

  /** The issuer's key set, discovering its jwks_uri first (one discovery at a time, retried after a pause). */
  private async keys(): Promise<JWTVerifyGetKey | null> {
    if (this.jwks) return this.jwks;
    if (this.discovery) return this.discovery;
    if (Date.now() - this.lastDiscoveryFailure < DISCOVERY_RETRY_MS) return null;
    this.discovery = this.discover().then(
      (jwks) => {
        this.jwks = jwks;
        this.log.info({ issuer: this.options.issuerUrl }, 'oidc issuer discovered');
        return jwks;
      },
      (error: Error) => {
        this.lastDiscoveryFailure = Date.now();
        this.log.warn({ issuer: this.options.issuerUrl, err: error.message }, 'oidc discovery failed; tokens are refused until it succeeds');
        return null;
      },
    );
    try {
      return await this.discovery;
    } finally {
      this.discovery = null;
    }
  }

  private async discover(): Promise<JWTVerifyGetKey> {
    const url = `${this.options.issuerUrl.replace(/\/$/, '')}/.well-known/openid-configuration`;
    const res = await this.fetch(url);
    if (res.status !== 200) throw new Error(`discovery document: HTTP ${res.status}`);
    const doc = (await res.json()) as { issuer?: unknown; jwks_uri?: unknown };
    // OpenID Connect Discovery §4.3: the document's issuer is exactly the configured one.
    if (doc.issuer !== this.options.issuerUrl) throw new Error(`discovery document names issuer ${JSON.stringify(doc.issuer)}`);
    if (typeof doc.jwks_uri !== 'string' || !doc.jwks_uri.startsWith('https://')) throw new Error('discovery document has no https jwks_uri');
    return createRemoteJWKSet(new URL(doc.jwks_uri), {
      timeoutDuration: FETCH_TIMEOUT_MS,
      cooldownDuration: JWKS_COOLDOWN_MS,
      cacheMaxAge: JWKS_MAX_AGE_MS,
      [customFetch]: this.fetch,
    });
  }
}
