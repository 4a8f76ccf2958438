// Enrolment and renewal endpoints on the agent listener (HTTP/1.1 over its TLS port):
//   GET  /fedtunnel/v1/ca      the CA certificate; the agent checks it against its pinned fingerprint
//   POST /fedtunnel/v1/enrol   Authorization: Bearer <bootstrap token>, body: PEM CSR, no client certificate
//   POST /fedtunnel/v1/renew   body: PEM CSR, authenticated by the agent's current certificate (mTLS)
// The hub decides every name in the certificate (from the token, or from the certificate being
// renewed); the request contributes only its public key. Answers: the PEM certificate followed by
// the CA, or a Kubernetes Status with a stable reason code.
import { X509Certificate } from 'node:crypto';
import type http from 'node:http';
import type tls from 'node:tls';
import type { Logger } from 'pino';
import { agentIdentityFromPeer, type AgentIdentity } from '../certs/identity.js';
import { EnrolmentError, MAX_CSR_BYTES, bearerToken, csrPublicKey, publicKeySha256 } from '../certs/enrolment.js';
import { signAgentCertificate, type CertKeyPair } from '../certs/pki.js';
import type { BootstrapTokenStore } from './bootstrap-tokens.js';
import type { ServerMetrics } from './metrics.js';
import type { RevocationGuard } from './revocation.js';

export const CA_PATH = '/fedtunnel/v1/ca';
export const ENROL_PATH = '/fedtunnel/v1/enrol';
export const RENEW_PATH = '/fedtunnel/v1/renew';

export interface EnrolmentOptions {
  /** The CA and its key (--ca, --ca-key); null: enrolment and renewal are off (404). */
  ca: CertKeyPair | null;
  /** --bootstrap-tokens; null: enrolment is off (renewal still works with the CA key). */
  tokens: BootstrapTokenStore | null;
  agentCertTtlMs: number;
  /** The request body must arrive within this (the listener's header deadline). */
  bodyTimeoutMs: number;
  revocation?: RevocationGuard;
}

export class EnrolmentEndpoint {
  constructor(
    private readonly options: EnrolmentOptions,
    private readonly metrics: ServerMetrics,
    private readonly log: Logger,
  ) {}

  /** Whether the path is one of ours (then the request is answered here). */
  handles(req: http.IncomingMessage): boolean {
    const path = (req.url ?? '').split('?')[0];
    return path === CA_PATH || path === ENROL_PATH || path === RENEW_PATH;
  }

  /** Only requests without a client certificate may use these paths, besides agents: nothing else is served to them. */
  serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? '').split('?')[0];
    const kind = path === ENROL_PATH ? 'enrol' : path === RENEW_PATH ? 'renew' : 'ca';
    this.answer(kind, req).then(
      (body) => {
        res.writeHead(200, { 'content-type': 'application/x-pem-file', 'cache-control': 'no-store' }).end(body);
      },
      (error: unknown) => {
        const refusal = error instanceof EnrolmentError ? error : new EnrolmentError('INTERNAL', (error as Error).message);
        if (kind !== 'ca') this.metrics.enrolments.inc({ result: refusal.code.toLowerCase() });
        const fields = { kind, code: refusal.code, remote: req.socket.remoteAddress, err: refusal.message };
        if (refusal.httpStatus >= 500) this.log.error(fields, 'enrolment failed');
        else this.log.warn(fields, 'enrolment refused');
        if (res.headersSent || res.destroyed) return;
        res.writeHead(refusal.httpStatus, { 'content-type': 'application/json', connection: 'close', 'cache-control': 'no-store' }).end(statusBody(refusal));
      },
    );
  }

  private async answer(kind: 'ca' | 'enrol' | 'renew', req: http.IncomingMessage): Promise<string> {
    const { ca, tokens } = this.options;
    if (!ca || (kind === 'enrol' && !tokens)) {
      throw new EnrolmentError('ENROLMENT_DISABLED', ca ? 'enrolment is off on this hub (no --bootstrap-tokens)' : 'enrolment and renewal are off on this hub (no --ca-key)');
    }
    const expected = kind === 'ca' ? 'GET' : 'POST';
    if (req.method !== expected) throw new EnrolmentError('METHOD_NOT_ALLOWED', `${req.url} takes ${expected}`);
    if (kind === 'ca') return ca.certPem;

    if (kind === 'enrol') {
      // The token's form is checked before the body is read; it is consumed only once the request is good.
      const token = bearerToken(req.headers.authorization);
      const publicKey = csrPublicKey(await readBody(req, this.options.bodyTimeoutMs));
      // Marked used (in the shared table on replicas) before anything is signed.
      const record = await tokens!.consume(token, publicKeySha256(publicKey));
      const certPem = this.issue(publicKey, record);
      this.done('enrolled', { tokenId: record.id }, record, certPem);
      return certPem + ca.certPem;
    }

    const socket = req.socket as tls.TLSSocket;
    const peer = socket.getPeerCertificate();
    const identity = peer && Object.keys(peer).length > 0 && socket.authorized ? agentIdentityFromPeer(peer) : null;
    if (!identity) throw new EnrolmentError('NOT_AN_AGENT', 'renewal needs the current agent certificate as the client certificate');
    const serial = peer.serialNumber;
    if (this.options.revocation?.refuses('agent_renew', serial, { cluster: identity.cluster, tenant: identity.tenant })) {
      throw new EnrolmentError('CERTIFICATE_REVOKED', `agent certificate serial ${serial.toLowerCase()} is revoked; it cannot be renewed`);
    }
    const publicKey = csrPublicKey(await readBody(req, this.options.bodyTimeoutMs));
    const certPem = this.issue(publicKey, identity);
    this.done('renewed', { previousSerial: serial.toLowerCase() }, identity, certPem);
    return certPem + ca.certPem;
  }

  private issue(publicKey: string, identity: AgentIdentity): string {
    return signAgentCertificate(this.options.ca!, publicKey, { cluster: identity.cluster, tenant: identity.tenant }, this.options.agentCertTtlMs);
  }

  private done(result: 'enrolled' | 'renewed', fields: Record<string, string>, identity: AgentIdentity, certPem: string): void {
    const cert = new X509Certificate(certPem);
    this.metrics.enrolments.inc({ result });
    this.log.info({ ...fields, cluster: identity.cluster, tenant: identity.tenant, serial: cert.serialNumber.toLowerCase(), validTo: new Date(cert.validTo).toISOString() }, `agent ${result}`);
  }
}

/** The body as text, at most MAX_CSR_BYTES, within the deadline. */
function readBody(req: http.IncomingMessage, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (declared > MAX_CSR_BYTES) return reject(new EnrolmentError('BODY_TOO_LARGE', `request body of ${declared} bytes; at most ${MAX_CSR_BYTES}`));
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => fail(new EnrolmentError('BODY_TIMEOUT', `request body not complete within ${timeoutMs} ms`)), timeoutMs);
    const fail = (error: EnrolmentError): void => {
      clearTimeout(timer);
      req.removeAllListeners('data');
      req.resume();
      reject(error);
    };
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_CSR_BYTES) fail(new EnrolmentError('BODY_TOO_LARGE', `request body larger than ${MAX_CSR_BYTES} bytes`));
      else chunks.push(chunk);
    });
    req.once('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.once('error', (error) => fail(new EnrolmentError('INTERNAL', error.message)));
  });
}

function statusBody(error: EnrolmentError): string {
  const reason = { 400: 'BadRequest', 401: 'Unauthorized', 403: 'Forbidden', 404: 'NotFound', 405: 'MethodNotAllowed', 408: 'Timeout', 413: 'RequestEntityTooLarge', 503: 'ServiceUnavailable' }[error.httpStatus] ?? 'InternalError';
  return JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code: error.httpStatus, reason, message: error.message, details: { causes: [{ reason: error.code, message: error.message }] } });
}
