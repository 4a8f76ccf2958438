// What the agent and the hub agree on for the HTTP/2 carrier: the request that carries the mux and
// the HTTP/2 settings both ends use. (The mux itself is unchanged: it runs on the stream's bytes.)
import type { Settings } from 'node:http2';

/** The one long-lived request: POST /v1/tunnel, a bidirectional stream like a gRPC call. */
export const HTTP2_TUNNEL_METHOD = 'POST';
export const HTTP2_TUNNEL_PATH = '/v1/tunnel';
export const HTTP2_TUNNEL_CONTENT_TYPE = 'application/fedtunnel';

/**
 * HTTP/2 flow-control window of the tunnel stream and of the connection, each direction.
 *
 * Raised from HTTP/2's 64 KiB so that HTTP/2 does not throttle the mux, whose own per-stream
 * windows do the real flow control. Not higher, because of how Node's http2 reads: a session stops
 * reading its socket while one of its own socket writes is pending (node_http2.cc,
 * MaybeStopReading). When both directions carry more unacknowledged bytes than the sockets between
 * the two ends can buffer, each end's write waits for the other to read and neither reads again:
 * the link hangs. Bounding what HTTP/2 lets be in flight per direction to 1 MiB keeps it inside the
 * kernel's socket buffers (measured on loopback: a 200 MB transfer each way at once hangs with 8 MiB
 * windows, passes with 4 MiB and below).
 */
export const HTTP2_WINDOW = 1024 * 1024;

/** Frames up to 64 KiB - 1 (the HTTP/2 default is 16 KiB): fewer frame headers per mux DATA frame. */
export const HTTP2_MAX_FRAME = 65_535;

export const HTTP2_SETTINGS: Settings = {
  initialWindowSize: HTTP2_WINDOW,
  maxFrameSize: HTTP2_MAX_FRAME,
  // The agent opens one stream; the hub opens none (a front proxy may share its connection).
  maxConcurrentStreams: 100,
  enablePush: false,
};

/**
 * Through a trusted HTTP/2 front proxy (README "HTTP/2 carrier"): the agent certificate the proxy
 * verified, DER in base64. The hub ignores it from anyone but a configured front proxy.
 */
export const FORWARDED_AGENT_CERT_HEADER = 'x-fedtunnel-agent-certificate';
