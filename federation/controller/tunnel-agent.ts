// An https.Agent whose connections are tunnel streams: every request the member client makes
// (through @kubernetes/client-node and node-fetch) gets its socket from dial(cluster, host:port),
// then TLS to the member's API server runs end to end over that stream, verified against the
// KubeFedCluster's caBundle. Keep-alive pools the streams, so a request costs no new dial.
import https from 'node:https';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { MemberConfig } from './member-config.js';
import { MemberError } from './member-errors.js';

export type ClusterDial = (cluster: string, address: string, options?: { timeoutMs?: number; requester?: string }) => Promise<Duplex>;

/** Expiry errors that KubeFed's disabledTLSValidations: [ValidityPeriod] accepts. */
const VALIDITY_ERRORS = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);

export class TunnelAgent extends https.Agent {
  constructor(
    private readonly config: MemberConfig,
    private readonly dial: ClusterDial,
    options: { maxSockets: number; dialTimeoutMs: number },
  ) {
    super({ keepAlive: true, maxSockets: options.maxSockets, maxFreeSockets: options.maxSockets, scheduling: 'lifo' });
    this.dialTimeoutMs = options.dialTimeoutMs;
  }

  private readonly dialTimeoutMs: number;

  // Node's Agent accepts an asynchronous createConnection through its callback.
  override createConnection(_options: unknown, callback: (err: Error | null, socket?: Duplex) => void): undefined {
    const c = this.config;
    this.dial(c.cluster, c.address, { timeoutMs: this.dialTimeoutMs, requester: 'federation-controller' }).then(
      (stream) => {
        const { all, subjectName, validityPeriod } = c.skipVerify;
        const socket = tls.connect({
          socket: stream,
          ca: c.ca,
          cert: c.cert,
          key: c.key,
          servername: c.servername,
          ALPNProtocols: ['http/1.1'],
          rejectUnauthorized: !(all || validityPeriod),
          checkServerIdentity: all || subjectName ? () => undefined : tls.checkServerIdentity,
        });
        if (validityPeriod && !all) {
          // Verification is done here instead of by OpenSSL, accepting only expiry errors.
          socket.once('secureConnect', () => {
            const code = (socket.authorizationError as { code?: string } | null)?.code ?? (socket.authorizationError as unknown as string | null);
            if (!socket.authorized && !VALIDITY_ERRORS.has(String(code))) socket.destroy(Object.assign(new Error(`certificate verification failed: ${code}`), { code: String(code) }));
          });
        }
        // A tunnel stream is half-open capable, so the member closing an idle keep-alive connection
        // shows as 'end' only: without this the pool would hand out a dead socket.
        stream.once('end', () => setImmediate(() => socket.destroy()));
        stream.once('close', () => socket.destroy());
        callback(null, socket);
      },
      (err: Error & { code?: string }) => {
        // Tagged so node-fetch's wrapper keeps the code the controller switches on.
        callback(Object.assign(new MemberError('Unreachable', `tunnel to ${c.cluster} (${c.address}): ${err.message}`), { dialCode: err.code }));
      },
    );
    return undefined;
  }
}
