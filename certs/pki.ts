/**
 * Certificate authority and leaf issuance. node-forge builds and signs the
 * X.509 structures; node:crypto generates the keys because forge's pure-JS RSA
 * key generation is an order of magnitude slower. Forge cannot handle EC keys,
 * hence RSA throughout.
 */
import { X509Certificate, createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import forge from 'node-forge';
import { AGENT_COMMON_NAME_PREFIX, AGENT_ORGANIZATION, agentUri } from './identity.js';
import { InvalidNameError, isDnsName, isSubjectName } from './names.js';

export interface CertKeyPair {
  certPem: string;
  keyPem: string;
}

export interface KeyPairPaths {
  cert: string;
  key: string;
}

export interface CAOptions {
  commonName?: string;
  days?: number;
}

export interface ServerCertOptions {
  commonName: string;
  dnsNames: string[];
  ipAddresses: string[];
  days?: number;
}

export interface AgentCertOptions {
  cluster: string;
  tenant: string;
  days?: number;
}

export interface ClientCertOptions {
  user: string;
  groups?: string[];
  days?: number;
}

/** Any leaf certificate request, tagged so callers can handle all kinds uniformly. */
export type LeafRequest =
  | ({ kind: 'server' } & ServerCertOptions)
  | ({ kind: 'agent' } & AgentCertOptions)
  | ({ kind: 'client' } & ClientCertOptions);

const DAY_MS = 24 * 60 * 60 * 1000;
/** Backdating tolerates peers whose clocks run slightly behind the issuer's. */
const CLOCK_SKEW_MS = 5 * 60 * 1000;
const DEFAULT_DAYS = { ca: 3650, server: 825, agent: 365, client: 365 } as const;

// The typings declare valueTagClass as an asn1.Class although forge stores the universal type there.
const UTF8_STRING = forge.asn1.Type.UTF8 as unknown as forge.asn1.Class;
/** Missing from the typings; forge uses it itself to encode IP SANs. */
const bytesFromIP = (forge.util as unknown as { bytesFromIP(ip: string): string }).bytesFromIP;
const ALT_NAME_DNS = 2;
const ALT_NAME_URI = 6;
const ALT_NAME_IP = 7;

type SubjectAttribute = { shortName: 'CN' | 'O'; value: string };
type AltName = { type: typeof ALT_NAME_DNS | typeof ALT_NAME_URI; value: string } | { type: typeof ALT_NAME_IP; ip: string };

/** Everything a leaf certificate asserts about its holder. */
interface LeafProfile {
  subject: SubjectAttribute[];
  altNames: AltName[];
  extKeyUsage: { serverAuth?: true; clientAuth: true };
}

export function createCA({ commonName = 'fedtunnel-ca', days = DEFAULT_DAYS.ca }: CAOptions = {}): CertKeyPair {
  requireSubjectName('CA common name', commonName);
  const { keyPem, publicKey, privateKey } = generateRsaKeyPair();
  const cert = newCertificate(publicKey, [{ shortName: 'CN', value: commonName }], daysToMs(days));
  // Self-signed: the issuer is the subject just built.
  cert.setIssuer(cert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(privateKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem };
}

export function issueServerCert(ca: CertKeyPair, options: ServerCertOptions): CertKeyPair {
  return issueLeafCert(ca, { kind: 'server', ...options });
}

export function issueAgentCert(ca: CertKeyPair, options: AgentCertOptions): CertKeyPair {
  return issueLeafCert(ca, { kind: 'agent', ...options });
}

export function issueClientCert(ca: CertKeyPair, options: ClientCertOptions): CertKeyPair {
  return issueLeafCert(ca, { kind: 'client', ...options });
}

export function issueLeafCert(ca: CertKeyPair, request: LeafRequest): CertKeyPair {
  const profile = leafProfile(request);
  const { caCert, caKey } = signer(ca);
  const { keyPem, publicKey } = generateRsaKeyPair();
  const cert = newCertificate(publicKey, profile.subject, daysToMs(request.days ?? DEFAULT_DAYS[request.kind]));
  signLeaf(cert, caCert, caKey, profile);
  return { certPem: forge.pki.certificateToPem(cert), keyPem };
}

/**
 * An agent certificate for a public key the agent generated (enrolment and renewal: the key never
 * leaves the member). The identity comes from the caller (a bootstrap token, or the certificate
 * being renewed), never from the request. `validityMs` may be short (seconds, in tests).
 */
export function signAgentCertificate(ca: CertKeyPair, publicKeyPem: string, identity: { cluster: string; tenant: string }, validityMs: number): string {
  const profile = leafProfile({ kind: 'agent', ...identity });
  const { caCert, caKey } = signer(ca);
  const cert = newCertificate(forge.pki.publicKeyFromPem(publicKeyPem), profile.subject, validityMs);
  signLeaf(cert, caCert, caKey, profile);
  return forge.pki.certificateToPem(cert);
}

function signer(ca: CertKeyPair): { caCert: forge.pki.Certificate; caKey: forge.pki.rsa.PrivateKey } {
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const caKey = forge.pki.privateKeyFromPem(ca.keyPem);
  if (!caKey.n.equals((caCert.publicKey as forge.pki.rsa.PublicKey).n)) {
    throw new Error('CA private key does not belong to the CA certificate');
  }
  return { caCert, caKey };
}

function signLeaf(cert: forge.pki.Certificate, caCert: forge.pki.Certificate, caKey: forge.pki.rsa.PrivateKey, profile: LeafProfile): void {
  cert.setIssuer(reencodableAttributes(caCert.subject.attributes));
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', ...profile.extKeyUsage },
    ...(profile.altNames.length > 0 ? [{ name: 'subjectAltName', altNames: profile.altNames }] : []),
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: subjectKeyIdentifierBytes(caCert) },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
}

/**
 * Whether an existing pair can stand in for a fresh issuance of `request`: key
 * and certificate belong together, the certificate was signed by `ca`, has not
 * expired, and names exactly the requested subject and SANs.
 */
export function leafCertSatisfies(ca: CertKeyPair, pair: CertKeyPair, request: LeafRequest): boolean {
  const expected = describeProfile(leafProfile(request));
  try {
    const caCert = new X509Certificate(ca.certPem);
    const cert = new X509Certificate(pair.certPem);
    return (
      cert.checkPrivateKey(createPrivateKey(pair.keyPem)) &&
      cert.checkIssued(caCert) &&
      cert.verify(caCert.publicKey) &&
      Date.parse(cert.validTo) > Date.now() &&
      describeCertificate(forge.pki.certificateFromPem(pair.certPem)) === expected
    );
  } catch {
    // Unparseable files are not reusable; the caller reissues them.
    return false;
  }
}

export function keyPairPaths(dir: string, baseName: string): KeyPairPaths {
  if (!/^[^./\\][^/\\]*$/.test(baseName)) {
    throw new InvalidNameError(`invalid file base name ${JSON.stringify(baseName)}`);
  }
  return { cert: path.join(dir, `${baseName}.crt`), key: path.join(dir, `${baseName}.key`) };
}

/**
 * Writes `<baseName>.crt` (0644) and `<baseName>.key` (0600). Each file is
 * written to a temporary name and renamed into place, so readers never see a
 * truncated file and a pre-existing file's looser mode is replaced as well.
 */
export function writeKeyPair(dir: string, baseName: string, pair: CertKeyPair): KeyPairPaths {
  const paths = keyPairPaths(dir, baseName);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileAtomically(paths.key, pair.keyPem, 0o600);
  writeFileAtomically(paths.cert, pair.certPem, 0o644);
  return paths;
}

export function readKeyPair(dir: string, baseName: string): CertKeyPair {
  const paths = keyPairPaths(dir, baseName);
  return { certPem: fs.readFileSync(paths.cert, 'utf8'), keyPem: fs.readFileSync(paths.key, 'utf8') };
}

function leafProfile(request: LeafRequest): LeafProfile {
  switch (request.kind) {
    case 'server': {
      requireSubjectName('server common name', request.commonName);
      for (const dnsName of request.dnsNames) {
        if (!isDnsName(dnsName)) throw new InvalidNameError(`invalid DNS name ${JSON.stringify(dnsName)}`);
      }
      for (const ip of request.ipAddresses) {
        if (isIP(ip) === 0) throw new InvalidNameError(`invalid IP address ${JSON.stringify(ip)}`);
      }
      return {
        subject: [{ shortName: 'CN', value: request.commonName }],
        altNames: [
          ...request.dnsNames.map((value) => ({ type: ALT_NAME_DNS, value }) as const),
          ...request.ipAddresses.map((ip) => ({ type: ALT_NAME_IP, ip }) as const),
        ],
        // clientAuth too, so the server can present the same certificate when it dials out.
        extKeyUsage: { serverAuth: true, clientAuth: true },
      };
    }
    case 'agent':
      return {
        subject: [
          { shortName: 'CN', value: AGENT_COMMON_NAME_PREFIX + request.cluster },
          { shortName: 'O', value: AGENT_ORGANIZATION },
        ],
        // agentUri validates both names.
        altNames: [{ type: ALT_NAME_URI, value: agentUri(request.tenant, request.cluster) }],
        extKeyUsage: { clientAuth: true },
      };
    case 'client': {
      const groups = request.groups ?? [];
      requireSubjectName('user name', request.user);
      groups.forEach((group) => requireSubjectName('group name', group));
      // Agent identities are reserved so a user certificate can never be mistaken for one downstream.
      if (request.user.startsWith(AGENT_COMMON_NAME_PREFIX) || groups.includes(AGENT_ORGANIZATION)) {
        throw new InvalidNameError(`user certificates may not use the reserved agent identity ${AGENT_ORGANIZATION}`);
      }
      return {
        subject: [
          { shortName: 'CN', value: request.user },
          ...groups.map((value) => ({ shortName: 'O', value }) as const),
        ],
        altNames: [],
        extKeyUsage: { clientAuth: true },
      };
    }
  }
}

function requireSubjectName(what: string, name: string): void {
  if (!isSubjectName(name)) {
    throw new InvalidNameError(`invalid ${what} ${JSON.stringify(name)}: must be 1-64 characters without control characters`);
  }
}

function generateRsaKeyPair(): { keyPem: string; publicKey: forge.pki.rsa.PublicKey; privateKey: forge.pki.rsa.PrivateKey } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return {
    keyPem: privateKey,
    publicKey: forge.pki.publicKeyFromPem(publicKey),
    privateKey: forge.pki.privateKeyFromPem(privateKey),
  };
}

function daysToMs(days: number): number {
  if (!Number.isInteger(days) || days < 1) throw new RangeError(`validity must be a positive number of days, got ${days}`);
  return days * DAY_MS;
}

function newCertificate(publicKey: forge.pki.rsa.PublicKey, subject: SubjectAttribute[], validityMs: number): forge.pki.Certificate {
  if (!Number.isInteger(validityMs) || validityMs < 1000) throw new RangeError(`validity must be at least 1 s, got ${validityMs} ms`);
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = randomSerialNumber();
  const now = Date.now();
  // Short-lived certificates are backdated by a tenth of their life at most, so that renewing at a
  // fraction of the validity still means a fraction of the time since issuance.
  cert.validity.notBefore = new Date(now - Math.min(CLOCK_SKEW_MS, Math.floor(validityMs / 10)));
  cert.validity.notAfter = new Date(now + validityMs);
  // UTF8String (RFC 5280) rather than forge's default PrintableString, which cannot hold e-mail style user names.
  cert.setSubject(subject.map((attribute) => ({ ...attribute, valueTagClass: UTF8_STRING })));
  return cert;
}

/**
 * 16 random bytes as a positive DER INTEGER. The top byte is forced into
 * 0x40-0x7f: forge writes the bytes verbatim, so a set high bit would make the
 * serial negative and a zero byte would be a non-minimal encoding that OpenSSL rejects.
 */
function randomSerialNumber(): string {
  const serial = randomBytes(16);
  serial[0] = (serial[0] & 0x3f) | 0x40;
  return serial.toString('hex');
}

/**
 * Forge keeps parsed UTF8String values as raw UTF-8 bytes but encodes values
 * it is given, so they must be decoded before reuse or the issuer name would
 * no longer match the CA's subject byte for byte.
 */
function reencodableAttributes(attributes: forge.pki.CertificateField[]): forge.pki.CertificateField[] {
  return attributes.map((attribute) =>
    attribute.valueTagClass === UTF8_STRING && typeof attribute.value === 'string'
      ? { ...attribute, value: forge.util.decodeUtf8(attribute.value) }
      : attribute,
  );
}

function subjectKeyIdentifierBytes(cert: forge.pki.Certificate): string {
  const extension = cert.getExtension('subjectKeyIdentifier') as { subjectKeyIdentifier?: string } | undefined;
  return extension?.subjectKeyIdentifier !== undefined
    ? forge.util.hexToBytes(extension.subjectKeyIdentifier)
    : cert.generateSubjectKeyIdentifier().getBytes();
}

/** Canonical text of a profile's subject and SANs, comparable with describeCertificate. */
function describeProfile(profile: LeafProfile): string {
  return describeNames(
    profile.subject.map(({ shortName, value }) => `${shortName}=${value}`),
    profile.altNames.map((altName) =>
      altName.type === ALT_NAME_IP ? `${ALT_NAME_IP}:${forge.util.bytesToHex(bytesFromIP(altName.ip))}` : `${altName.type}:${altName.value}`,
    ),
  );
}

function describeCertificate(cert: forge.pki.Certificate): string {
  const subjectAltName = cert.getExtension('subjectAltName') as { altNames: Array<{ type: number; value: string }> } | undefined;
  return describeNames(
    reencodableAttributes(cert.subject.attributes).map(({ shortName, value }) => `${shortName}=${String(value)}`),
    (subjectAltName?.altNames ?? []).map(({ type, value }) => `${type}:${type === ALT_NAME_IP ? forge.util.bytesToHex(value) : value}`),
  );
}

function describeNames(subject: string[], altNames: string[]): string {
  return JSON.stringify({ subject: [...subject].sort(), altNames: [...altNames].sort() });
}

/** Writes to a temporary name in the same directory and renames it into place, with exactly `mode`. */
export function writeFileAtomically(filePath: string, data: string, mode: number): void {
  const tempPath = path.join(path.dirname(filePath), `.${path.basename(filePath)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fd = fs.openSync(tempPath, 'wx', mode);
    try {
      fs.writeFileSync(fd, data);
      // The mode given to open is filtered through the umask; set it exactly.
      fs.fchmodSync(fd, mode);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tempPath, filePath);
  } catch (error) {
    fs.rmSync(tempPath, { force: true });
    throw error;
  }
}
