// portforward.k8s.io over a SPDY session: for every forwarded connection the client opens a pair
// of streams with the same requestID — "error" (the server writes a message there if the
// connection fails) and "data" (the bytes) — both naming the port. The pod "listens" on loopback:
// the server connects to 127.0.0.1:<port> (README "Pods in member mode").
import net from 'node:net';
import type { Logger } from '../../../common/log.js';
import type { SpdySession, SpdyStream } from './spdy-session.js';

interface Pair {
  error?: SpdyStream;
  data?: SpdyStream;
  port: number;
}

/** A port header's value as a TCP port, or null (pure). */
export function parsePortHeader(value: string | undefined): number | null {
  if (value === undefined || !/^[0-9]{1,5}$/.test(value)) return null;
  const port = Number(value);
  return port >= 1 && port <= 65535 ? port : null;
}

export interface PortForwardHooks {
  /** A forwarded connection ended: whether it reached the port, bytes each way. */
  connection(result: 'ok' | 'refused' | 'invalid', bytesIn: number, bytesOut: number): void;
}

/** Serves port-forward streams on `session` until it closes; local sockets never outlive it. */
export function servePortForward(session: SpdySession, podName: string, podUid: string, log: Logger, hooks: PortForwardHooks): void {
  const pairs = new Map<string, Pair>();
  const sockets = new Set<net.Socket>();
  session.once('close', () => {
    for (const s of sockets) s.destroy();
    sockets.clear();
    pairs.clear();
  });
  const onStream = (stream: SpdyStream): void => {
    const type = stream.header('streamtype');
    const requestId = stream.header('requestid') ?? '';
    const port = parsePortHeader(stream.header('port'));
    stream.on('error', () => {});
    if ((type !== 'error' && type !== 'data') || port === null) {
      log.info({ streamType: type, port: stream.header('port') }, 'port-forward stream refused: bad headers');
      hooks.connection('invalid', 0, 0);
      stream.destroy();
      return;
    }
    let pair = pairs.get(requestId);
    if (!pair) pairs.set(requestId, (pair = { port }));
    if (pair[type] || pair.port !== port) {
      log.info({ requestId, streamType: type }, 'port-forward stream refused: duplicate or mismatched');
      stream.destroy();
      return;
    }
    pair[type] = stream;
    if (type === 'error') {
      // The client sends nothing on the error stream; its end must not hold anything open.
      stream.resume();
    }
    if (pair.error && pair.data) {
      pairs.delete(requestId);
      forward(pair.error, pair.data, pair.port, requestId);
    }
  };
  session.on('stream', onStream);

  function forward(errorStream: SpdyStream, data: SpdyStream, port: number, requestId: string): void {
    const socket = net.connect({ host: '127.0.0.1', port });
    sockets.add(socket);
    let connected = false;
    let bytesIn = 0;
    let bytesOut = 0;
    socket.once('connect', () => {
      connected = true;
      log.debug({ requestId, port }, 'port-forward connection open');
    });
    data.on('data', (d: Buffer) => {
      bytesIn += d.length;
      if (!socket.write(d)) {
        data.pause();
        socket.once('drain', () => data.resume());
      }
    });
    data.once('end', () => socket.end());
    socket.on('data', (d: Buffer) => {
      bytesOut += d.length;
      if (!data.write(d)) {
        socket.pause();
        data.once('drain', () => socket.resume());
      }
    });
    socket.once('end', () => {
      if (!data.destroyed) data.end();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (!connected) {
        // The kubelet's wording: kubectl prints it as "an error occurred forwarding …".
        const message = `error forwarding port ${port} to pod ${podName}, uid ${podUid}: failed to connect to 127.0.0.1:${port}: ${err.code ?? err.message}`;
        if (!errorStream.destroyed) errorStream.end(message);
        if (!data.destroyed) data.end();
      } else {
        data.destroy();
      }
    });
    socket.once('close', () => {
      sockets.delete(socket);
      hooks.connection(connected ? 'ok' : 'refused', bytesIn, bytesOut);
      if (!errorStream.destroyed && !errorStream.writableEnded) errorStream.end();
    });
    // The client resets or the session ends: the local connection goes too.
    data.once('close', () => {
      if (!socket.destroyed && (data.destroyed && !(data.readableEnded && data.writableFinished))) socket.destroy();
    });
  }
}
