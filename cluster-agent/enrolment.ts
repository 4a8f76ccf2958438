// The agent's certificate directory (--cert-dir) and its two requests to the hub:
//   enrol: fetch the hub's CA over TLS, accept it only if its SHA-256 is the pinned --ca-fingerprint,
//          then, verifying the hub against that CA, send the bootstrap token and a CSR;
//   renew: with the current certificate (mTLS), send a CSR for a fresh key.
// Keys are generated here and never sent: a request carries the CSR only. Every file is written to
// a temporary name and renamed into place, mode 0600. A renewal writes the new key to agent.key.next
// first and renames it over agent.key once agent.crt matches it, so a crash between the two leaves
// a pair that loadCertificates() completes.
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { agentIdentityFromPeer, type AgentIdentity } from '../certs/identity.js';
import { certificateFingerprint, createCsr, parseToken, publicKeysMatch, renewalTime } from '../certs/enrolment.js';
import { writeFileAtomically } from '../certs/pki.js';
import { connectThroughProxy } from './connector.js';
import type { AgentOptions, EnrolmentOptions } from './options.js';

const CA_PATH = '/fedtunnel/v1/ca';
const ENROL_PATH = '/fedtunnel/v1/enrol';
const RENEW_PATH = '/fedtunnel/v1/renew';
const MAX_RESPONSE_BYTES = 64 * 1024;

/**
 * Enrolment or renewal did not work. `definitive`: retrying cannot help (refused token, wrong CA
 * fingerprint, bad answer); otherwise (hub unreachable, 5xx) the caller retries with backoff.
 */
export class EnrolmentFailure extends Error {
  override readonly name = 'EnrolmentFailure';

  constructor(
    readonly code: string,
    message: string,
    readonly definitive: boolean,
  ) {
    super(message);
  }
}

export interface CertificateInfo {
  serial: string;
  identity: AgentIdentity;
  notBefore: Date;
  notAfter: Date;
}

interface CertDirFiles {
  ca: string;
  cert: string;
  key: string;
  nextKey: string;
}

function certDirFiles(options: AgentOptions): CertDirFiles {
  return { ca: options.caFile, cert: options.certFile, key: options.keyFile, nextKey: `${options.keyFile}.next` };
}

function enrolmentOf(options: AgentOptions): EnrolmentOptions {
  if (!options.enrolment) throw new Error('not in --cert-dir mode');
  return options.enrolment;
}

/**
 * The usable certificate in --cert-dir, or null (none yet, expired, not of the pinned CA, or key
 * and certificate do not belong together). Completes a renewal interrupted after agent.crt was written.
 */
export function loadCertificates(options: AgentOptions, now = new Date()): CertificateInfo | null {
  const files = certDirFiles(options);
  const read = (file: string): string | null => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : null);
  const caPem = read(files.ca);
  const certPem = read(files.cert);
  if (caPem === null || certPem === null) return null;
  try {
    if (certificateFingerprint(caPem) !== enrolmentOf(options).caFingerprint) return null;
    const nextKeyPem = read(files.nextKey);
    if (nextKeyPem !== null && publicKeysMatch(certPem, nextKeyPem)) fs.renameSync(files.nextKey, files.key);
    const keyPem = read(files.key);
    if (keyPem === null || !publicKeysMatch(certPem, keyPem)) return null;
    const info = certificateInfo(certPem, caPem);
    return info.notAfter > now ? info : null;
  } catch {
    // Unreadable files are not usable; enrolment replaces them.
    return null;
  }
}

/** When the certificate in --cert-dir is due for renewal. */
export function renewalDue(options: AgentOptions, info: CertificateInfo): Date {
  return renewalTime(info.notBefore, info.notAfter, enrolmentOf(options).renewBefore);
}

/** Enrols with the bootstrap token; resolves once ca.crt, agent.crt and agent.key are in place. */
export async function enrol(options: AgentOptions, log: Logger): Promise<CertificateInfo> {
  const enrolment = enrolmentOf(options);
  const files = certDirFiles(options);
  if (!enrolment.tokenFile) {
    throw new EnrolmentFailure('NO_TOKEN', `no valid certificate in ${enrolment.certDir} and no --bootstrap-token-file to enrol with`, true);
  }
  let tokenText: string;
  try {
    tokenText = fs.readFileSync(enrolment.tokenFile, 'utf8');
  } catch (error) {
    throw new EnrolmentFailure('NO_TOKEN', `cannot read --bootstrap-token-file ${enrolment.tokenFile}: ${(error as NodeJS.ErrnoException).code}`, true);
  }
  let tokenId: string;
  try {
    tokenId = parseToken(tokenText).id;
  } catch (error) {
    throw new EnrolmentFailure('TOKEN_MALFORMED', `${enrolment.tokenFile}: ${(error as Error).message}`, true);
  }

  // 1. The hub's CA, trusted only through the pinned fingerprint (the connection itself is not verified yet).
  const caPem = (await request(options, { path: CA_PATH, method: 'GET', verify: null })).toString('utf8');
  let fingerprint: string;
  try {
    fingerprint = certificateFingerprint(caPem);
  } catch {
    throw new EnrolmentFailure('CA_INVALID', `the hub at ${options.serverName} sent no CA certificate on ${CA_PATH}`, true);
  }
  if (fingerprint !== enrolment.caFingerprint) {
    throw new EnrolmentFailure('CA_FINGERPRINT_MISMATCH', `the hub's CA is ${fingerprint}, not the pinned --ca-fingerprint ${enrolment.caFingerprint}: refusing this hub`, true);
  }

  // 2. The key, made here (kept if an earlier attempt made one), and the CSR over a verified connection.
  fs.mkdirSync(enrolment.certDir, { recursive: true, mode: 0o700 });
  const keyPem = fs.existsSync(files.key) ? fs.readFileSync(files.key, 'utf8') : writeNewKey(files.key);
  log.info({ tokenId, server: options.serverName, ca: fingerprint }, 'enrolling with bootstrap token');
  const answer = await request(options, {
    path: ENROL_PATH,
    method: 'POST',
    verify: { caPem },
    headers: { authorization: `Bearer ${tokenText.trim()}` },
    body: createCsr(keyPem),
  });
  const info = storeCertificate(files, answer, caPem, keyPem);
  writeFileAtomically(files.ca, caPem, 0o600);
  log.info({ cluster: info.identity.cluster, tenant: info.identity.tenant, serial: info.serial, validTo: info.notAfter.toISOString() }, 'enrolled');
  return info;
}

/** Renews with the current certificate; on success agent.crt and agent.key hold the new pair. */
export async function renew(options: AgentOptions, log: Logger): Promise<CertificateInfo> {
  const files = certDirFiles(options);
  const caPem = fs.readFileSync(files.ca, 'utf8');
  const current = { certPem: fs.readFileSync(files.cert, 'utf8'), keyPem: fs.readFileSync(files.key, 'utf8') };
  const keyPem = writeNewKey(files.nextKey);
  const answer = await request(options, { path: RENEW_PATH, method: 'POST', verify: { caPem, client: current }, body: createCsr(keyPem) });
  const info = storeCertificate(files, answer, caPem, keyPem);
  fs.renameSync(files.nextKey, files.key);
  log.info({ serial: info.serial, validTo: info.notAfter.toISOString() }, 'certificate renewed');
  return info;
}

/** Checks the hub's answer (our key, signed by the CA, an agent identity) and writes agent.crt. */
function storeCertificate(files: CertDirFiles, answer: Buffer, caPem: string, keyPem: string): CertificateInfo {
  const certPem = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----\n?/.exec(answer.toString('utf8'))?.[0];
  if (!certPem) throw new EnrolmentFailure('ANSWER_INVALID', 'the hub answered without a certificate', true);
  let info: CertificateInfo;
  try {
    info = certificateInfo(certPem, caPem);
  } catch (error) {
    throw new EnrolmentFailure('ANSWER_INVALID', `the hub's certificate is unusable: ${(error as Error).message}`, true);
  }
  if (!publicKeysMatch(certPem, keyPem)) throw new EnrolmentFailure('ANSWER_INVALID', 'the hub signed another key than ours', true);
  writeFileAtomically(files.cert, certPem, 0o600);
  return info;
}

function certificateInfo(certPem: string, caPem: string): CertificateInfo {
  const cert = new X509Certificate(certPem);
  const ca = new X509Certificate(caPem);
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) throw new Error('not signed by the pinned CA');
  const identity = agentIdentityFromPeer({ subjectaltname: cert.subjectAltName ?? '' } as tls.PeerCertificate);
  if (!identity) throw new Error('not an agent certificate');
  return { serial: cert.serialNumber.toLowerCase(), identity, notBefore: new Date(cert.validFrom), notAfter: new Date(cert.validTo) };
}

function writeNewKey(file: string): string {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  writeFileAtomically(file, privateKey, 0o600);
  return privateKey;
}

interface HubRequest {
  path: string;
  method: 'GET' | 'POST';
  /** null: the CA is not known yet (its fingerprint is checked instead); else the CA and our certificate, if any. */
  verify: { caPem: string; client?: { certPem: string; keyPem: string } } | null;
  headers?: Record<string, string>;
  body?: string;
}

/** One HTTPS request to the hub's agent listener (through --proxy if set); the body of a 200, or an EnrolmentFailure. */
async function request(options: AgentOptions, hub: HubRequest): Promise<Buffer> {
  const signal = AbortSignal.timeout(options.connectTimeoutMs);
  let proxied: net.Socket | undefined;
  try {
    proxied = options.proxy ? await connectThroughProxy(options.proxy, options.server, signal) : undefined;
  } catch (error) {
    throw new EnrolmentFailure('UNREACHABLE', `cannot reach the hub through ${options.proxy?.host}: ${(error as Error).message}`, false);
  }
  const tlsOptions: tls.ConnectionOptions = {
    servername: net.isIP(options.serverName) ? undefined : options.serverName,
    ALPNProtocols: ['http/1.1'],
    minVersion: 'TLSv1.2',
    ...(hub.verify
      ? {
          ca: hub.verify.caPem,
          checkServerIdentity: (_host: string, cert: tls.PeerCertificate) => tls.checkServerIdentity(options.serverName, cert),
          ...(hub.verify.client ? { cert: hub.verify.client.certPem, key: hub.verify.client.keyPem } : {}),
        }
      : { rejectUnauthorized: false }),
  };
  return new Promise<Buffer>((resolve, reject) => {
    const req = https.request(
      {
        host: options.server.host,
        port: options.server.port,
        path: hub.path,
        method: hub.method,
        headers: { ...hub.headers, ...(hub.body !== undefined ? { 'content-type': 'application/pkcs10', 'content-length': Buffer.byteLength(hub.body) } : {}) },
        agent: false,
        signal,
        ...tlsOptions,
        ...(proxied ? { createConnection: () => tls.connect({ ...tlsOptions, socket: proxied }) } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES) req.destroy(new EnrolmentFailure('ANSWER_INVALID', 'the hub answer is too large', true));
          else chunks.push(chunk);
        });
        res.once('end', () => {
          const body = Buffer.concat(chunks);
          if (res.statusCode === 200) return resolve(body);
          reject(refusal(res.statusCode ?? 0, body, hub.path));
        });
        res.once('error', reject);
      },
    );
    req.once('error', (error) => {
      if (error instanceof EnrolmentFailure) return reject(error);
      const code = (error as NodeJS.ErrnoException).code;
      // A hub whose certificate does not verify against the pinned CA is refused, not retried.
      const definitive = typeof code === 'string' && /CERT|SELF_SIGNED|ERR_TLS_CERT_ALTNAME/.test(code);
      reject(new EnrolmentFailure(definitive ? 'HUB_NOT_TRUSTED' : 'UNREACHABLE', `${hub.method} https://${options.serverName}:${options.server.port}${hub.path}: ${error.message}`, definitive));
    });
    req.end(hub.body);
  });
}

/** The hub's refusal: its Status reason code (TOKEN_USED, …) and message. 4xx are definitive, 5xx are retried. */
function refusal(status: number, body: Buffer, urlPath: string): EnrolmentFailure {
  let code = `HTTP_${status}`;
  let message = body.toString('utf8').slice(0, 500).trim();
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { message?: string; details?: { causes?: Array<{ reason?: string }> } };
    code = parsed.details?.causes?.[0]?.reason ?? code;
    message = parsed.message ?? message;
  } catch {
    // Not a Status (a proxy, an older hub): keep the text.
  }
  return new EnrolmentFailure(code, `the hub refused ${path.basename(urlPath)} (HTTP ${status} ${code}): ${message}`, status < 500);
}
