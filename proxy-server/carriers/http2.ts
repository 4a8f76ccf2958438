// The HTTP/2 carrier (ALPN h2): each POST /v1/tunnel request is one agent link, its request and
// response bodies the two directions of the mux. An agent connects directly (identity from its own
// certificate) or through a trusted HTTP/2 front proxy that forwards the agent certificate it
// verified (front-proxy.ts); a front proxy may carry several agents' links on one connection.
import http2 from 'node:http2';
import type { X509Certificate } from 'node:crypto';
import type tls from 'node:tls';
import type { Logger } from 'pino';
import { agentIdentityFromPeer, type AgentIdentity } from '../../certs/identity.js';
import type { ListenerGuard, ListenerLimits } from '../../common/listener-guard.js';
import type { RefusalReason } from '../../common/listener-refusals.js';
import { FORWARDED_AGENT_CERT_HEADER, HTTP2_SETTINGS, HTTP2_TUNNEL_CONTENT_TYPE, HTTP2_TUNNEL_METHOD, HTTP2_TUNNEL_PATH, HTTP2_WINDOW } from '../../wire/http2-carrier.js';
import type { AgentCarrier, AttachLink } from './carrier.js';
import { isFrontProxy, verifyForwardedAgent } from './front-proxy.js';

export interface Http2CarrierOptions {
  limits: ListenerLimits;
  /** CNs of the client certificates (of the hub's CA) that may forward agent certificates; empty: none. */
  frontProxies: ReadonlySet<string>;
  /** The hub's CA certificates, to verify forwarded agent certificates. */
  cas: readonly X509Certificate[];
}

/** One HTTP/2 connection on the agent port. */
interface Connection {
  socket: tls.TLSSocket;
  tunnels: number;
  /** Armed while no tunnel is open: header deadline before the first, idle timeout after. */
  timer: NodeJS.Timeout | undefined;
  everTunneled: boolean;
}

export class Http2Carrier implements AgentCarrier {
  readonly alpn = 'h2';
  private readonly server: http2.Http2Server;
  private readonly connections = new Map<http2.Http2Session, Connection>();
  /** The socket being handed to the HTTP/2 server ('session' fires synchronously inside accept()). */
  private accepting: tls.TLSSocket | undefined;
  private closing = false;

  constructor(
    private readonly attach: AttachLink,
    private readonly guard: ListenerGuard,
    private readonly log: Logger,
    private readonly options: Http2CarrierOptions,
  ) {
    this.server = http2.createServer({ settings: HTTP2_SETTINGS });
    this.server.on('session', this.onSession);
    this.server.on('stream', this.onStream);
  }

  accept(socket: tls.TLSSocket): void {
    socket.setNoDelay(true);
    this.accepting = socket;
    try {
      this.server.emit('connection', socket);
    } finally {
      this.accepting = undefined;
    }
  }

  /** Connections without an open tunnel close now, the others when their last tunnel closes. */
  close(): void {
    this.closing = true;
    for (const [session, conn] of this.connections) if (conn.tunnels === 0) session.destroy();
  }

  private readonly onSession = (session: http2.ServerHttp2Session): void => {
    const socket = this.accepting;
    if (!socket) return void session.destroy();
    const conn: Connection = { socket, tunnels: 0, timer: undefined, everTunneled: false };
    this.connections.set(session, conn);
    // Errors end the session; the tunnels on it see their streams close.
    session.on('error', (error) => this.log.debug({ err: error.message, remote: socket.remoteAddress }, 'HTTP/2 agent connection failed'));
    session.once('close', () => {
      clearTimeout(conn.timer);
      this.connections.delete(session);
    });
    session.setLocalWindowSize(HTTP2_WINDOW);
    this.armIdle(session, conn);
  };

  private armIdle(session: http2.Http2Session, conn: Connection): void {
    clearTimeout(conn.timer);
    if (this.closing) return void session.destroy();
    const { headerTimeoutMs, idleTimeoutMs } = this.options.limits;
    conn.timer = conn.everTunneled
      ? setTimeout(() => session.close(), idleTimeoutMs)
      : setTimeout(() => this.guard.refuse(conn.socket, 'header_timeout', { limitMs: headerTimeoutMs, carrier: 'http2' }), headerTimeoutMs);
  }

  private readonly onStream = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void => {
    const session = stream.session;
    const conn = session && this.connections.get(session);
    stream.on('error', () => undefined);
    if (!session || !conn) return void stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    if (headers[':method'] !== HTTP2_TUNNEL_METHOD || headers[':path'] !== HTTP2_TUNNEL_PATH) {
      return answer(stream, 404, `agents connect with ${HTTP2_TUNNEL_METHOD} ${HTTP2_TUNNEL_PATH}\n`);
    }
    const who = this.identify(conn.socket, headers);
    if ('refusal' in who) {
      this.guard.refused(who.refusal, conn.socket, { carrier: 'http2', frontProxy: true, reason: who.message });
      return answer(stream, 403, `${who.message}\n`);
    }
    stream.respond({ ':status': 200, 'content-type': HTTP2_TUNNEL_CONTENT_TYPE });
    clearTimeout(conn.timer);
    conn.tunnels++;
    conn.everTunneled = true;
    stream.once('close', () => {
      if (--conn.tunnels === 0 && !session.destroyed) this.armIdle(session, conn);
    });
    this.attach({ stream, coalesceWrites: false, kind: 'http2', identity: who.identity, serial: who.serial, socket: conn.socket, remoteAddress: conn.socket.remoteAddress ?? '' });
  };

  /** The agent's own certificate wins; a front proxy's forwarded one counts only from a front proxy. */
  private identify(socket: tls.TLSSocket, headers: http2.IncomingHttpHeaders): { identity: AgentIdentity; serial: string | undefined } | { refusal: RefusalReason; message: string } {
    const peer = socket.getPeerCertificate();
    const own = agentIdentityFromPeer(peer);
    if (own) return { identity: own, serial: peer.serialNumber };
    if (!isFrontProxy(peer, this.options.frontProxies)) return { refusal: 'not_an_agent_certificate', message: 'not an agent certificate' };
    return verifyForwardedAgent(headers[FORWARDED_AGENT_CERT_HEADER], this.options.cas);
  }
}

function answer(stream: http2.ServerHttp2Stream, status: number, body: string): void {
  if (stream.destroyed || stream.headersSent) return;
  stream.respond({ ':status': status, 'content-type': 'text/plain' });
  stream.end(body);
}
