// The WebSocket carrier (wss://server/v1/tunnel) for networks that only let HTTPS/1.1 out. Each
// batch of mux frames travels as one binary message.
import type net from 'node:net';
import tls from 'node:tls';
import { WebSocket, createWebSocketStream } from 'ws';
import { WEBSOCKET_PATH } from '../../wire/frames.js';
import { formatHostPort } from '../../common/address.js';
import type { Carrier, CarrierOptions } from '../connector.js';
import { tlsOptions } from './tls.js';

export async function openWebSocketCarrier(options: CarrierOptions, proxied: net.Socket | undefined, _signal: AbortSignal): Promise<Carrier> {
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
