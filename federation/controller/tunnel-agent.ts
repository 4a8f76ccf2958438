// An https.Agent whose connections are tunnel streams: every request the member client makes
// (through @kubernetes/client-node and node-fetch) gets its socket from dial(cluster, host:port),
// then TLS to the member's API server runs end to end over that stream, verified against the
// KubeFedCluster's caBundle. Keep-alive pools the streams, so a request costs no new dial.
import { X509Certificate } from 'node:crypto';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { MemberConfig } from './member-config.js';
import { MemberError } from './member-errors.js';

function pemBlocks(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/** The peer's chain up to a trusted CA (caBundle, or the system roots) and its name, ignoring validity dates. */
export function verifyIgnoringDates(socket: tls.TLSSocket, c: MemberConfig): Error | undefined {
  const fail = (code: string, message: string): Error => Object.assign(new Error(message), { code });
  let peer: tls.DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  if (!peer?.raw) return fail('UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'the member sent no certificate');
  const chain: X509Certificate[] = [];
  const seen = new Set<string>();
  while (peer?.raw && !seen.has(peer.fingerprint256)) {
    seen.add(peer.fingerprint256);
    chain.push(new X509Certificate(peer.raw));
    peer = peer.issuerCertificate;
  }
  const roots = (c.ca ? pemBlocks(c.ca.toString()) : [...tls.rootCertificates]).map((pem) => new X509Certificate(pem));
  const issuedBy = (cert: X509Certificate, issuer: X509Certificate): boolean => cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
  let current = chain[0]!;
  for (let depth = 0; depth <= chain.length; depth++) {
    if (roots.some((root) => issuedBy(current, root) || current.fingerprint256 === root.fingerprint256)) {
      if (c.skipVerify.subjectName) return undefined;
      const host = c.servername ?? c.address.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
      return tls.checkServerIdentity(host, socket.getPeerCertificate()) ?? undefined;
    }
    const next = chain.find((x) => x !== current && x.ca && issuedBy(current, x));
    if (!next) break;
    current = next;
  }
  return fail('UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'the member certificate is not issued by caBundle');
}

export type ClusterDial = (cluster: string, address: string, options?: { timeoutMs?: number; requester?: string; signal?: AbortSignal }) => Promise<Duplex>;

/**
 * The request option that cancels the dial of the connection made for that request: a client
 * that goes away while its dial is pending frees the hub's pending-dial slot at once instead of
 * holding it until --dial-timeout. (Node strips a request's own `signal` before the Agent sees
 * the options; other keys reach createConnection.)
 */
export interface DialSignalOption {
  dialSignal?: AbortSignal;
}

/** Expiry errors that KubeFed's disabledTLSValidations: [ValidityPeriod] accepts. */
const VALIDITY_ERRORS = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);

/** The tunnel stream id (sid) under a TLS connection the agent made, so request logs can name it. */
const streamIds = new WeakMap<object, string>();

export function tunnelStreamIdOf(socket: object | null | undefined): string | undefined {
  return socket ? streamIds.get(socket) : undefined;
}

export interface TunnelAgentOptions {
  /** Connections at once (a request beyond them waits for one to free up). */
  maxSockets: number;
  /** Idle connections kept for reuse (default maxSockets). */
  maxFreeSockets?: number;
  dialTimeoutMs: number;
  /** Who dials, for the hub's logs and open-stream counts (default federation-controller). */
  requester?: string;
  /** Keep idle connections for reuse (default true). */
  keepAlive?: boolean;
}

export class TunnelAgent extends https.Agent {
  private readonly dialTimeoutMs: number;
  private readonly requester: string;

  constructor(
    private readonly config: MemberConfig,
    private readonly dial: ClusterDial,
    options: TunnelAgentOptions,
  ) {
    const keepAlive = options.keepAlive ?? true;
    super({ keepAlive, maxSockets: options.maxSockets, ...(keepAlive ? { maxFreeSockets: options.maxFreeSockets ?? options.maxSockets } : {}), scheduling: 'lifo' });
    this.dialTimeoutMs = options.dialTimeoutMs;
    this.requester = options.requester ?? 'federation-controller';
  }

  // Node's Agent accepts an asynchronous createConnection through its callback.
  override createConnection(options: https.RequestOptions & DialSignalOption, callback: (err: Error | null, socket?: Duplex) => void): undefined {
    dialMemberTls(this.config, this.dial, { dialTimeoutMs: this.dialTimeoutMs, requester: this.requester, alpn: ['http/1.1'], signal: options.dialSignal }).then(
      (socket) => callback(null, socket),
      (err: Error) => callback(err),
    );
    return undefined;
  }
}

/**
 * TLS to a member's API server over a tunnel stream from dial(), verified like the KubeFedCluster
 * asks (caBundle, disabledTLSValidations). Resolves as soon as the TLS socket exists (the handshake
 * runs on; a failure shows as its 'error'). Either end closing closes the other. A dial failure is
 * a MemberError('Unreachable') that keeps the DialError code as `dialCode`.
 */
export function dialMemberTls(c: MemberConfig, dial: ClusterDial, options: { dialTimeoutMs: number; requester: string; alpn: string[]; signal?: AbortSignal }): Promise<tls.TLSSocket> {
  const { signal } = options;
  return dial(c.cluster, c.address, { timeoutMs: options.dialTimeoutMs, requester: options.requester, ...(signal ? { signal } : {}) }).then(
    (stream) => {
      const { all, subjectName, validityPeriod } = c.skipVerify;
      const socket = tls.connect({
        socket: stream,
        ca: c.ca,
        cert: c.cert,
        key: c.key,
        servername: c.servername,
        ALPNProtocols: options.alpn,
        rejectUnauthorized: !(all || validityPeriod),
        checkServerIdentity: all || subjectName ? () => undefined : tls.checkServerIdentity,
      });
      if (validityPeriod && !all) {
        // OpenSSL stops at the first error, so an expired certificate tells nothing about the
        // rest: the chain and the name are checked here, without the dates.
        socket.once('secureConnect', () => {
          if (socket.authorized) return;
          const code = String(socket.authorizationError);
          const error = VALIDITY_ERRORS.has(code) ? verifyIgnoringDates(socket, c) : Object.assign(new Error(`certificate verification failed: ${code}`), { code });
          if (error) socket.destroy(error);
        });
      }
      // A tunnel stream is half-open capable, so the member closing an idle keep-alive connection
      // shows as 'end' only: without this the pool would hand out a dead socket.
      stream.once('end', () => setImmediate(() => socket.destroy()));
      stream.once('close', () => socket.destroy());
      // And the other way: a connection given up on (a client gone mid-watch) ends its stream at once.
      socket.once('close', () => stream.destroy());
      const sid = (stream as { sid?: unknown }).sid;
      if (typeof sid === 'string') streamIds.set(socket, sid);
      return socket;
    },
    (err: Error & { code?: string }) => {
      // Tagged so node-fetch's wrapper keeps the code the controller switches on.
      throw Object.assign(new MemberError('Unreachable', `tunnel to ${c.cluster} (${c.address}): ${err.message}`), { dialCode: err.code });
    },
  );
}
