// Accepts agent links. One TLS port serves both carriers: ALPN "fedtunnel/1" is the raw TLS
// carrier, "http/1.1" leads to the WebSocket carrier (for networks that only let HTTPS out,
// possibly through a CONNECT proxy). Either way the cluster and tenant come from the verified
// client certificate, never from anything the agent says.
import http from 'node:http';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { ListenerGuard, type ListenerLimits } from '../common/listener-guard.js';
import { WebSocketServer, createWebSocketStream } from 'ws';
import { agentIdentityFromPeer, replicaIdentityFromPeer, type AgentIdentity } from '../certs/identity.js';
import { ALPN_PEER } from './replicas/peer-forwarding.js';
import { ALPN_TUNNEL, PROTOCOL_VERSION, WEBSOCKET_PATH } from '../wire/frames.js';
import { MuxSession } from '../wire/session.js';
import type { AgentLink, AgentRegistry, CarrierKind } from './registry.js';
import type { ServerMetrics } from './metrics.js';
import type { RevocationGuard } from './revocation.js';
import type { EnrolmentEndpoint } from './enrolment.js';

export interface AgentListenerOptions {
  tlsContext: tls.SecureContextOptions;
  windowBytes: number;
  keepaliveIntervalMs: number;
  keepaliveTimeoutMs: number;
  /** Handshake, header, idle and unauthenticated-connection limits of this listener. */
  limits: ListenerLimits;
  maxStreamsPerAgent: number;
  instance: string;
  revocation?: RevocationGuard;
  /** Enrolment and renewal (HTTP/1.1 on this port); absent: those paths are 404 like any other. */
  enrolment?: EnrolmentEndpoint;
  /** Called with each link once its HELLO is accepted (HA replicas tell the agent the replica set). */
  onRegistered?: (link: AgentLink) => void;
  /**
   * HA replicas: serves dials forwarded by peer replicas (ALPN fedtunnel-peer/1, replica server
   * certificates only). Absent: that ALPN is not offered.
   */
  peer?: (socket: tls.TLSSocket) => void;
}

/** A batch of frames is one WebSocket message; bound it well above the largest batch we send. */
const MAX_WEBSOCKET_MESSAGE = 64 * 1024 * 1024;

export class AgentListener {
  readonly server: tls.Server;
  private readonly http: http.Server;
  private readonly wss: WebSocketServer;
  private readonly guard: ListenerGuard;
  private readonly pendingHandshakes = new Set<MuxSession>();
  private nextLinkId = 1;

  constructor(
    private readonly agents: AgentRegistry,
    private readonly metrics: ServerMetrics,
    private readonly log: Logger,
    private readonly options: AgentListenerOptions,
  ) {
    // Client certificates are verified by the guard (rejectUnauthorized: false), so a refusal
    // carries its reason (expired, unknown CA, not an agent certificate) instead of a silent reset.
    this.server = tls.createServer({
      ...options.tlsContext,
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
      ALPNProtocols: options.peer ? [ALPN_TUNNEL, 'http/1.1', ALPN_PEER] : [ALPN_TUNNEL, 'http/1.1'],
    });
    this.guard = new ListenerGuard({
      listener: 'agent',
      limits: options.limits,
      registry: metrics.registry,
      log,
      // Optional only for HTTP without a certificate: an agent enrolling (the request handler
      // serves such connections the enrolment paths and nothing else). The raw carrier needs one.
      clientCertificate: 'optional',
      checkPeer: (socket) => {
        const peer = socket.getPeerCertificate();
        if (socket.alpnProtocol === ALPN_PEER) return peer && replicaIdentityFromPeer(peer) ? null : 'not_a_replica_certificate';
        if (!peer || Object.keys(peer).length === 0) return socket.alpnProtocol === ALPN_TUNNEL ? 'no_certificate' : null;
        // A valid certificate of our CA that is not an agent's (a user's client cert) must not be
        // able to serve traffic for any cluster.
        return agentIdentityFromPeer(peer) ? null : 'not_an_agent_certificate';
      },
      // Link attempts refused before a session exists (HELLO timeouts and version mismatches are counted below).
      onRefusal: (reason) => {
        if (reason !== 'hello_timeout' && reason !== 'version_mismatch') metrics.agentLinks.inc({ result: reason });
      },
    });
    this.server.on('secureConnection', this.onSecureConnection);
    this.guard.protect(this.server);
    this.http = http.createServer({ maxHeaderSize: 16 * 1024 }, (req, res) => {
      if (options.enrolment?.handles(req)) return options.enrolment.serve(req, res);
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`agents connect with a WebSocket upgrade on ${WEBSOCKET_PATH}\n`);
    });
    this.wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: MAX_WEBSOCKET_MESSAGE });
    this.http.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      const identity = agentIdentityFromPeer((req.socket as tls.TLSSocket).getPeerCertificate());
      if (req.url !== WEBSOCKET_PATH || !identity) {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        this.attach(createWebSocketStream(ws), true, identity, 'ws', req.socket as tls.TLSSocket);
      });
    });
    // The same guard: a WebSocket socket's header deadline starts when it is handed over.
    this.guard.protect(this.http);
  }

  /** Closes the listener and every link still in its handshake; registered links are the server's to drain. */
  close(): Promise<void> {
    for (const session of this.pendingHandshakes) session.destroy(new Error('server shutting down'));
    this.guard.closeUnauthenticated();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** Only sockets the guard let through (verified agent certificate) get here. */
  private readonly onSecureConnection = (socket: tls.TLSSocket): void => {
    if (socket.alpnProtocol === ALPN_PEER && this.options.peer) {
      // A verified replica certificate (checkPeer): the peer handler bounds the request line itself.
      this.guard.passed(socket);
      this.options.peer(socket);
      return;
    }
    const identity = agentIdentityFromPeer(socket.getPeerCertificate());
    if (identity && socket.alpnProtocol === ALPN_TUNNEL) {
      socket.setNoDelay(true);
      this.attach(socket, false, identity, 'tls', socket);
    } else {
      this.http.emit('connection', socket);
    }
  };

  private attach(carrier: Duplex, coalesceWrites: boolean, identity: AgentIdentity, kind: CarrierKind, socket: tls.TLSSocket): void {
    const { options } = this;
    const remoteAddress = socket.remoteAddress ?? '';
    const serial = socket.getPeerCertificate().serialNumber;
    // Counted in fedtunnel_agent_links_total{result="revoked"} by the guard's onRefusal.
    if (options.revocation?.refusesAgent(carrier, kind, serial, identity, (fields) => this.guard.refused('revoked', socket, fields))) return;
    const linkId = this.nextLinkId++;
    const log = this.log.child({ link: linkId, cluster: identity.cluster, tenant: identity.tenant, carrier: kind });
    const session = new MuxSession({
      role: 'server',
      carrier,
      coalesceWrites,
      window: options.windowBytes,
      keepaliveIntervalMs: options.keepaliveIntervalMs,
      keepaliveTimeoutMs: options.keepaliveTimeoutMs,
      maxStreams: options.maxStreamsPerAgent,
      instance: options.instance,
    });
    this.pendingHandshakes.add(session);
    options.revocation?.trackAgentLink(session, serial, identity);
    const helloTimeoutMs = options.limits.handshakeTimeoutMs;
    const handshakeTimer = setTimeout(() => {
      this.metrics.agentLinks.inc({ result: 'handshake_timeout' });
      this.guard.refused('hello_timeout', socket, { cluster: identity.cluster, limitMs: helloTimeoutMs });
      log.warn({ remote: remoteAddress }, 'agent sent no HELLO in time');
      session.destroy(new Error('handshake timeout'));
    }, helloTimeoutMs);
    let link: AgentLink | undefined;
    session.once('hello', (hello) => {
      clearTimeout(handshakeTimer);
      this.pendingHandshakes.delete(session);
      this.guard.passed(socket);
      if (hello.version !== PROTOCOL_VERSION) {
        this.metrics.agentLinks.inc({ result: 'version_mismatch' });
        this.guard.refused('version_mismatch', socket, { cluster: identity.cluster, version: hello.version });
        log.warn({ version: hello.version }, 'refused agent link: protocol version mismatch');
        session.goAway(`protocol version ${hello.version} not supported (want ${PROTOCOL_VERSION})`);
        session.end();
        return;
      }
      link = { linkId, identity, instance: hello.instance, carrier: kind, remoteAddress, connectedAt: new Date(), session };
      this.agents.add(link);
      this.metrics.agentLinks.inc({ result: 'accepted' });
      options.onRegistered?.(link);
      log.info({ instance: hello.instance, remote: remoteAddress, serial: serial?.toLowerCase() }, 'agent registered');
    });
    session.on('rtt', (ms) => this.metrics.linkRtt.observe({ cluster: identity.cluster }, ms / 1000));
    session.on('goaway', (reason) => log.info({ reason }, 'agent draining'));
    session.once('close', (error) => {
      clearTimeout(handshakeTimer);
      this.pendingHandshakes.delete(session);
      if (!link) return;
      this.agents.remove(link);
      log.info({ reason: error?.message ?? 'closed' }, 'agent unregistered');
    });
  }
}
