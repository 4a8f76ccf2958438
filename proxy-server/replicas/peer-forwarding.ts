// Peer forwarding: the fallback while an agent is still converging on every replica. A replica
// that has no usable link for a cluster forwards the dial one hop to a live peer that reported
// one, over mutual TLS on the peer's agent listener (ALPN fedtunnel-peer/1, the replica's server
// certificate as client certificate), and pipes the bytes. The peer dials locally only, so a
// dial never travels more than one hop.
//
// On the connection, after the TLS handshake: one request line from the forwarding replica,
//   {"cluster","address","sid","timeoutMs","requester"}\n
// one answer line from the peer, {"ok":true}\n or {"ok":false,"code","message"}\n, then the
// stream's bytes both ways (half-close is TLS close_notify / end).
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { parseHostPort } from '../../common/address.js';
import { DialError, isDialErrorCode } from '../../wire/errors.js';
import { splice } from '../../wire/splice.js';
import type { DialFunction, DialedStream } from '../dialer.js';

export const ALPN_PEER = 'fedtunnel-peer/1';
const MAX_LINE = 4096;

export interface PeerRequest {
  cluster: string;
  address: string;
  sid: string;
  timeoutMs: number;
  requester: string;
}

type PeerAnswer = { ok: true } | { ok: false; code: string; message: string };

/** Validates a request line; null if it is not one (the peer closes the connection). */
export function parsePeerRequest(line: string): PeerRequest | null {
  let o: unknown;
  try {
    o = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof o !== 'object' || o === null) return null;
  const r = o as Record<string, unknown>;
  const isText = (v: unknown, max: number): v is string => typeof v === 'string' && v.length > 0 && v.length <= max;
  if (!isText(r.cluster, 253) || !isText(r.address, 261) || !isText(r.sid, 64) || !isText(r.requester, 253)) return null;
  if (typeof r.timeoutMs !== 'number' || !Number.isInteger(r.timeoutMs) || r.timeoutMs < 1 || r.timeoutMs > 3_600_000) return null;
  return { cluster: r.cluster, address: r.address, sid: r.sid, timeoutMs: r.timeoutMs, requester: r.requester };
}

/**
 * Reads one newline-terminated line of at most MAX_LINE bytes; what follows it is pushed back
 * onto the stream. Rejects on end, error, an overlong line or after `timeoutMs`.
 */
function readLine(stream: Duplex, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const timer = setTimeout(() => finish(new Error(`no line within ${timeoutMs} ms`)), timeoutMs);
    const finish = (error: Error | null, line?: string, rest?: Buffer): void => {
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.off('close', onEnd);
      if (error) return reject(error);
      stream.pause();
      if (rest && rest.length > 0) stream.unshift(rest);
      resolve(line!);
    };
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const newline = buffered.indexOf(0x0a);
      if (newline >= 0) return finish(null, buffered.subarray(0, newline).toString('utf8'), buffered.subarray(newline + 1));
      if (buffered.length > MAX_LINE) finish(new Error(`line longer than ${MAX_LINE} bytes`));
    };
    const onEnd = (): void => finish(new Error('connection ended before a full line'));
    const onError = (error: Error): void => finish(error);
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('close', onEnd);
    stream.once('error', onError);
  });
}

export interface PeerTls {
  /** Our CA, server certificate and key: the certificate is presented as the client certificate. */
  secureContext: () => tls.SecureContext;
}

/**
 * Forwards one dial to the peer at `peerAddress` and resolves with the piped stream, or rejects
 * with the peer's DialError (or DIAL_FAILED when the peer cannot be reached).
 */
export async function forwardDial(peerAddress: string, request: PeerRequest, peerTls: PeerTls, signal?: AbortSignal): Promise<DialedStream> {
  const target = parseHostPort(peerAddress);
  if (!target) throw new DialError('DIAL_FAILED', `peer address ${peerAddress} is not host:port`);
  const socket = tls.connect({
    host: target.host,
    port: target.port,
    secureContext: peerTls.secureContext(),
    servername: net.isIP(target.host) ? undefined : target.host,
    ALPNProtocols: [ALPN_PEER],
    minVersion: 'TLSv1.2',
  });
  const onAbort = (): void => void socket.destroy(new DialError('CANCELLED', 'dial cancelled by the caller'));
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no TLS handshake with peer ${peerAddress} within ${request.timeoutMs} ms`)), request.timeoutMs);
      socket.once('secureConnect', () => {
        clearTimeout(timer);
        if (socket.alpnProtocol !== ALPN_PEER) reject(new Error(`peer ${peerAddress} did not negotiate ${ALPN_PEER}`));
        else resolve();
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
    socket.setNoDelay(true);
    socket.write(JSON.stringify(request) + '\n');
    // The peer answers once its own dial ends: its dial timeout plus a margin bounds the wait.
    const answer = JSON.parse(await readLine(socket, request.timeoutMs + 2000)) as PeerAnswer;
    if (!answer.ok) throw new DialError(isDialErrorCode(answer.code) ? answer.code : 'DIAL_FAILED', `peer replica: ${String(answer.message)}`);
    socket.resume();
    // Counted like a tunnel stream's bytes (here including TLS record overhead).
    return Object.defineProperties(socket, {
      bytesSent: { get: () => socket.bytesWritten },
      bytesReceived: { get: () => socket.bytesRead },
    }) as unknown as DialedStream;
  } catch (error) {
    socket.destroy();
    if (error instanceof DialError) throw error;
    throw new DialError('DIAL_FAILED', `forwarding to peer replica ${peerAddress} failed: ${(error as Error).message}`);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * Peer side: reads the request from a verified replica's connection, dials locally (never
 * forwarding again) and pipes, or answers the DialError and closes.
 */
export async function servePeer(socket: tls.TLSSocket, localDial: DialFunction, requestTimeoutMs: number, log: Logger): Promise<void> {
  socket.setNoDelay(true);
  socket.on('error', () => socket.destroy());
  let request: PeerRequest | null;
  try {
    request = parsePeerRequest(await readLine(socket, requestTimeoutMs));
  } catch (error) {
    log.warn({ err: (error as Error).message, remote: socket.remoteAddress }, 'peer sent no valid forwarding request');
    socket.destroy();
    return;
  }
  if (!request) {
    log.warn({ remote: socket.remoteAddress }, 'peer forwarding request is malformed');
    socket.destroy();
    return;
  }
  const abort = new AbortController();
  const onClose = (): void => abort.abort();
  socket.once('close', onClose);
  try {
    const stream = await localDial(request.cluster, request.address, { sid: request.sid, timeoutMs: request.timeoutMs, requester: `peer:${request.requester}`, signal: abort.signal, local: true });
    socket.off('close', onClose);
    if (socket.destroyed) {
      stream.destroy();
      return;
    }
    socket.write(JSON.stringify({ ok: true } satisfies PeerAnswer) + '\n');
    socket.resume();
    splice(stream, socket, 'CLIENT_ERROR', () => undefined);
  } catch (error) {
    socket.off('close', onClose);
    const dialError = error instanceof DialError ? error : new DialError('DIAL_FAILED', (error as Error).message);
    socket.end(JSON.stringify({ ok: false, code: dialError.code, message: dialError.message } satisfies PeerAnswer) + '\n');
  }
}
