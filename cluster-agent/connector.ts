// Opens the agent's outbound carrier: raw TLS (ALPN fedtunnel/1) or a WebSocket over TLS, either
// directly or through an HTTP CONNECT forward proxy (corporate egress). Always mutual TLS: the
// agent proves its cluster with its certificate and verifies the server's against our CA.
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { WebSocket, createWebSocketStream } from 'ws';
import { ALPN_TUNNEL, WEBSOCKET_PATH } from '../wire/frames.js';
import { formatHostPort, type HostPort } from '../common/address.js';

export type CarrierKind = 'tls' | 'ws';

export interface CarrierOptions {
  kind: CarrierKind;
  server: HostPort;
  /** Name checked against the server certificate (defaults to the server host). */
  serverName: string;
  /** Built once and reused by every reconnect. */
  secureContext: tls.SecureContext;
  /** http://host:port of a CONNECT proxy, or null. */
  proxy: URL | null;
  timeoutMs: number;
}

export interface Carrier {
  stream: Duplex;
  /** Message-oriented carriers want each batch of frames as one write. */
  coalesceWrites: boolean;
}

/** Asks an HTTP proxy for a CONNECT tunnel to the server; resolves with the raw socket. */
export function connectThroughProxy(proxy: URL, target: HostPort, signal: AbortSignal): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = { host: formatHostPort(target) };
    if (proxy.username) {
      const credentials = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
      headers['proxy-authorization'] = `Basic ${Buffer.from(credentials).toString('base64')}`;
    }
    const req = http.request({ host: proxy.hostname, port: Number(proxy.port || 80), method: 'CONNECT', path: formatHostPort(target), headers, signal });
    req.once('connect', (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        reject(new Error(`proxy ${proxy.host} answered CONNECT with ${res.statusCode} ${res.statusMessage ?? ''}`.trim()));
        return;
      }
      resolve(socket);
    });
    req.once('error', reject);
    req.end();
  });
}

function tlsOptions(options: CarrierOptions, alpn: string): tls.ConnectionOptions {
  return {
    secureContext: options.secureContext,
    servername: net.isIP(options.serverName) ? undefined : options.serverName,
    // Verify the server certificate against the name we were told to expect, IP or DNS.
    checkServerIdentity: (_host, cert) => tls.checkServerIdentity(options.serverName, cert),
    ALPNProtocols: [alpn],
    minVersion: 'TLSv1.2',
  };
}

export async function openCarrier(options: CarrierOptions): Promise<Carrier> {
  const signal = AbortSignal.timeout(options.timeoutMs);
  const proxied = options.proxy ? await connectThroughProxy(options.proxy, options.server, signal) : undefined;
  if (options.kind === 'tls') {
    const socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ ...tlsOptions(options, ALPN_TUNNEL), host: options.server.host, port: options.server.port, socket: proxied });
      const onAbort = (): void => void s.destroy(new Error(`carrier not established within ${options.timeoutMs} ms`));
      signal.addEventListener('abort', onAbort, { once: true });
      s.once('secureConnect', () => {
        signal.removeEventListener('abort', onAbort);
        if (s.alpnProtocol !== ALPN_TUNNEL) {
          s.destroy();
          reject(new Error(`server did not negotiate ${ALPN_TUNNEL}`));
        } else resolve(s);
      });
      s.once('error', (error) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      });
    });
    socket.setNoDelay(true);
    return { stream: socket, coalesceWrites: false };
  }
  const url = `wss://${formatHostPort(options.server)}${WEBSOCKET_PATH}`;
  const ws = new WebSocket(url, {
    ...tlsOptions(options, 'http/1.1'),
    perMessageDeflate: false,
    handshakeTimeout: options.timeoutMs,
    createConnection: proxied ? (opts: tls.ConnectionOptions) => tls.connect({ ...opts, socket: proxied }) : undefined,
  } as WebSocket.ClientOptions);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => {
      ws.off('error', reject);
      resolve();
    });
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => {
      ws.off('error', reject);
      reject(new Error(`WebSocket upgrade refused with ${res.statusCode}`));
      ws.terminate();
    });
  });
  return { stream: createWebSocketStream(ws), coalesceWrites: true };
}
