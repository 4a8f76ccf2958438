// Kubernetes `Status` answers of the /clusters proxy: every refusal and failure is one typed error
// (KubeProxyError, a stable reason and HTTP code) rendered as the JSON kubectl prints clearly.
import type http from 'node:http';

export type StatusReason =
  | 'BadRequest'
  | 'Unauthorized'
  | 'Forbidden'
  | 'NotFound'
  | 'ServiceUnavailable'
  | 'Timeout'
  | 'InternalError';

const CODES: Record<StatusReason, number> = {
  BadRequest: 400,
  Unauthorized: 401,
  Forbidden: 403,
  NotFound: 404,
  InternalError: 502,
  ServiceUnavailable: 503,
  Timeout: 504,
};

export class KubeProxyError extends Error {
  override readonly name = 'KubeProxyError';
  readonly code: number;
  constructor(
    readonly reason: StatusReason,
    message: string,
    code?: number,
  ) {
    super(message);
    this.code = code ?? CODES[reason];
  }
}

export interface KubeStatus {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure';
  message: string;
  reason: StatusReason;
  code: number;
}

export function statusOf(error: KubeProxyError): KubeStatus {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: error.message, reason: error.reason, code: error.code };
}

/** The Status as a full HTTP/1.1 response, for sockets (upgrades) that have no ServerResponse. */
export function rawStatusResponse(error: KubeProxyError, extraHeaders: Record<string, string> = {}): string {
  const body = JSON.stringify(statusOf(error));
  const extra = Object.entries(extraHeaders).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  return `HTTP/1.1 ${error.code} ${STATUS_TEXT[error.code] ?? 'Error'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}Connection: close\r\n\r\n${body}`;
}

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout' };

export function sendStatus(res: http.ServerResponse, error: KubeProxyError, extraHeaders: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(statusOf(error));
  res.writeHead(error.code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-cache, private', ...extraHeaders });
  res.end(body);
}

const UNAVAILABLE_DIAL_CODES = new Set(['NO_AGENT', 'UNKNOWN_CLUSTER', 'AGENT_DRAINING', 'STREAM_LIMIT', 'TOO_MANY_PENDING']);

/**
 * A failure reaching a joined cluster's API server (the dial through its agent, TLS, the
 * connection): no agent → 503, dial timeout → 504, anything else → 502. `dialCode` is the
 * DialError code TunnelAgent keeps on its error.
 */
export function upstreamError(cluster: string, error: Error & { dialCode?: unknown; code?: unknown }): KubeProxyError {
  const code = typeof error.dialCode === 'string' ? error.dialCode : undefined;
  if (code && UNAVAILABLE_DIAL_CODES.has(code)) return new KubeProxyError('ServiceUnavailable', `cluster ${JSON.stringify(cluster)} is joined but unreachable: ${error.message}`);
  if (code === 'DIAL_TIMEOUT') return new KubeProxyError('Timeout', `cluster ${JSON.stringify(cluster)}: the tunnel dial timed out: ${error.message}`);
  return new KubeProxyError('InternalError', `cluster ${JSON.stringify(cluster)}: ${error.message}`);
}
