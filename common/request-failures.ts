// What a client of the hub sees when one of its requests fails, reduced to a kind and a stable
// code, so that load generators (the rolling-restart test, the `ha` bench) can tell the clean
// failures a dying replica may cause — a documented dial refusal, a connection reset, a connection
// closed before the whole answer, a Kubernetes Status — from a hang or garbage.
import { dialErrorHttpStatus, isDialErrorCode } from '../wire/errors.js';

/** The CONNECT frontend answered something other than 200 (status, its Tunnel-Error header, the body). */
export class ConnectRefused extends Error {
  override readonly name = 'ConnectRefused';
  constructor(
    readonly status: number,
    readonly code: string | undefined,
    readonly body: string,
  ) {
    super(`CONNECT answered ${status} ${code ?? ''}: ${body.trim()}`);
  }
}

/** The connection ended (cleanly, with a FIN) before the whole answer: before a response head, or a short body. */
export class ClosedEarly extends Error {
  override readonly name = 'ClosedEarly';
  readonly code = 'CLOSED_EARLY';
}

/** No complete answer within the client's deadline. */
export class RequestTimeout extends Error {
  override readonly name = 'RequestTimeout';
  readonly code = 'TIMEOUT';
}

/** An HTTP response with a status the client did not ask for, and its body. */
export class UnexpectedStatus extends Error {
  override readonly name = 'UnexpectedStatus';
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`HTTP ${status}: ${body.slice(0, 200)}`);
  }
}

export type FailureKind =
  /** A documented dial error: the Tunnel-Error code of the README's table, with its HTTP status. */
  | 'refused'
  /** The TCP connection was reset or refused (ECONNRESET, "socket hang up", EPIPE, ECONNREFUSED). */
  | 'reset'
  /** The connection ended before the whole answer. */
  | 'closed'
  /** An HTTP error answered as a Kubernetes Status (kind Status, its code equal to the HTTP status). */
  | 'status'
  /** No answer within the client's deadline: a hang, never clean. */
  | 'hang'
  /** Anything else (a refusal without a documented code, an unparseable answer…): never clean. */
  | 'unexpected';

export interface ClassifiedFailure {
  kind: FailureKind;
  /** Stable: the Tunnel-Error code, the errno code, the Status reason, CLOSED_EARLY, TIMEOUT; for 'unexpected' the error's code or name. */
  code: string;
  message: string;
}

const RESET_ERRNOS = new Set(['ECONNRESET', 'EPIPE', 'ECONNREFUSED']);

export function classifyFailure(error: unknown): ClassifiedFailure {
  if (!(error instanceof Error)) return { kind: 'unexpected', code: typeof error, message: String(error) };
  const message = error.message;
  if (error instanceof ConnectRefused) {
    return isDialErrorCode(error.code) && dialErrorHttpStatus(error.code) === error.status
      ? { kind: 'refused', code: error.code, message }
      : { kind: 'unexpected', code: `CONNECT_${error.status}`, message };
  }
  if (error instanceof ClosedEarly) return { kind: 'closed', code: error.code, message };
  if (error instanceof RequestTimeout) return { kind: 'hang', code: error.code, message };
  if (error instanceof UnexpectedStatus) {
    const reason = statusReason(error.body, error.status);
    return reason ? { kind: 'status', code: reason, message } : { kind: 'unexpected', code: `HTTP_${error.status}`, message };
  }
  const errno = (error as NodeJS.ErrnoException).code;
  if (typeof errno === 'string' && RESET_ERRNOS.has(errno)) return { kind: 'reset', code: errno, message };
  return { kind: 'unexpected', code: typeof errno === 'string' ? errno : error.name, message };
}

/** A failure a client may see when a replica dies under it, handled by retrying: not a hang, not garbage. */
export function isCleanFailure(failure: ClassifiedFailure): boolean {
  return failure.kind === 'refused' || failure.kind === 'reset' || failure.kind === 'closed' || failure.kind === 'status';
}

/** The reason of a Kubernetes Status body whose code is the response's status; null for anything else. */
function statusReason(body: string, status: number): string | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return null;
  }
  const s = parsed as { kind?: unknown; code?: unknown; reason?: unknown };
  if (s === null || typeof s !== 'object' || s.kind !== 'Status' || s.code !== status) return null;
  return typeof s.reason === 'string' && s.reason !== '' ? s.reason : `HTTP_${status}`;
}
