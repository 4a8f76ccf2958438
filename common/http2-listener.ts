// HTTP/2 next to HTTP/1.1 on one https.Server, as kube-apiservers offer it: ALPN prefers h2
// (create the server with ALPN_H2_FIRST), and a TLS connection that chose h2 is handed to an
// internal HTTP/2 server whose requests are emitted as the https.Server's own 'request' events
// (Node's compatibility req/res). One set of request handlers serves both protocols, and CONNECT
// and upgrades (exec, port-forward, WebSocket), which exist only in HTTP/1.1, stay on the
// https.Server unchanged — clients that offer only http/1.1 (curl and Go's proxy dialers to a
// proxy, SPDY and WebSocket upgrades) never see a difference.
//
// Why h2 at all: kubectl/client-go multiplex every request and watch of one client over one h2
// connection, so an idle watch costs a stream (a few hundred bytes) instead of a TLS connection.
//
// Why not http2.createSecureServer({ allowHTTP1 }): the listener guard, the CONNECT frontend and
// the upgrade paths are built on https.Server events; handing over only the h2 sockets keeps them.
// And a client may choose h2 in ALPN and still speak HTTP/1.1 (Go's proxy dialer: sniffPreface()).
import http2 from 'node:http2';
import type https from 'node:https';
import type tls from 'node:tls';
import type { ListenerGuard } from './listener-guard.js';

/** ALPN of a listener that speaks both; h2 first, so clients that offer it get it. */
export const ALPN_H2_FIRST = ['h2', 'http/1.1'];

/**
 * Streams at once on one h2 connection. Every open watch holds one; Go's client opens a further
 * connection beyond this, Node's would queue the request (a watch waiting forever), so it is set
 * high — kube-apiserver's default --http2-max-streams-per-connection is 1000 too.
 */
export const HTTP2_MAX_STREAMS = 1000;

export interface Http2Listener {
  /** Open h2 sessions, for metrics and tests. */
  readonly sessionCount: number;
  /** Closes every h2 connection at once (server.closeAllConnections() sees only HTTP/1.1 ones). */
  closeAll(): void;
}

/**
 * Serves h2 connections of `server` (created with ALPNProtocols: ALPN_H2_FIRST) as 'request'
 * events of `server`. Call it before guard.protect(server): the guard then checks the handshake of
 * h2 connections like any other, and bounds their time to a first stream and their idle time.
 */
export function serveHttp2(server: https.Server, guard: ListenerGuard, options: { maxHeaderBytes?: number } = {}): Http2Listener {
  const h2 = http2.createServer({
    settings: { maxConcurrentStreams: HTTP2_MAX_STREAMS, ...(options.maxHeaderBytes ? { maxHeaderListSize: options.maxHeaderBytes } : {}) },
  });
  const sessions = new Set<http2.ServerHttp2Session>();
  let handingOver: tls.TLSSocket | undefined;
  // Node creates the session and emits 'session' synchronously inside emit('connection').
  h2.on('session', (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
    // A session error (a peer protocol error) ends that session only.
    session.on('error', () => session.destroy());
    if (handingOver) guard.http2Session(handingOver, session);
  });
  h2.on('request', (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => server.emit('request', req, res));

  const http1 = server.listeners('secureConnection') as Array<(socket: tls.TLSSocket) => void>;
  server.removeAllListeners('secureConnection');
  const toHttp1 = (socket: tls.TLSSocket): void => {
    for (const listener of http1) listener.call(server, socket);
  };
  server.on('secureConnection', (socket: tls.TLSSocket) => {
    if (socket.alpnProtocol !== 'h2') return toHttp1(socket);
    sniffPreface(socket, (isH2) => {
      if (!isH2) {
        toHttp1(socket);
        socket.resume();
        return;
      }
      handingOver = socket;
      try {
        h2.emit('connection', socket);
      } finally {
        handingOver = undefined;
      }
    });
  });
  return {
    get sessionCount() {
      return sessions.size;
    },
    closeAll() {
      for (const session of sessions) session.destroy();
    },
  };
}

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/**
 * Whether a connection that chose h2 in ALPN really speaks it. Go's http.Transport dials an
 * https:// proxy with its own TLS config — "h2" included once HTTP/2 is on, as in kubectl's
 * proxy-url — and then writes an HTTP/1.1 CONNECT whatever ALPN chose (so do old curls). The
 * first bytes tell: the HTTP/2 connection preface, or an HTTP/1.1 request line. What was read is
 * put back for the protocol's parser; the socket is left paused. (The listener guard's header
 * deadline bounds a client that sends nothing.)
 */
function sniffPreface(socket: tls.TLSSocket, decide: (isH2: boolean) => void): void {
  let seen = Buffer.alloc(0);
  const onData = (chunk: Buffer): void => {
    seen = Buffer.concat([seen, chunk]);
    const n = Math.min(seen.length, PREFACE.length);
    if (!seen.subarray(0, n).equals(PREFACE.subarray(0, n))) done(false);
    else if (seen.length >= PREFACE.length) done(true);
  };
  const done = (isH2: boolean): void => {
    socket.off('data', onData);
    socket.pause();
    socket.unshift(seen);
    decide(isH2);
  };
  socket.on('data', onData);
}
