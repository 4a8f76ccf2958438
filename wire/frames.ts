// Frame layout shared by proxy-server and cluster-agent. Every frame is a fixed 10-byte header
// followed by `length` payload bytes:
//
//   0      1      2              6              10
//   +------+------+--------------+--------------+----------------
//   | type | flag |  stream id   |    length    |  payload ...
//   +------+------+--------------+--------------+----------------
//
// Stream id 0 addresses the link itself (HELLO, PING, PONG, GOAWAY, REPLICAS). Only the proxy-server opens
// streams; the agent answers. One id per tunneled connection from the first frame to the last
// (ANP's two-id scheme is the source of its cleanup races).

export const PROTOCOL_VERSION = 1;
/** ALPN id of the raw TLS carrier; the WebSocket carrier negotiates http/1.1 on the same port. */
export const ALPN_TUNNEL = 'fedtunnel/1';
export const WEBSOCKET_PATH = '/v1/tunnel';

export const HEADER_SIZE = 10;
/** Largest DATA payload a peer may send in one frame. */
export const MAX_DATA_PAYLOAD = 256 * 1024;
/** Largest payload of any other frame (JSON control messages are far smaller). */
export const MAX_CONTROL_PAYLOAD = 16 * 1024;
export const MAX_STREAM_ID = 0xffffffff;
/** Default per-stream receive window; each side announces its own in HELLO. */
export const DEFAULT_WINDOW = 4 * 1024 * 1024;
/** Flow-control windows are capped like HTTP/2's so credit arithmetic stays exact. */
export const MAX_WINDOW = 0x7fffffff;

export enum FrameType {
  /** Link handshake, both directions, JSON. */
  HELLO = 1,
  /** server → agent: open a connection to {host, port}, JSON. */
  OPEN = 2,
  /** agent → server: the destination connection is up. */
  OPEN_OK = 3,
  /** agent → server: the dial failed, JSON {code, message}. */
  OPEN_FAIL = 4,
  DATA = 5,
  /** Grants the peer `u32` more bytes of DATA on the stream. */
  WINDOW = 6,
  /** Half-close: the sender will send no more DATA on the stream. */
  FIN = 7,
  /** Abort the stream in both directions, JSON {code, message}. */
  RESET = 8,
  PING = 9,
  PONG = 10,
  /** The sender is going away: no new streams, open ones may finish. JSON {reason}. */
  GOAWAY = 11,
  /**
   * server → agent, stream 0: the live hub replicas the agent should hold a link to, JSON
   * {replicas: [{id, address}]}. Sent only to agents whose HELLO lists FEATURE_REPLICAS: an agent
   * without it (older releases) treats an unknown frame type as a protocol error.
   */
  REPLICAS = 12,
}

/** HELLO feature: the agent understands REPLICAS and keeps one link per hub replica. */
export const FEATURE_REPLICAS = 'replicas';

export function isKnownFrameType(type: number): type is FrameType {
  return type >= FrameType.HELLO && type <= FrameType.REPLICAS;
}
