// Errors of requests to member clusters, with stable codes the controller switches on (and
// counts in fedtunnel_federation_member_errors_total): from a member's Status answer, a tunnel
// dial that failed, TLS verification, or our own deadline.

export type MemberErrorCode =
  | 'NotFound'
  | 'AlreadyExists'
  | 'Conflict'
  | 'Invalid'
  | 'BadRequest'
  | 'Forbidden'
  | 'Unauthorized'
  | 'Gone'
  | 'ServerError'
  | 'Timeout' // our request deadline passed (a member that hangs)
  | 'Unreachable' // the tunnel could not reach the member's API server (no agent, refused, …)
  | 'TLSError' // the member's certificate did not verify against caBundle
  | 'Error';

export class MemberError extends Error {
  override readonly name = 'MemberError';
  constructor(
    readonly code: MemberErrorCode,
    message: string,
    /** The member's HTTP status, when it answered at all. */
    readonly status?: number,
  ) {
    super(message);
  }
}

const BY_STATUS: Record<number, MemberErrorCode> = { 400: 'BadRequest', 401: 'Unauthorized', 403: 'Forbidden', 404: 'NotFound', 409: 'Conflict', 410: 'Gone', 422: 'Invalid', 504: 'Timeout' };

/** From a member's non-2xx answer (its body is normally a Kubernetes Status). */
export function errorFromResponse(status: number, body: unknown): MemberError {
  let parsed: { reason?: string; message?: string } = {};
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body) as typeof parsed;
    } catch {
      parsed = { message: body.slice(0, 200) };
    }
  } else if (body && typeof body === 'object') parsed = body as typeof parsed;
  const code: MemberErrorCode = status === 409 && parsed.reason === 'AlreadyExists' ? 'AlreadyExists' : (BY_STATUS[status] ?? (status >= 500 ? 'ServerError' : 'Error'));
  return new MemberError(code, `${status}${parsed.reason ? ` ${parsed.reason}` : ''}: ${parsed.message ?? 'no message'}`, status);
}

const TLS_CODES = /^(ERR_TLS_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|ERR_SSL_)/;

/** From a request that got no answer: a dial error, TLS, a reset stream, or our deadline. */
export function errorFromFailure(err: unknown): MemberError {
  if (err instanceof MemberError) return err;
  const e = err as { name?: string; code?: string; message?: string; cause?: unknown; type?: string };
  if (e.name === 'AbortError' || e.type === 'aborted') return new MemberError('Timeout', 'the member did not answer in time');
  // node-fetch wraps the socket error and copies its code.
  if (e.code === 'Unreachable') return new MemberError('Unreachable', e.message ?? 'unreachable');
  if (e.code && TLS_CODES.test(e.code)) return new MemberError('TLSError', `TLS: ${e.code}: ${e.message ?? ''}`);
  if (e.cause) return errorFromFailure(e.cause);
  return new MemberError('Error', e.message ?? String(err));
}
