// What every agent carrier on the hub's agent port hands the listener: a byte stream for the mux,
// and who is on the other end. Each carrier (tls.ts, websocket.ts, http2.ts) owns one ALPN protocol
// of the shared TLS port; agent-listener.ts picks the carrier by the negotiated protocol.
import type tls from 'node:tls';
import type { Duplex } from 'node:stream';
import type { AgentIdentity } from '../../certs/identity.js';
import type { CarrierKind } from '../registry.js';

export interface AgentCarrierLink {
  /** The mux runs on this. */
  stream: Duplex;
  /** Message-oriented carriers want each batch of frames as one write. */
  coalesceWrites: boolean;
  kind: CarrierKind;
  /** From a verified certificate: the agent's own, or one a trusted front proxy forwarded. */
  identity: AgentIdentity;
  /** Serial of that certificate (revocation). */
  serial: string | undefined;
  /** The TLS connection the link arrived on (the listener guard's bookkeeping is per connection). */
  socket: tls.TLSSocket;
  /** The agent's address, or the front proxy's when it came through one. */
  remoteAddress: string;
}

/** Hands a carrier's link to the mux (AgentListener.attach). */
export type AttachLink = (link: AgentCarrierLink) => void;

export interface AgentCarrier {
  /** The ALPN protocol this carrier serves on the agent port. */
  readonly alpn: string;
  /** A TLS connection the guard let through (verified certificate) that negotiated `alpn`. */
  accept(socket: tls.TLSSocket): void;
  /** Shutdown: closes what the carrier holds that is not yet a link. */
  close(): void;
}
