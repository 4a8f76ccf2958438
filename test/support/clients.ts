// Test-side clients and destinations: CONNECT through the proxy (TLS or Unix socket), and the
// services that stand behind the agents.
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Duplex } from 'node:stream';
import { ClosedEarly, ConnectRefused } from '../../common/request-failures.js';
import { testPki } from './pki.js';

export { ConnectRefused } from '../../common/request-failures.js';

/** `alpn`: what the TLS client offers (none by default), e.g. Go's proxy dialer offers h2 and http/1.1. */
export type ProxyEndpoint = { uds: string } | { tlsPort: number; user?: string; alpn?: string[] };

/** Reads one HTTP response head from a raw socket, leaving the rest of the bytes in the socket. */
function readResponseHead(socket: Duplex): Promise<{ status: number; headers: Record<string, string>; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end < 0) return;
      cleanup();
      const [statusLine, ...headerLines] = buffered.subarray(0, end).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of headerLines) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      resolve({ status: Number(statusLine!.split(' ')[1]), headers, rest: buffered.subarray(end + 4) });
    };
    const onEnd = (): void => {
      cleanup();
      reject(new ClosedEarly(`connection closed before a response head (${buffered.length} bytes)`));
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(error);
    };
    const cleanup = (): void => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onError);
      // Back to paused mode: a flowing socket without a 'data' listener would drop what follows.
      // Readers must resume() (readAll does).
      socket.pause();
    };
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('error', onError);
  });
}

function openProxySocket(endpoint: ProxyEndpoint, user = 'root'): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    if ('uds' in endpoint) {
      const socket = net.connect(endpoint.uds);
      socket.once('connect', () => resolve(socket)).once('error', reject);
      return;
    }
    const pki = testPki();
    const identity = pki.users[endpoint.user ?? user]!;
    const socket = tls.connect({
      host: '127.0.0.1',
      port: endpoint.tlsPort,
      ca: fs.readFileSync(pki.ca.cert),
      cert: fs.readFileSync(identity.cert),
      key: fs.readFileSync(identity.key),
      servername: 'localhost',
      ...(endpoint.alpn ? { ALPNProtocols: endpoint.alpn } : {}),
    });
    socket.once('secureConnect', () => resolve(socket)).once('error', reject);
  });
}

/**
 * CONNECTs through the proxy to `target` in `cluster` (named with Proxy-Authorization, as curl's
 * `-x https://<cluster>@…` does). Resolves with the tunneled socket, or rejects with ConnectRefused.
 */
export async function connectVia(endpoint: ProxyEndpoint, cluster: string | null, target: string): Promise<Duplex> {
  const socket = await openProxySocket(endpoint);
  const auth = cluster ? `Proxy-Authorization: Basic ${Buffer.from(`${cluster}:`).toString('base64')}\r\n` : '';
  socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${auth}\r\n`);
  const head = await readResponseHead(socket).catch((error: Error) => {
    socket.destroy();
    throw error;
  });
  if (head.status !== 200) {
    const body = head.rest.toString();
    socket.destroy();
    throw new ConnectRefused(head.status, head.headers['tunnel-error'], body);
  }
  if (head.rest.length > 0) socket.unshift(head.rest);
  return socket;
}

/** An HTTP service standing in for something inside a member cluster. */
export async function startHttpService(name: string): Promise<{ server: http.Server; port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ service: name, path: req.url }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    server,
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * A TCP service with two behaviours chosen by the first byte: 'E' echoes everything back
 * (half-close aware), 'D' + 8-byte length sends that many pseudo-random bytes, then ends.
 */
/** `host`: 0.0.0.0 when agents in network namespaces dial it at their root-side veth address. */
export async function startByteService(host = '127.0.0.1'): Promise<{ port: number; bytesSent(): number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let bytesSent = 0;
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.once('readable', function first() {
      const head = socket.read(1) as Buffer | null;
      if (!head) return socket.once('readable', first);
      if (head[0] === 0x45 /* E */) {
        socket.pipe(socket);
        return;
      }
      const sizeBytes = socket.read(8) as Buffer | null;
      if (!sizeBytes) return socket.destroy();
      let remaining = Number(sizeBytes.readBigUInt64BE(0));
      const block = patternBlock();
      const pump = (): void => {
        while (remaining > 0) {
          const n = Math.min(remaining, block.length);
          remaining -= n;
          bytesSent += n;
          if (!socket.write(n === block.length ? block : block.subarray(0, n))) return void socket.once('drain', pump);
        }
        socket.end();
      };
      pump();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    /** Download bytes handed to the kernel so far, over all connections. */
    bytesSent: () => bytesSent,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

let block: Buffer | undefined;
function patternBlock(): Buffer {
  if (!block) {
    block = Buffer.alloc(64 * 1024);
    for (let i = 0; i < block.length; i++) block[i] = (i * 31 + (i >> 8)) & 0xff;
  }
  return block;
}

export function downloadRequest(bytes: number): Buffer {
  const request = Buffer.alloc(9);
  request[0] = 0x44; // D
  request.writeBigUInt64BE(BigInt(bytes), 1);
  return request;
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Collects a socket's bytes until it ends. */
export function readAll(socket: Duplex): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('end', () => resolve(Buffer.concat(chunks)));
    socket.once('error', reject);
    socket.resume(); // connectVia leaves the socket explicitly paused
  });
}

/**
 * Everything the peer sent before the connection closed, whether it ended cleanly or with an error:
 * a server that answers 4xx and closes with our request unread resets the connection, and the
 * answer that came before the reset must still count.
 */
export function readUntilClosed(socket: Duplex): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    socket.once('close', () => resolve(Buffer.concat(chunks)));
    socket.resume();
  });
}

/** Runs curl and returns its exit code and output, a failure included (curl's exit code says why). */
export async function curlStatus(args: string[]): Promise<{ exit: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)('curl', args);
    return { exit: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { exit: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
