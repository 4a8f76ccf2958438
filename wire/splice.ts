// Joins a tunnel stream to a plain socket (the CONNECT client on the server, the destination on
// the agent), keeping half-close: an end on one side becomes an end on the other, not a teardown.
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { StreamResetError, type ResetCode } from './errors.js';

/** A tunnel stream, or anything that carries one and counts its bytes like it (a peer-forwarded dial). */
export type SpliceableStream = Duplex & { readonly bytesSent: number; readonly bytesReceived: number };

export interface SpliceResult {
  /** Set when the splice ended abnormally. */
  error?: Error;
  bytesFromSocket: number;
  bytesToSocket: number;
}

/**
 * @param socketResetCode the reset code the peer sees when `socket` fails
 * @param done called once, after both sides are closed
 */
export function splice(tunnel: SpliceableStream, socket: Duplex, socketResetCode: ResetCode, done: (result: SpliceResult) => void): void {
  if (tunnel.destroyed) {
    // Reset in the same read as its OPEN_OK: there is nothing to carry.
    abort(socket);
    const error = tunnel.errored ?? new StreamResetError('CANCEL', 'stream closed before it was spliced');
    process.nextTick(done, { error, bytesFromSocket: 0, bytesToSocket: 0 });
    return;
  }
  let error: Error | undefined;
  let open = 2;
  const closed = (): void => {
    if (--open === 0) done({ error, bytesFromSocket: tunnel.bytesSent, bytesToSocket: tunnel.bytesReceived });
  };
  socket.on('error', (e: Error) => {
    error ??= e;
    tunnel.destroy(new StreamResetError(socketResetCode, e.message, false));
  });
  tunnel.on('error', (e: Error) => {
    error ??= e;
    abort(socket);
  });
  // A socket closed while the tunnel still runs cannot take or give more bytes: reset the stream.
  // A tunnel closed cleanly has already ended the socket through pipe(); destroying it here would
  // drop bytes still queued for the socket's peer.
  socket.on('close', () => {
    if (!tunnel.destroyed) tunnel.destroy();
    closed();
  });
  tunnel.on('close', closed);
  socket.pipe(tunnel);
  tunnel.pipe(socket);
}

/**
 * Fails the socket so its peer sees an error, not a clean end that could pass for a complete
 * transfer: a TCP reset (RST) of the connection. A TLS socket is reset through the TCP socket it
 * runs on (`_parent`: Node has no public accessor); the TLS socket then closes by itself, and
 * destroying it as well in the same tick is unsafe. A Unix socket has no reset: its peer sees
 * end of stream (or ECONNRESET only if it left data unread).
 */
function abort(socket: Duplex): void {
  const transport = socket instanceof tls.TLSSocket ? (socket as tls.TLSSocket & { _parent?: unknown })._parent : socket;
  // Not once the socket was ended (a FIN just arrived on the stream): while that shutdown is
  // pending libuv refuses the reset (EINVAL), and Node then leaves the handle and its fd open.
  if (transport instanceof net.Socket && transport.remoteAddress !== undefined && !transport.destroyed && !socket.writableEnded) {
    try {
      transport.resetAndDestroy();
      return;
    } catch {
      // not a TCP handle after all
    }
  }
  socket.destroy();
}
