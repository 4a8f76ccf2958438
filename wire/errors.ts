// Errors with stable codes, in the manner of undici: callers switch on `code`, never on text.

/** Why a dial did not produce a stream. Frontends map these to HTTP statuses. */
export type DialErrorCode =
  | 'BAD_TARGET' // malformed host:port
  | 'UNKNOWN_CLUSTER' // no agent has ever been registered for the cluster name
  | 'NO_AGENT' // the cluster is known but no agent link is up
  | 'AGENT_DRAINING' // every link of the cluster is draining
  | 'STREAM_LIMIT' // every usable link is at its stream limit
  | 'TOO_MANY_PENDING' // the server's pending-dial limit is reached
  | 'POLICY_DENIED' // the agent's destination allowlist refused it
  | 'NAME_NOT_RESOLVED'
  | 'CONNECTION_REFUSED'
  | 'HOST_UNREACHABLE'
  | 'DIAL_TIMEOUT'
  | 'LINK_LOST' // the agent link died while the dial was pending
  | 'CANCELLED' // the caller gave up
  | 'FORBIDDEN' // the caller may not reach this cluster
  | 'DIAL_FAILED'; // any other failure reported by the agent

const DIAL_HTTP_STATUS: Record<DialErrorCode, number> = {
  BAD_TARGET: 400,
  UNKNOWN_CLUSTER: 404,
  NO_AGENT: 503,
  AGENT_DRAINING: 503,
  STREAM_LIMIT: 503,
  TOO_MANY_PENDING: 503,
  POLICY_DENIED: 403,
  FORBIDDEN: 403,
  NAME_NOT_RESOLVED: 502,
  CONNECTION_REFUSED: 502,
  HOST_UNREACHABLE: 502,
  DIAL_FAILED: 502,
  LINK_LOST: 502,
  DIAL_TIMEOUT: 504,
  CANCELLED: 499,
};

export function isDialErrorCode(code: unknown): code is DialErrorCode {
  return typeof code === 'string' && Object.hasOwn(DIAL_HTTP_STATUS, code);
}

/** The HTTP status a frontend answers a dial error with. */
export function dialErrorHttpStatus(code: DialErrorCode): number {
  return DIAL_HTTP_STATUS[code];
}

export class DialError extends Error {
  override readonly name = 'DialError';
  readonly httpStatus: number;
  constructor(
    readonly code: DialErrorCode,
    message: string,
  ) {
    super(message);
    this.httpStatus = dialErrorHttpStatus(code);
  }
}

/** Why an established stream was aborted. */
export type ResetCode =
  | 'CANCEL' // the peer closed the stream before both sides finished
  | 'FLOW_CONTROL' // the peer sent more than its window
  | 'PROTOCOL' // the peer sent a frame that is not valid for the stream's state
  | 'DESTINATION_ERROR' // the agent's connection to the destination failed
  | 'CLIENT_ERROR' // the server-side client connection failed
  | 'LINK_LOST' // the carrier link died
  | 'SHUTDOWN'; // the process is exiting and its drain deadline passed

const RESET_CODES = new Set<string>([
  'CANCEL',
  'FLOW_CONTROL',
  'PROTOCOL',
  'DESTINATION_ERROR',
  'CLIENT_ERROR',
  'LINK_LOST',
  'SHUTDOWN',
]);

export function isResetCode(code: unknown): code is ResetCode {
  return typeof code === 'string' && RESET_CODES.has(code);
}

export class StreamResetError extends Error {
  override readonly name = 'StreamResetError';
  constructor(
    readonly code: ResetCode,
    message: string,
    /** True when the peer (or the link) reset the stream, false when we did. */
    readonly remote = true,
  ) {
    super(message);
  }
}

/** The peer broke the framing or the link's rules; the link is closed. */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  readonly code = 'PROTOCOL_ERROR';
}

/** Link failure; every stream and pending open on the link fails with it. */
export class LinkClosedError extends Error {
  override readonly name = 'LinkClosedError';
  readonly code = 'LINK_LOST';
}

/** Why the server refused or closed an agent link, sent as the `code` of a GOAWAY. */
export type LinkRefusalCode = 'CERTIFICATE_REVOKED'; // the agent's certificate serial is on the server's deny-list

const LINK_REFUSAL_CODES = new Set<string>(['CERTIFICATE_REVOKED']);

export function isLinkRefusalCode(code: unknown): code is LinkRefusalCode {
  return typeof code === 'string' && LINK_REFUSAL_CODES.has(code);
}

/** The server refused the link before its HELLO (e.g. a revoked certificate); retrying the same credentials will not help. */
export class LinkRefusedError extends Error {
  override readonly name = 'LinkRefusedError';
  constructor(
    readonly code: LinkRefusalCode,
    message: string,
  ) {
    super(`server refused the link (${code}): ${message}`);
  }
}
