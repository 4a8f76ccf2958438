// The raw TLS carrier (ALPN fedtunnel/1): the mux runs on the TLS socket itself; the cluster comes
// from the agent's certificate, which the listener guard already required and verified.
import type tls from 'node:tls';
import { agentIdentityFromPeer } from '../../certs/identity.js';
import { ALPN_TUNNEL } from '../../wire/frames.js';
import type { AgentCarrier, AttachLink } from './carrier.js';

export class TlsCarrier implements AgentCarrier {
  readonly alpn = ALPN_TUNNEL;

  constructor(private readonly attach: AttachLink) {}

  accept(socket: tls.TLSSocket): void {
    const peer = socket.getPeerCertificate();
    const identity = agentIdentityFromPeer(peer);
    // The guard refuses a fedtunnel/1 connection without an agent certificate before we get here.
    if (!identity) return void socket.destroy();
    socket.setNoDelay(true);
    this.attach({ stream: socket, coalesceWrites: false, kind: 'tls', identity, serial: peer.serialNumber, socket, remoteAddress: socket.remoteAddress ?? '' });
  }

  close(): void {}
}
