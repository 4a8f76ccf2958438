/**
 * Agent enrolment, the pure part: bootstrap tokens (`<id>.<secret>`, kubeadm's shape) and their
 * hashed records, the decision whether a presented token may enrol, certificate signing requests
 * (built by the agent, checked by the hub), CA fingerprints and when to renew. The token file, the
 * HTTP endpoints and the agent's files are the callers' I/O.
 */
import { X509Certificate, createHash, createPublicKey, randomInt, timingSafeEqual } from 'node:crypto';
import forge from 'node-forge';
import { isDnsLabel } from './names.js';

/** kubeadm's bootstrap token shape: 6 + 16 characters of [a-z0-9]. */
const TOKEN_PATTERN = /^([a-z0-9]{6})\.([a-z0-9]{16})$/;
const TOKEN_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
const MIN_RSA_BITS = 2048;
const MAX_RSA_BITS = 8192;
/** A 8192-bit RSA CSR is under 4 KiB of PEM; anything much larger is not one. */
export const MAX_CSR_BYTES = 16 * 1024;

export type EnrolmentErrorCode =
  | 'TOKEN_MISSING'
  | 'TOKEN_MALFORMED'
  | 'TOKEN_UNKNOWN'
  | 'TOKEN_EXPIRED'
  | 'TOKEN_USED'
  | 'CSR_INVALID'
  | 'CERTIFICATE_REVOKED'
  | 'NOT_AN_AGENT'
  | 'ENROLMENT_DISABLED'
  | 'BODY_TOO_LARGE'
  | 'BODY_TIMEOUT'
  | 'METHOD_NOT_ALLOWED'
  | 'LEDGER_UNAVAILABLE'
  | 'INTERNAL';

const HTTP_STATUS: Record<EnrolmentErrorCode, number> = {
  TOKEN_MISSING: 401,
  TOKEN_MALFORMED: 401,
  // A wrong secret for a known id is indistinguishable from an unknown id: no oracle for ids.
  TOKEN_UNKNOWN: 401,
  // Only a caller who knows the secret learns that the token expired or was used.
  TOKEN_EXPIRED: 403,
  TOKEN_USED: 403,
  CSR_INVALID: 400,
  CERTIFICATE_REVOKED: 403,
  NOT_AN_AGENT: 403,
  ENROLMENT_DISABLED: 404,
  BODY_TOO_LARGE: 413,
  BODY_TIMEOUT: 408,
  METHOD_NOT_ALLOWED: 405,
  // The replicas' shared ledger of used tokens cannot be reached: the agent retries (5xx), the token is not spent by this attempt.
  LEDGER_UNAVAILABLE: 503,
  INTERNAL: 500,
};

/** A refused enrolment or renewal: a stable code, the HTTP status it is answered with, a message. */
export class EnrolmentError extends Error {
  override readonly name = 'EnrolmentError';
  readonly httpStatus: number;

  constructor(
    readonly code: EnrolmentErrorCode,
    message: string,
  ) {
    super(message);
    this.httpStatus = HTTP_STATUS[code];
  }
}

export interface BootstrapToken {
  id: string;
  secret: string;
}

/** What the hub keeps of a token: never the secret, only its SHA-256. */
export interface TokenRecord {
  id: string;
  secretSha256: string;
  cluster: string;
  tenant: string;
  expires: Date;
}

export function generateToken(random: (max: number) => number = randomInt): BootstrapToken {
  const pick = (n: number): string => Array.from({ length: n }, () => TOKEN_ALPHABET[random(TOKEN_ALPHABET.length)]).join('');
  return { id: pick(6), secret: pick(16) };
}

export function formatToken(token: BootstrapToken): string {
  return `${token.id}.${token.secret}`;
}

/** The token in `text` (surrounding white space ignored, as in a token file); throws TOKEN_MALFORMED. */
export function parseToken(text: string): BootstrapToken {
  const match = TOKEN_PATTERN.exec(text.trim());
  // The message never repeats the text: it may be a mistyped secret.
  if (!match) throw new EnrolmentError('TOKEN_MALFORMED', 'bootstrap token malformed: expected <6 characters>.<16 characters> of a-z and 0-9');
  return { id: match[1]!, secret: match[2]! };
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function tokenRecord(token: BootstrapToken, cluster: string, tenant: string, expires: Date): TokenRecord {
  if (!isDnsLabel(cluster)) throw new RangeError(`invalid cluster name ${JSON.stringify(cluster)}: must be a DNS label`);
  if (!isDnsLabel(tenant)) throw new RangeError(`invalid tenant name ${JSON.stringify(tenant)}: must be a DNS label`);
  return { id: token.id, secretSha256: hashSecret(token.secret), cluster, tenant, expires };
}

/** One line of a token file: `<id> <sha256> <cluster> <tenant> <expires ISO>`. */
export function formatTokenRecord(record: TokenRecord): string {
  return `${record.id} ${record.secretSha256} ${record.cluster} ${record.tenant} ${record.expires.toISOString()}`;
}

/** A token file: records, `#` comments and blank lines; a bad line throws naming its number. */
export function parseTokenFile(text: string, where = 'token file'): Map<string, TokenRecord> {
  const records = new Map<string, TokenRecord>();
  text.split('\n').forEach((raw, index) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') return;
    const fields = line.split(/\s+/);
    const bad = (why: string): Error => new RangeError(`${where} line ${index + 1}: ${why}`);
    if (fields.length !== 5) throw bad(`expected "<id> <sha256> <cluster> <tenant> <expires>", found ${fields.length} fields`);
    const [id, secretSha256, cluster, tenant, expiresText] = fields as [string, string, string, string, string];
    if (!/^[a-z0-9]{6}$/.test(id)) throw bad(`token id ${JSON.stringify(id)} is not 6 characters of a-z and 0-9`);
    if (!/^[0-9a-f]{64}$/.test(secretSha256)) throw bad('the secret hash is not 64 hex digits');
    if (!isDnsLabel(cluster)) throw bad(`cluster ${JSON.stringify(cluster)} is not a DNS label`);
    if (!isDnsLabel(tenant)) throw bad(`tenant ${JSON.stringify(tenant)} is not a DNS label`);
    const expires = new Date(expiresText);
    if (Number.isNaN(expires.getTime())) throw bad(`expiry ${JSON.stringify(expiresText)} is not a date`);
    if (records.has(id)) throw bad(`token id ${id} appears twice`);
    records.set(id, { id, secretSha256, cluster, tenant, expires });
  });
  return records;
}

/** The ids in a used-token ledger: `<id> <used at> …` lines. */
export function parseUsedLedger(text: string): Set<string> {
  const used = new Set<string>();
  for (const line of text.split('\n')) {
    const id = line.trim().split(/\s+/)[0];
    if (id) used.add(id);
  }
  return used;
}

/**
 * Whether `token` may enrol now: the record of its id, with the secret's hash compared in constant
 * time, then expiry, then single use. Returns the record (the identity to issue) or throws.
 */
export function admitToken(token: BootstrapToken, records: ReadonlyMap<string, TokenRecord>, used: ReadonlySet<string>, now: Date): TokenRecord {
  const record = records.get(token.id);
  const presented = Buffer.from(hashSecret(token.secret), 'hex');
  if (!record || !timingSafeEqual(presented, Buffer.from(record.secretSha256, 'hex'))) {
    throw new EnrolmentError('TOKEN_UNKNOWN', `bootstrap token ${token.id} is not known to this hub (or its secret is wrong)`);
  }
  if (record.expires.getTime() <= now.getTime()) {
    throw new EnrolmentError('TOKEN_EXPIRED', `bootstrap token ${token.id} expired at ${record.expires.toISOString()}; create a new one`);
  }
  if (used.has(token.id)) throw tokenUsed(token.id);
  return record;
}

/** The refusal of a spent token, whichever ledger (file or shared table) knows it is spent. */
export function tokenUsed(id: string): EnrolmentError {
  return new EnrolmentError('TOKEN_USED', `bootstrap token ${id} was already used; tokens are single-use, create a new one`);
}

/**
 * The outcome of claiming a token in the replicas' shared ledger, given the row that is there
 * after the atomic insert. `claimed`: ours went in. `retried`: the same key claimed it before (an
 * agent whose earlier answer was lost: the certificate can only be used with that key, so issuing
 * again gives nothing to anyone else). `used`: another key, or a token spent before the hub ran as
 * replicas (no key recorded), spent it.
 */
export function claimOutcome(inserted: boolean, storedKeySha256: string, presentedKeySha256: string): 'claimed' | 'retried' | 'used' {
  if (inserted) return 'claimed';
  return storedKeySha256 !== '' && storedKeySha256 === presentedKeySha256 ? 'retried' : 'used';
}

/** SHA-256 of a public key's SPKI DER (hex): what the shared ledger records of the key a token enrolled. */
export function publicKeySha256(publicKeyPem: string): string {
  return createHash('sha256').update(createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' })).digest('hex');
}

/** The token from an `Authorization: Bearer …` header. */
export function bearerToken(header: string | undefined): BootstrapToken {
  if (header === undefined || header === '') throw new EnrolmentError('TOKEN_MISSING', 'no bootstrap token: send Authorization: Bearer <id>.<secret>');
  const match = /^Bearer +(\S+)$/i.exec(header.trim());
  if (!match) throw new EnrolmentError('TOKEN_MALFORMED', 'Authorization header is not "Bearer <id>.<secret>"');
  return parseToken(match[1]!);
}

/** A PEM signing request for `keyPem`'s public key, signed with it (proof of possession); RSA. */
export function createCsr(keyPem: string): string {
  const key = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  // The hub sets every name from the token or the current certificate; this subject is ignored.
  csr.setSubject([{ shortName: 'CN', value: 'fedtunnel-agent-request' }]);
  csr.sign(key, forge.md.sha256.create());
  return forge.pki.certificationRequestToPem(csr);
}

/**
 * Checks a request body: exactly one PEM CERTIFICATE REQUEST and nothing else (a private key sent
 * by mistake is refused, not stored), a valid self-signature, an RSA key of 2048-8192 bits.
 * Returns the public key as SPKI PEM; whatever names the request asks for are ignored.
 */
export function csrPublicKey(body: string): string {
  if (Buffer.byteLength(body) > MAX_CSR_BYTES) throw new EnrolmentError('CSR_INVALID', `certificate request larger than ${MAX_CSR_BYTES} bytes`);
  const blocks = [...body.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----/g)].map((m) => m[1]);
  if (blocks.some((label) => label!.includes('PRIVATE KEY'))) {
    throw new EnrolmentError('CSR_INVALID', 'the body holds a private key: send only a CERTIFICATE REQUEST (keys never leave the member)');
  }
  if (blocks.length !== 1 || blocks[0] !== 'CERTIFICATE REQUEST') {
    throw new EnrolmentError('CSR_INVALID', 'the body must be exactly one PEM CERTIFICATE REQUEST');
  }
  let csr: ReturnType<typeof forge.pki.certificationRequestFromPem>;
  try {
    csr = forge.pki.certificationRequestFromPem(body);
  } catch (error) {
    throw new EnrolmentError('CSR_INVALID', `unreadable certificate request: ${(error as Error).message}`);
  }
  const key = csr.publicKey as forge.pki.rsa.PublicKey | null;
  if (!key || typeof key.n?.bitLength !== 'function') throw new EnrolmentError('CSR_INVALID', 'the certificate request must carry an RSA public key');
  const bits = key.n.bitLength();
  if (bits < MIN_RSA_BITS || bits > MAX_RSA_BITS) throw new EnrolmentError('CSR_INVALID', `RSA key of ${bits} bits; ${MIN_RSA_BITS}-${MAX_RSA_BITS} required`);
  let signed = false;
  try {
    signed = csr.verify();
  } catch {
    signed = false;
  }
  if (!signed) throw new EnrolmentError('CSR_INVALID', 'the certificate request is not signed by the key it carries');
  return forge.pki.publicKeyToPem(key);
}

/** SHA-256 of a certificate's DER as `sha256:<64 hex>`: what --ca-fingerprint pins. */
export function certificateFingerprint(pem: string): string {
  return `sha256:${new X509Certificate(pem).fingerprint256.replace(/:/g, '').toLowerCase()}`;
}

/** `sha256:<hex>` with or without colons, any case; null when it is not one. */
export function parseFingerprint(text: string): string | null {
  const match = /^sha256:([0-9a-fA-F:]+)$/.exec(text.trim());
  if (!match) return null;
  const hex = match[1]!.replace(/:/g, '').toLowerCase();
  return hex.length === 64 ? `sha256:${hex}` : null;
}

/** When to renew: `before` is a duration in ms, or a fraction of the validity (e.g. 1/3). */
export type RenewBefore = { ms: number } | { fraction: number };

/** The moment a certificate valid from `notBefore` to `notAfter` is due for renewal. */
export function renewalTime(notBefore: Date, notAfter: Date, before: RenewBefore): Date {
  const lifetime = notAfter.getTime() - notBefore.getTime();
  const ahead = 'ms' in before ? Math.min(before.ms, lifetime) : lifetime * before.fraction;
  return new Date(notAfter.getTime() - ahead);
}

/** Whether a certificate (PEM) is for this key (a public or a private key, PEM). */
export function publicKeysMatch(certPem: string, keyPem: string): boolean {
  const certKey = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  return certKey.equals(createPublicKey(keyPem).export({ type: 'spki', format: 'der' }));
}
