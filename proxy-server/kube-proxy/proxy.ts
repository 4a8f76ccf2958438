// The hub's Kubernetes API proxy: https://hub/clusters/<name>/<Kubernetes API path> on the CONNECT
// TLS listener (HTTP/1.1 or h2). Plain requests are streams of the cluster's HTTP/2 session
// (member-sessions.ts: one TLS-over-tunnel connection carries them all); a member that speaks only
// HTTP/1.1 gets them through http2-proxy's web() over a keep-alive pool of TLS-over-tunnel
// connections. Watches and logs -f stream unbuffered, with no hub timeout; a client that goes away
// resets its member stream (or destroys its member request) at once. Upgrades (exec,
// attach, port-forward, WebSocket or SPDY) take upgrade.ts's pipe. Every refusal is a Status.
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import http2Proxy from 'http2-proxy';
import type { ListenerGuard } from '../../common/listener-guard.js';
import { tunnelStreamIdOf, type DialSignalOption } from '../../federation/controller/tunnel-agent.js';
import { Admission, memberTarget, type AdmissionOptions, type Admitted } from './admission.js';
import { AuditTrail, CLIENT_CLOSED, type ByteCounts } from './audit.js';
import { outboundHeaders } from './headers.js';
import type { MemberSession } from './member-sessions.js';
import { KubeProxyMetrics } from './metrics.js';
import { isClustersUrl } from './route.js';
import { KubeProxyError, rawStatusResponse, sendStatus, upstreamError } from './status.js';
import { pipeUpgrade } from './upgrade.js';

/** Hop-by-hop response headers of an HTTP/1.1 member (RFC 9113 §8.2.2 forbids them in h2). */
const CONNECTION_HEADERS = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade'];

export interface KubeApiProxyOptions extends AdmissionOptions {
  registry: Registry;
}

export class KubeApiProxy {
  private readonly admission: Admission;
  private readonly metrics: KubeProxyMetrics;
  private readonly audit: AuditTrail;
  /** Upgraded connections (exec, port-forward…), closed on shutdown. */
  private readonly upgraded = new Set<Duplex>();

  constructor(private readonly options: KubeApiProxyOptions) {
    this.admission = new Admission(options);
    this.metrics = KubeProxyMetrics.of(options.registry);
    this.audit = new AuditTrail(options.log, this.metrics);
  }

  static handles(url: string | undefined): boolean {
    return isClustersUrl(url ?? '');
  }

  /** Closes every upgraded connection (the listener's close() does not see them). */
  closeAll(): void {
    for (const socket of this.upgraded) socket.destroy();
  }

  handleRequest(req: http.IncomingMessage, res: http.ServerResponse, guard: ListenerGuard): void {
    this.admission.admit(req, guard).then(
      (admitted) => this.forward(req, res, admitted),
      (error: unknown) => this.refuse(error, (e) => sendStatus(res, e)),
    );
  }

  handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, guard: ListenerGuard): void {
    socket.on('error', () => socket.destroy());
    this.admission.admit(req, guard).then(
      (admitted) => {
        if (socket.destroyed) return;
        const finish = this.audit.begin(admitted, req.socket);
        this.upgraded.add(socket);
        socket.once('close', () => this.upgraded.delete(socket));
        pipeUpgrade(req, socket, head, admitted, this.options.clusters()!.upgradeAgent(admitted.cluster), finish);
      },
      (error: unknown) => this.refuse(error, (e) => socket.end(rawStatusResponse(e))),
    );
  }

  private refuse(error: unknown, answer: (e: KubeProxyError) => void): void {
    const e = error instanceof KubeProxyError ? error : new KubeProxyError('InternalError', `internal error: ${(error as Error).message}`, 500);
    if (e.code >= 500) this.options.log.error({ err: e.message }, 'kube-proxy: request failed before forwarding');
    this.metrics.refusals.inc({ reason: e.reason, code: String(e.code) });
    answer(e);
  }

  private forward(req: http.IncomingMessage, res: http.ServerResponse, admitted: Admitted): void {
    const sessions = this.options.clusters()!.http2(admitted.cluster);
    // An h2 client's connection carries other requests: this one's bytes are counted on their own.
    const h2Stream = req.httpVersionMajor === 2 ? (res as unknown as http2.Http2ServerResponse).stream : undefined;
    const counts = h2Stream ? streamByteCounts(req, res) : req.socket;
    const exchange = new Exchange(res, h2Stream, this.audit.begin(admitted, counts), admitted, this.options.log);
    res.on('close', () => exchange.closed());
    const ready = sessions.current();
    if (ready !== undefined) return this.dispatch(req, exchange, admitted, ready);
    // A client gone while the member session is still being dialed leaves that dial (cancelled once nobody waits for it).
    const waiting = (exchange.waiting = new AbortController());
    sessions.acquire(waiting.signal).then(
      (session) => {
        exchange.waiting = undefined;
        if (!exchange.clientGone && !res.destroyed) this.dispatch(req, exchange, admitted, session);
      },
      (error: Error) => {
        exchange.waiting = undefined;
        exchange.failed(error);
      },
    );
  }

  private dispatch(req: http.IncomingMessage, exchange: Exchange, admitted: Admitted, session: MemberSession | null): void {
    if (session === null) return this.forwardHttp1(req, exchange, admitted);
    exchange.sid = session.sid;
    this.forwardHttp2(req, exchange, admitted, session);
  }

  /**
   * One stream of the member's h2 session. The client leaving resets the member stream at once
   * (RST_STREAM CANCEL: the member ends the watch; Exchange.closed()); the member resetting it ends
   * the client's response; a streaming answer goes out unbuffered, with no timeout.
   */
  private forwardHttp2(req: http.IncomingMessage, exchange: Exchange, admitted: Admitted, session: MemberSession): void {
    const { res } = exchange;
    const { hostHeader } = memberTarget(admitted);
    const headers: http2.OutgoingHttpHeaders = outboundHeaders(req.rawHeaders, admitted.identity, { token: admitted.cluster.config.token });
    dropPseudoHeaders(headers);
    const method = req.method ?? 'GET';
    Object.assign(headers, { ':method': method, ':path': admitted.route.memberUrl, ':authority': hostHeader, ':scheme': 'https' });
    const bodiless = method === 'GET' || method === 'HEAD' || method === 'OPTIONS';
    let upstream: http2.ClientHttp2Stream;
    try {
      upstream = session.request(headers, { endStream: bodiless });
    } catch (error) {
      exchange.failed(error as Error);
      return;
    }
    exchange.upstream = upstream;
    if (bodiless) req.resume();
    else req.pipe(upstream);
    // ('response' drops its once() wrapper when it fires; the events below are emitted once too,
    // and on() spares the wrappers an open watch would keep.)
    upstream.once('response', (memberHeaders) => exchange.respond(memberHeaders));
    // The member (or a dying link) reset the stream: what the client has is all there is.
    upstream.on('aborted', () => res.destroy());
    upstream.on('error', (error: Error) => exchange.failed(error));
    upstream.on('close', () => exchange.upstreamClosed());
  }

  /** A member that speaks only HTTP/1.1: its keep-alive pool of TLS-over-tunnel connections. */
  private forwardHttp1(req: http.IncomingMessage, exchange: Exchange, admitted: Admitted): void {
    const { res } = exchange;
    const onSid = (sid: string | undefined): void => void (exchange.sid = sid ?? exchange.sid);
    const agent = this.options.clusters()!.pool(admitted.cluster);
    const { host, port, hostHeader } = memberTarget(admitted);
    const headers = outboundHeaders(req.rawHeaders, admitted.identity, { token: admitted.cluster.config.token });
    dropPseudoHeaders(headers);
    headers.host = hostHeader;
    // A client gone before its member connection exists cancels the pending dial.
    const dial = new AbortController();
    let connected = false;
    res.once('close', () => {
      if (!connected) dial.abort();
    });
    http2Proxy.web(
      req,
      res,
      {
        hostname: host,
        port,
        // The identity headers are ours, built from the raw client headers after every stripping
        // rule (headers.ts): http2-proxy's own copy, with its hop-by-hop handling, is not used.
        onReq: (_req: http.IncomingMessage, _options: http.RequestOptions) => {
          const options: https.RequestOptions & DialSignalOption = { agent, host, port, method: req.method, path: admitted.route.memberUrl, headers, dialSignal: dial.signal };
          const upstream = https.request(options);
          upstream.once('socket', (socket) => {
            connected = true;
            onSid(tunnelStreamIdOf(socket));
          });
          return Promise.resolve(upstream);
        },
        // (http2-proxy's typings call the member's response a ServerResponse; it is an IncomingMessage.)
        onRes: (_req: http.IncomingMessage, out: http.ServerResponse, upstreamRes: unknown) => {
          const proxyRes = upstreamRes as http.IncomingMessage;
          onSid(tunnelStreamIdOf(proxyRes.socket));
          // The connection's own headers are not the client's (and an h2 client's answer may not carry them).
          const headers = { ...proxyRes.headers };
          for (const name of CONNECTION_HEADERS) delete headers[name];
          out.writeHead(proxyRes.statusCode ?? 502, proxyRes.statusMessage, headers);
          // A streaming answer (watch, logs -f: no Content-Length) must reach the client before
          // its first event; a sized one goes out with its body, one TLS record instead of two.
          if (proxyRes.headers['content-length'] === undefined) out.flushHeaders();
          proxyRes.once('end', () => void (exchange.memberEnded = true));
          proxyRes.pipe(out);
          return Promise.resolve();
        },
      },
      (error: Error | null) => {
        if (error) exchange.failed(error);
      },
    );
  }
}

/**
 * One plain request on its way to a member: the state its listeners share for as long as it
 * lasts — hours for a watch, so one object and one 'close' listener on the client's response
 * rather than a closure (and its captured scope) per concern: an idle watch's hub memory is
 * budgeted (issue 8).
 */
class Exchange {
  /** Tunnel stream id of the member connection, for logs. */
  sid: string | undefined;
  /** The member's answer began (its head came in). */
  private answered = false;
  /** HTTP/1.1 member: its body ended (an h2 member's stream tells by readableEnded). */
  memberEnded = false;
  /** The client went away before it had the whole answer. */
  clientGone = false;
  /** The client's response closed (ended and flushed, or cut off). */
  private responseClosed = false;
  /** Once: a stream error and its close both report the one failure. */
  private settled = false;
  /** While the member session is being dialed: the client leaving cancels its wait. */
  waiting: AbortController | undefined;
  /** The member stream (h2 member). */
  upstream: http2.ClientHttp2Stream | undefined;
  private readonly cluster: string;
  private readonly user: string;

  constructor(
    readonly res: http.ServerResponse,
    /** The client's own h2 stream, for an h2 client. */
    private readonly h2Stream: http2.ServerHttp2Stream | undefined,
    private readonly finish: (status: number, sid: string | undefined) => void,
    admitted: Admitted,
    private readonly log: Logger,
  ) {
    // (Not `admitted` itself: its route and identity are not needed once the request is sent.)
    this.cluster = admitted.cluster.name;
    this.user = admitted.identity.user;
  }

  /**
   * A client that has a sized answer in full may close before the relay ends the response: the
   * member's end of the body counts as answered too. Otherwise: HTTP/1.1, ended by us and flushed;
   * h2, ended by us and the stream closed without a reset (Node may report 'close' of a cleanly
   * ended h2 stream before 'finish', and a reset one as finished).
   */
  private answeredInFull(): boolean {
    const { res, h2Stream } = this;
    if (this.memberEnded || this.upstream?.readableEnded) return true;
    return res.writableEnded && (h2Stream ? h2Stream.rstCode === http2.constants.NGHTTP2_NO_ERROR : res.writableFinished);
  }

  /** The client's response closed: audit it; a client that left cancels its wait or resets its member stream. */
  closed(): void {
    this.responseClosed = true;
    this.clientGone = !this.answeredInFull();
    this.finish(this.clientGone ? CLIENT_CLOSED : this.res.statusCode, this.sid);
    this.waiting?.abort();
    const { upstream } = this;
    if (this.clientGone && upstream && !upstream.closed) upstream.close(http2.constants.NGHTTP2_CANCEL);
  }

  /** The member could not be reached or failed: a Status if nothing was sent yet, else the client is cut off. */
  failed(error: Error): void {
    const { res } = this;
    if (this.settled || this.clientGone || res.destroyed || res.writableEnded) return;
    this.settled = true;
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const e = upstreamError(this.cluster, error as Error & { dialCode?: unknown });
    this.log.warn({ cluster: this.cluster, user: this.user, sid: this.sid, err: error.message, code: e.code }, 'kube-proxy: member unreachable');
    sendStatus(res, e);
  }

  /** The member's head: relayed, then its body streams through. */
  respond(memberHeaders: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader): void {
    this.answered = true;
    const { res } = this;
    if (this.clientGone || res.destroyed) return;
    const status = Number(memberHeaders[':status'] ?? 502);
    const out: http.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(memberHeaders)) if (!name.startsWith(':') && value !== undefined) out[name] = value;
    res.writeHead(status, out);
    // A streaming answer (watch, logs -f: no Content-Length) must reach the client before
    // its first event; a sized one goes out with its body, one TLS record instead of two.
    if (memberHeaders['content-length'] === undefined) res.flushHeaders();
    this.relay(this.upstream!);
  }

  /**
   * The member's body to the client as it comes, with backpressure. Not pipe(): it would keep nine
   * closures and six more listeners on the two streams for as long as they are open. Nothing is
   * written once the client's response closed (the member stream is reset then, or has ended).
   */
  private relay(upstream: http2.ClientHttp2Stream): void {
    const { res } = this;
    upstream.on('data', (chunk: Buffer) => {
      if (this.responseClosed) return;
      if (!res.write(chunk)) {
        upstream.pause();
        res.once('drain', () => upstream.resume());
      }
    });
    upstream.on('end', () => {
      if (!this.responseClosed) res.end();
    });
  }

  /** The member stream closed; before its head came, that is a failure (after it, 'aborted' and 'error' cut the client off, a clean end ends the response). */
  upstreamClosed(): void {
    if (!this.answered) this.failed(Object.assign(new Error(`the member reset the request (HTTP/2 code ${this.upstream!.rstCode})`), { code: 'ERR_HTTP2_STREAM_ERROR' }));
  }
}

/**
 * The bytes of one h2 request: its body and head one way, the answer's the other, the heads as
 * their HTTP/1.1 text (HPACK's compressed size is not visible per stream).
 */
function streamByteCounts(req: http.IncomingMessage, res: http.ServerResponse): ByteCounts {
  const headSize = (raw: readonly string[]): number => raw.reduce((n, s) => n + Buffer.byteLength(s) + 2, 0);
  const counts = { bytesRead: headSize(req.rawHeaders), bytesWritten: 0 };
  req.on('data', (chunk: Buffer) => (counts.bytesRead += chunk.length));
  const write = res.write.bind(res) as (chunk: unknown, ...rest: unknown[]) => boolean;
  const end = res.end.bind(res) as (...args: unknown[]) => http.ServerResponse;
  const count = (chunk: unknown): void => {
    if (typeof chunk === 'string' || Buffer.isBuffer(chunk)) counts.bytesWritten += Buffer.byteLength(chunk);
  };
  res.write = ((chunk: unknown, ...rest: unknown[]) => (count(chunk), write(chunk, ...rest))) as typeof res.write;
  res.end = ((...args: unknown[]) => (typeof args[0] !== 'function' && count(args[0]), end(...args))) as typeof res.end;
  res.once('finish', () => (counts.bytesWritten += headSize(Object.entries(res.getHeaders()).flatMap(([k, v]) => [k, String(v)]))));
  return counts;
}

/** An h2 client's pseudo-headers (:method, :path, :authority, :scheme) are in its rawHeaders; the member's own are set by the caller. */
function dropPseudoHeaders(headers: Record<string, unknown>): void {
  for (const name of Object.keys(headers)) if (name.startsWith(':')) delete headers[name];
}
