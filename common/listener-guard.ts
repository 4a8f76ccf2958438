// Bounded time and resources on every listener. One guard per listener (agent TLS, CONNECT,
// admin, federation API server, agent health…) gates its server's connection events, so a new
// listener gets the same limits by calling protect() and can't forget one of them:
//
// - a TLS handshake deadline: an absolute per-socket timer from accept to a verified handshake
//   (Node's `handshakeTimeout` is an idle timer that a client dripping one byte at a time resets);
// - a header deadline: the request head must be complete this long after the handshake (or the
//   accept, without TLS), enforced by its own per-socket timer — Node's headersTimeout is only
//   checked every 30 s, and never for servers that don't listen themselves (the agent listener
//   hands its WebSocket sockets over with emit('connection')). A partial request gets 408;
//   oversized headers 431; garbage 400;
// - an idle deadline between keep-alive requests. Nothing runs while a response is being written
//   (watches), nor after CONNECT or an upgrade (tunnels, WebSocket agent links: their liveness is
//   the tunnel keepalive);
// - a cap on connections not yet past handshake + request head (or the agent's HELLO), per
//   listener and per source address (not for Unix sockets, which have no address);
// - client certificates verified here, so the reason of a refusal (expired, unknown CA, …) is
//   logged at warn and counted, instead of a silent reset.
import http from 'node:http';
import type http2 from 'node:http2';
import https from 'node:https';
import type net from 'node:net';
import tls from 'node:tls';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from './log.js';
import { perRegistry } from './metrics.js';
import { httpClientErrorRefusal, refusalResponse, tlsErrorReason, verifyErrorReason, type RefusalReason } from './listener-refusals.js';

export type { RefusalReason } from './listener-refusals.js';

export interface ListenerLimits {
  /** TCP accept → verified TLS handshake. */
  handshakeTimeoutMs: number;
  /** Handshake (or accept) → complete request head; also for each later request on a keep-alive connection. */
  headerTimeoutMs: number;
  /** A keep-alive connection with no request in flight is closed after this. */
  idleTimeoutMs: number;
  /** Connections not yet past handshake and request head / HELLO, on this listener. */
  maxUnauthenticated: number;
  /** The same, from one source address. */
  maxUnauthenticatedPerAddress: number;
}

export const DEFAULT_LISTENER_LIMITS: ListenerLimits = {
  handshakeTimeoutMs: 10_000,
  headerTimeoutMs: 10_000,
  idleTimeoutMs: 60_000,
  maxUnauthenticated: 1000,
  maxUnauthenticatedPerAddress: 100,
};

/** The listener metrics of one registry (several listeners of a process share them). */
export class ListenerMetrics {
  readonly refusals: Counter<'listener' | 'reason'>;
  readonly unauthenticated: Gauge<'listener'>;

  private constructor(registry: Registry) {
    const registers = [registry];
    this.refusals = new Counter({
      name: 'fedtunnel_listener_refusals_total',
      help: 'Connections a listener refused or closed before they were authenticated, by reason',
      labelNames: ['listener', 'reason'],
      registers,
    });
    this.unauthenticated = new Gauge({
      name: 'fedtunnel_listener_unauthenticated_connections',
      help: 'Open connections not yet past the TLS handshake and request head (or HELLO), by listener',
      labelNames: ['listener'],
      registers,
    });
  }

  static readonly of = perRegistry((registry) => new ListenerMetrics(registry));
}

export interface ListenerGuardOptions {
  /** The `listener` label and log field: agent, connect_tls, connect_uds, admin, federation, apiserver, health. */
  listener: string;
  limits: ListenerLimits;
  registry: Registry;
  log: Logger;
  /**
   * TLS listeners that request a client certificate verify it here (create the server with
   * requestCert: true, rejectUnauthorized: false): 'required' refuses a handshake without one,
   * 'optional' lets it through (bearer tokens). A presented certificate that fails verification is
   * refused either way, with the reason.
   */
  clientCertificate?: 'required' | 'optional';
  /** After a verified handshake: the reason to refuse a peer this listener does not serve (a user certificate on the agent listener). */
  checkPeer?: (socket: tls.TLSSocket) => RefusalReason | null;
  /** Told of every HTTP status the guard answers itself (frontends count their answers). */
  onAnswer?: (status: number) => void;
  /** Told of every refusal (the agent listener also counts them as link attempts). */
  onRefusal?: (reason: RefusalReason) => void;
}

type Phase = 'handshake' | 'headers' | 'busy' | 'idle' | 'done';

/** One accepted connection; the raw TCP socket and its TLSSocket share it. */
interface Connection {
  socket: net.Socket;
  address: string | undefined;
  phase: Phase;
  timer: NodeJS.Timeout | undefined;
  unauthenticated: boolean;
  refused: boolean;
  /** Requests whose response is not finished. */
  inFlight: number;
  /** bytesRead of the HTTP socket when the current header/idle phase began. */
  mark: number;
  /** The socket HTTP runs on (the TLSSocket on TLS listeners). */
  httpSocket: net.Socket | undefined;
  idleSince: number;
}

/** Log lines per reason and window: a flood is counted in full but logged in samples. */
const LOG_BURST = 20;
const LOG_WINDOW_MS = 10_000;

export class ListenerGuard {
  private readonly metrics: ListenerMetrics;
  private readonly connections = new WeakMap<object, Connection>();
  private readonly open = new Set<Connection>();
  private readonly perAddress = new Map<string, number>();
  private unauthenticated = 0;
  private readonly logWindows = new Map<RefusalReason, { start: number; logged: number; suppressed: number }>();

  constructor(private readonly options: ListenerGuardOptions) {
    this.metrics = ListenerMetrics.of(options.registry);
    this.metrics.unauthenticated.set({ listener: options.listener }, 0);
  }

  get limits(): ListenerLimits {
    return this.options.limits;
  }

  /** Connections not yet authenticated, now. */
  get unauthenticatedCount(): number {
    return this.unauthenticated;
  }

  /**
   * Puts the server's connection events behind the guard. Call it once the server's own
   * 'secureConnection', 'connect' and 'upgrade' listeners are installed: those present now are
   * the ones a refused socket never reaches.
   */
  protect(server: net.Server): void {
    const isTls = server instanceof tls.Server;
    const isHttp = server instanceof http.Server || server instanceof https.Server;
    if (isTls) {
      gate(server, 'connection', (raw: net.Socket) => this.accept(raw, 'handshake'));
      gate(server, 'secureConnection', (socket: tls.TLSSocket) => this.secured(socket, isHttp));
      server.on('tlsClientError', (error: NodeJS.ErrnoException, socket: tls.TLSSocket) => this.tlsFailed(error, socket));
    }
    if (isHttp) this.protectHttp(server as http.Server, isTls);
  }

  /** The connection is past its HELLO (agent links on the raw TLS carrier): it no longer counts as unauthenticated. */
  passed(socket: net.Socket): void {
    const conn = this.connections.get(socket);
    if (conn) this.authenticate(conn);
  }

  /** Counts and logs a refusal at warn without closing (the caller answers, e.g. 403); once per connection. */
  refused(reason: RefusalReason, socket: net.Socket | undefined, fields: Record<string, unknown> = {}): void {
    const conn = socket && this.connections.get(socket);
    if (conn) {
      if (conn.refused) return;
      conn.refused = true;
    }
    this.count(reason);
    this.logRefusal(reason, { remote: socket?.remoteAddress, ...fields });
  }

  /** Refuses and closes a connection. */
  refuse(socket: net.Socket, reason: RefusalReason, fields: Record<string, unknown> = {}): void {
    this.refused(reason, socket, fields);
    socket.destroy();
  }

  /**
   * On shutdown: destroys every connection not yet authenticated (those in their TLS handshake are
   * not the HTTP server's to close, and would hold server.close() up to the handshake deadline).
   */
  closeUnauthenticated(): void {
    for (const conn of this.open) if (conn.unauthenticated) conn.socket.destroy();
  }

  private accept(raw: net.Socket, phase: Phase): boolean {
    const { limits } = this.options;
    const address = raw.remoteAddress;
    if (this.unauthenticated >= limits.maxUnauthenticated) {
      this.refuseAtAccept(raw, 'too_many_unauthenticated');
      return false;
    }
    // A Unix socket has no address: every client would share one bucket.
    if (address !== undefined && (this.perAddress.get(address) ?? 0) >= limits.maxUnauthenticatedPerAddress) {
      this.refuseAtAccept(raw, 'too_many_unauthenticated_per_address');
      return false;
    }
    const conn: Connection = { socket: raw, address, phase, timer: undefined, unauthenticated: true, refused: false, inFlight: 0, mark: 0, httpSocket: undefined, idleSince: 0 };
    this.connections.set(raw, conn);
    this.open.add(conn);
    this.unauthenticated++;
    if (address !== undefined) this.perAddress.set(address, (this.perAddress.get(address) ?? 0) + 1);
    this.metrics.unauthenticated.set({ listener: this.options.listener }, this.unauthenticated);
    raw.on('close', () => this.forget(conn));
    if (phase === 'handshake') this.arm(conn, limits.handshakeTimeoutMs, () => this.refuse(raw, 'handshake_timeout', { limitMs: limits.handshakeTimeoutMs }));
    else this.startHeaders(conn, raw);
    return true;
  }

  private refuseAtAccept(raw: net.Socket, reason: RefusalReason): void {
    this.count(reason);
    this.logRefusal(reason, { remote: raw.remoteAddress, unauthenticated: this.unauthenticated });
    raw.destroy();
  }

  private secured(socket: tls.TLSSocket, isHttp: boolean): boolean {
    const conn = this.connectionOf(socket);
    if (!conn) return !socket.destroyed;
    this.disarm(conn);
    this.connections.set(socket, conn);
    const reason = this.peerRefusal(socket);
    if (reason) {
      this.refuse(socket, reason, peerFields(socket));
      return false;
    }
    conn.phase = 'headers';
    // An h2 connection (http2-listener.ts) has no HTTP/1.1 head to time: its first stream must
    // open within the header deadline (http2Session()), or it is closed without an answer.
    if (isHttp && socket.alpnProtocol === 'h2') this.arm(conn, this.options.limits.headerTimeoutMs, () => this.refuse(socket, 'header_timeout', { limitMs: this.options.limits.headerTimeoutMs, http2: true }));
    else if (isHttp) this.startHeaders(conn, socket);
    return true;
  }

  /**
   * An HTTP/2 connection handed to its session (http2-listener.ts): its first stream authenticates
   * it (as a first request head does); while any stream is open nothing runs (watches hold theirs
   * for hours); with none open, the idle deadline closes the session with GOAWAY.
   */
  http2Session(socket: tls.TLSSocket, session: http2.ServerHttp2Session): void {
    const conn = this.connections.get(socket);
    if (!conn) return;
    let open = 0;
    session.on('stream', (stream: http2.ServerHttp2Stream) => {
      this.disarm(conn);
      this.authenticate(conn);
      conn.phase = 'busy';
      open++;
      stream.once('close', () => {
        if (--open > 0 || session.closed || session.destroyed) return;
        conn.phase = 'idle';
        this.arm(conn, this.options.limits.idleTimeoutMs, () => {
          this.options.log.debug({ listener: this.options.listener, remote: socket.remoteAddress }, 'idle h2 connection closed');
          session.close();
        });
      });
    });
    session.once('close', () => this.disarm(conn));
  }

  private peerRefusal(socket: tls.TLSSocket): RefusalReason | null {
    const mode = this.options.clientCertificate;
    if (mode) {
      const presented = Object.keys(socket.getPeerCertificate() ?? {}).length > 0;
      if (!presented) {
        if (mode === 'required') return 'no_certificate';
      } else if (!socket.authorized) {
        return verifyErrorReason(socket.authorizationError);
      }
    }
    return this.options.checkPeer?.(socket) ?? null;
  }

  private tlsFailed(error: NodeJS.ErrnoException, socket: tls.TLSSocket): void {
    const conn = this.connectionOf(socket);
    const reason = tlsErrorReason(error);
    if (reason === null || conn?.refused) {
      this.options.log.debug({ listener: this.options.listener, remote: socket.remoteAddress, code: error.code }, 'TLS handshake abandoned by the client');
    } else {
      this.refused(reason, conn?.socket ?? socket, { code: error.code });
    }
    socket.destroy();
  }

  private protectHttp(server: http.Server, isTls: boolean): void {
    const { limits } = this.options;
    // Node's own checks stay as a fallback; the guard's timers fire first.
    server.headersTimeout = limits.headerTimeoutMs;
    if (server.requestTimeout > 0 && server.requestTimeout < limits.headerTimeoutMs) server.requestTimeout = limits.headerTimeoutMs;
    server.keepAliveTimeout = limits.idleTimeoutMs;
    if (!isTls) {
      // A plain listener, or TLS sockets handed over with emit('connection') (agent listener).
      gate(server, 'connection', (socket: net.Socket) => {
        const conn = this.connections.get(socket);
        if (!conn) return this.accept(socket, 'headers');
        this.startHeaders(conn, socket);
        return true;
      });
    }
    server.prependListener('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      const conn = this.connections.get(req.socket);
      if (!conn) return;
      this.disarm(conn);
      this.authenticate(conn);
      conn.phase = 'busy';
      conn.inFlight++;
      // A response emits 'close' once, after 'finish' or when its connection goes first. One
      // on() listener, not once() for each: a watch's response keeps them for hours.
      res.on('close', () => {
        conn.inFlight--;
        if (conn.inFlight === 0 && conn.phase === 'busy' && !req.socket.destroyed) this.startIdle(conn, req.socket);
      });
    });
    const handedOver = (req: http.IncomingMessage): boolean => {
      const conn = this.connections.get(req.socket);
      if (conn) {
        this.disarm(conn);
        this.authenticate(conn);
        conn.phase = 'done';
      }
      return true;
    };
    // Only where the server has listeners: adding one would change how Node treats CONNECT/Upgrade.
    if (server.listenerCount('connect') > 0) gate(server, 'connect', handedOver);
    if (server.listenerCount('upgrade') > 0) gate(server, 'upgrade', handedOver);
    server.removeAllListeners('clientError');
    server.on('clientError', (error: NodeJS.ErrnoException, socket: net.Socket) => {
      const refusal = httpClientErrorRefusal(error);
      if (!refusal) {
        socket.destroy();
        return;
      }
      const conn = this.connections.get(socket);
      if (conn) this.disarm(conn);
      this.answer(socket, refusal.status, refusal.reason, { code: error.code });
    });
  }

  private startHeaders(conn: Connection, socket: net.Socket): void {
    conn.httpSocket = socket;
    conn.phase = 'headers';
    conn.mark = socket.bytesRead;
    const limit = this.options.limits.headerTimeoutMs;
    this.arm(conn, limit, () => this.headerTimeout(conn, socket));
  }

  private headerTimeout(conn: Connection, socket: net.Socket): void {
    // A client that sent part of a request gets a status; one that sent nothing is just closed.
    if (socket.bytesRead > conn.mark) this.answer(socket, 408, 'header_timeout', { limitMs: this.options.limits.headerTimeoutMs });
    else this.refuse(socket, 'header_timeout', { limitMs: this.options.limits.headerTimeoutMs, sentNothing: true });
  }

  /**
   * Between keep-alive requests. The parser does not tell when the next request starts, so the
   * idle timer looks at bytesRead every header-timeout period: a request head that began then
   * gets one more header period (a slow one is cut within 2× the header timeout), an idle
   * connection is closed at the idle timeout.
   */
  private startIdle(conn: Connection, socket: net.Socket): void {
    const { headerTimeoutMs, idleTimeoutMs } = this.options.limits;
    conn.phase = 'idle';
    conn.mark = socket.bytesRead;
    conn.idleSince = Date.now();
    const tick = (): void => {
      if (socket.bytesRead > conn.mark) {
        this.startHeaders(conn, socket);
        conn.mark = -1; // bytes already arrived: a timeout here is a partial request (408)
        return;
      }
      const left = conn.idleSince + idleTimeoutMs - Date.now();
      if (left <= 0) {
        this.options.log.debug({ listener: this.options.listener, remote: socket.remoteAddress }, 'idle keep-alive connection closed');
        socket.destroy();
        return;
      }
      this.arm(conn, Math.min(headerTimeoutMs, left), tick);
    };
    this.arm(conn, Math.min(headerTimeoutMs, idleTimeoutMs), tick);
  }

  private answer(socket: net.Socket, status: number, reason: RefusalReason, fields: Record<string, unknown>): void {
    this.refused(reason, socket, { status, ...fields });
    this.options.onAnswer?.(status);
    if (socket.writable) {
      socket.write(refusalResponse(status, reason));
      socket.destroySoon();
    } else {
      socket.destroy();
    }
  }

  private connectionOf(socket: tls.TLSSocket): Connection | undefined {
    // The TLSSocket of a server-side connection wraps the accepted TCP socket (`_parent`).
    return this.connections.get(socket) ?? this.connections.get((socket as unknown as { _parent?: object })._parent ?? {});
  }

  private arm(conn: Connection, ms: number, fire: () => void): void {
    this.disarm(conn);
    conn.timer = setTimeout(() => {
      conn.timer = undefined;
      fire();
    }, ms);
  }

  private disarm(conn: Connection): void {
    if (conn.timer) clearTimeout(conn.timer);
    conn.timer = undefined;
  }

  private authenticate(conn: Connection): void {
    if (!conn.unauthenticated) return;
    conn.unauthenticated = false;
    this.unauthenticated--;
    if (conn.address !== undefined) {
      const n = (this.perAddress.get(conn.address) ?? 1) - 1;
      if (n <= 0) this.perAddress.delete(conn.address);
      else this.perAddress.set(conn.address, n);
    }
    this.metrics.unauthenticated.set({ listener: this.options.listener }, this.unauthenticated);
  }

  private forget(conn: Connection): void {
    this.disarm(conn);
    this.authenticate(conn);
    conn.phase = 'done';
    this.open.delete(conn);
  }

  private count(reason: RefusalReason): void {
    this.metrics.refusals.inc({ listener: this.options.listener, reason });
    this.options.onRefusal?.(reason);
  }

  private logRefusal(reason: RefusalReason, fields: Record<string, unknown>): void {
    const now = Date.now();
    let window = this.logWindows.get(reason);
    if (!window || now - window.start >= LOG_WINDOW_MS) {
      const suppressed = window?.suppressed ?? 0;
      window = { start: now, logged: 0, suppressed: 0 };
      this.logWindows.set(reason, window);
      if (suppressed > 0) fields = { ...fields, suppressedBefore: suppressed };
    }
    if (window.logged >= LOG_BURST) {
      window.suppressed++;
      return;
    }
    window.logged++;
    this.options.log.warn({ listener: this.options.listener, reason, ...fields }, 'connection refused');
  }
}

/**
 * Moves an event's current listeners behind `admit`: they run only for sockets it lets through.
 * Listeners Node installed in the constructor (TLS wrapping, the HTTP parser) are among them.
 */
function gate(server: net.Server, event: string, admit: (...args: any[]) => boolean): void { // eslint-disable-line @typescript-eslint/no-explicit-any
  const inner = server.listeners(event) as Array<(...args: unknown[]) => void>;
  server.removeAllListeners(event);
  server.on(event, (...args: unknown[]) => {
    if (!admit(...args)) return;
    for (const listener of inner) listener.apply(server, args);
  });
}

/** What identifies a refused client certificate in a log line: subject CN and serial, never the certificate itself. */
function peerFields(socket: tls.TLSSocket): Record<string, unknown> {
  const peer = socket.getPeerCertificate();
  if (!peer || Object.keys(peer).length === 0) return { verifyError: socket.authorizationError ?? undefined };
  const subject = peer.subject as unknown as Record<string, unknown> | undefined;
  return { verifyError: socket.authorizationError ?? undefined, subject: subject?.CN, serial: peer.serialNumber, validTo: peer.valid_to };
}
