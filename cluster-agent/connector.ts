// Opens the agent's outbound carrier — raw TLS (ALPN fedtunnel/1), a WebSocket over TLS or one
// HTTP/2 stream (ALPN h2), each in its own file under carriers/ — either directly or through an
// HTTP CONNECT forward proxy (corporate egress). Always mutual TLS: the agent proves its cluster
// with its certificate and verifies the server's against our CA.
import http from 'node:http';
import type net from 'node:net';
import type tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { formatHostPort, type HostPort } from '../common/address.js';
import { openHttp2Carrier } from './carriers/http2.js';
import { openTlsCarrier } from './carriers/tls.js';
import { openWebSocketCarrier } from './carriers/websocket.js';

export type CarrierKind = 'tls' | 'ws' | 'http2';
export const CARRIER_KINDS: readonly CarrierKind[] = ['tls', 'ws', 'http2'];

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

/**
 * One way of carrying the mux. `proxied` is the socket of a CONNECT tunnel to the server when a
 * forward proxy is configured; `signal` aborts at the connect timeout.
 */
export type CarrierOpener = (options: CarrierOptions, proxied: net.Socket | undefined, signal: AbortSignal) => Promise<Carrier>;

const OPENERS: Record<CarrierKind, CarrierOpener> = { tls: openTlsCarrier, ws: openWebSocketCarrier, http2: openHttp2Carrier };

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

export async function openCarrier(options: CarrierOptions): Promise<Carrier> {
  const signal = AbortSignal.timeout(options.timeoutMs);
  const proxied = options.proxy ? await connectThroughProxy(options.proxy, options.server, signal) : undefined;
  return OPENERS[options.kind](options, proxied, signal);
}
