// The HTTP/2 carrier, for egress that only passes HTTP/2 (an L7 load balancer or gateway that
// speaks gRPC): a mutual-TLS connection with ALPN h2 and one long-lived bidirectional request,
// POST /v1/tunnel, whose request and response bodies carry the mux both ways.
import http2 from 'node:http2';
import type net from 'node:net';
import { formatHostPort } from '../../common/address.js';
import { HTTP2_SETTINGS, HTTP2_TUNNEL_CONTENT_TYPE, HTTP2_TUNNEL_METHOD, HTTP2_TUNNEL_PATH, HTTP2_WINDOW } from '../../wire/http2-carrier.js';
import type { Carrier, CarrierOptions } from '../connector.js';
import { connectTls } from './tls.js';

export async function openHttp2Carrier(options: CarrierOptions, proxied: net.Socket | undefined, signal: AbortSignal): Promise<Carrier> {
  const socket = await connectTls(options, 'h2', proxied, signal);
  socket.setNoDelay(true);
  const session = http2.connect(`https://${formatHostPort(options.server)}`, { createConnection: () => socket, settings: HTTP2_SETTINGS });
  // Failures reach us through the tunnel stream (its 'error' and 'close'); the session only follows.
  session.on('error', () => undefined);
  session.once('connect', () => session.setLocalWindowSize(HTTP2_WINDOW));
  const stream = session.request(
    { ':method': HTTP2_TUNNEL_METHOD, ':path': HTTP2_TUNNEL_PATH, 'content-type': HTTP2_TUNNEL_CONTENT_TYPE },
    { endStream: false },
  );
  // The session lives exactly as long as its one stream.
  stream.once('close', () => session.destroy());
  const onAbort = (): void => void session.destroy(new Error(`carrier not established within ${options.timeoutMs} ms`));
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    await new Promise<void>((resolve, reject) => {
      const onClose = (): void => reject(new Error(`HTTP/2 tunnel request closed before a response${stream.rstCode ? ` (RST_STREAM ${stream.rstCode})` : ''}`));
      stream.once('error', reject);
      stream.once('close', onClose);
      stream.once('response', (headers) => {
        stream.off('error', reject);
        stream.off('close', onClose);
        const status = Number(headers[':status']);
        if (status === 200) return resolve();
        reject(new Error(`HTTP/2 tunnel request refused with ${status}`));
        stream.close(http2.constants.NGHTTP2_CANCEL);
      });
    });
  } catch (error) {
    session.destroy();
    throw error;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
  return { stream, coalesceWrites: false };
}
