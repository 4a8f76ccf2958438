// The WebSocket carrier (ALPN http/1.1, wss://hub/v1/tunnel), for networks that only let
// HTTPS/1.1 out. The same HTTP/1.1 server answers agent enrolment and renewal.
import http from 'node:http';
import type tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { WebSocketServer, createWebSocketStream } from 'ws';
import { agentIdentityFromPeer } from '../../certs/identity.js';
import type { ListenerGuard } from '../../common/listener-guard.js';
import { WEBSOCKET_PATH } from '../../wire/frames.js';
import type { EnrolmentEndpoint } from '../enrolment.js';
import type { AgentCarrier, AttachLink } from './carrier.js';

/** A batch of frames is one WebSocket message; bound it well above the largest batch we send. */
const MAX_WEBSOCKET_MESSAGE = 64 * 1024 * 1024;

export class WebSocketCarrier implements AgentCarrier {
  readonly alpn = 'http/1.1';
  private readonly http: http.Server;
  private readonly wss: WebSocketServer;

  constructor(attach: AttachLink, guard: ListenerGuard, enrolment: EnrolmentEndpoint | undefined) {
    this.http = http.createServer({ maxHeaderSize: 16 * 1024 }, (req, res) => {
      if (enrolment?.handles(req)) return enrolment.serve(req, res);
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`agents connect with a WebSocket upgrade on ${WEBSOCKET_PATH}\n`);
    });
    this.wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: MAX_WEBSOCKET_MESSAGE });
    this.http.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      const tlsSocket = req.socket as tls.TLSSocket;
      const peer = tlsSocket.getPeerCertificate();
      const identity = agentIdentityFromPeer(peer);
      if (req.url !== WEBSOCKET_PATH || !identity) {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        attach({ stream: createWebSocketStream(ws), coalesceWrites: true, kind: 'ws', identity, serial: peer.serialNumber, socket: tlsSocket, remoteAddress: tlsSocket.remoteAddress ?? '' });
      });
    });
    // The same guard: a WebSocket socket's header deadline starts when it is handed over.
    guard.protect(this.http);
  }

  accept(socket: tls.TLSSocket): void {
    this.http.emit('connection', socket);
  }

  close(): void {}
}
