// The raw TLS carrier: the mux runs directly on a mutual-TLS socket negotiated with ALPN
// fedtunnel/1. The cheapest carrier; the other carriers reuse its TLS settings.
import net from 'node:net';
import tls from 'node:tls';
import { ALPN_TUNNEL } from '../../wire/frames.js';
import type { Carrier, CarrierOptions } from '../connector.js';

export function tlsOptions(options: CarrierOptions, alpn: string): tls.ConnectionOptions {
  return {
    secureContext: options.secureContext,
    servername: net.isIP(options.serverName) ? undefined : options.serverName,
    // Verify the server certificate against the name we were told to expect, IP or DNS.
    checkServerIdentity: (_host, cert) => tls.checkServerIdentity(options.serverName, cert),
    ALPNProtocols: [alpn],
    minVersion: 'TLSv1.2',
  };
}

/** Resolves with a TLS socket that negotiated `alpn`; fails (and destroys it) on abort or another protocol. */
export function connectTls(options: CarrierOptions, alpn: string, proxied: net.Socket | undefined, signal: AbortSignal): Promise<tls.TLSSocket> {
  return new Promise<tls.TLSSocket>((resolve, reject) => {
    const s = tls.connect({ ...tlsOptions(options, alpn), host: options.server.host, port: options.server.port, socket: proxied });
    const onAbort = (): void => void s.destroy(new Error(`carrier not established within ${options.timeoutMs} ms`));
    signal.addEventListener('abort', onAbort, { once: true });
    s.once('secureConnect', () => {
      signal.removeEventListener('abort', onAbort);
      if (s.alpnProtocol !== alpn) {
        s.destroy();
        reject(new Error(`server did not negotiate ${alpn}`));
      } else resolve(s);
    });
    s.once('error', (error) => {
      signal.removeEventListener('abort', onAbort);
      reject(error);
    });
  });
}

export async function openTlsCarrier(options: CarrierOptions, proxied: net.Socket | undefined, signal: AbortSignal): Promise<Carrier> {
  const socket = await connectTls(options, ALPN_TUNNEL, proxied, signal);
  socket.setNoDelay(true);
  return { stream: socket, coalesceWrites: false };
}
