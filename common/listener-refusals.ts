// Why a listener refused a connection, as pure decisions: TLS errors, certificate verification
// codes and HTTP parser errors each map to one stable reason (the `reason` label of
// fedtunnel_listener_refusals_total and of the warn log line), so an operator can tell an expired
// agent certificate from a port scanner without reading OpenSSL strings.

/**
 * Stable refusal reasons. A string union that grows as listeners learn new refusals (certificate
 * revocation adds 'revoked'); never rename one: dashboards and alerts match on them.
 */
export type RefusalReason =
  // time and resource limits (listener-guard.ts)
  | 'handshake_timeout'
  | 'header_timeout'
  | 'headers_too_large'
  | 'bad_request'
  | 'too_many_unauthenticated'
  | 'too_many_unauthenticated_per_address'
  // the client's certificate
  | 'no_certificate'
  | 'certificate_expired'
  | 'certificate_not_yet_valid'
  | 'unknown_ca'
  | 'bad_certificate'
  | 'wrong_certificate_purpose'
  | 'not_an_agent_certificate'
  | 'not_a_user_certificate'
  | 'not_a_replica_certificate'
  // API requests that authenticated as nobody (401; the token itself is never logged)
  | 'invalid_token'
  | 'no_credentials'
  // the TLS handshake itself
  | 'not_tls'
  | 'tls_version'
  | 'bad_alpn'
  | 'no_shared_cipher'
  | 'client_rejected_server_certificate'
  | 'tls_error'
  // after the handshake, on the agent listener
  | 'hello_timeout'
  | 'version_mismatch'
  // the certificate's serial is on the revocation list (--revoked; proxy-server/revocation.ts)
  | 'revoked';

/** OpenSSL X509_V_ERR_* names as Node reports them in `socket.authorizationError`. */
const VERIFY_REASONS: Record<string, RefusalReason> = {
  CERT_HAS_EXPIRED: 'certificate_expired',
  CERT_NOT_YET_VALID: 'certificate_not_yet_valid',
  UNABLE_TO_GET_ISSUER_CERT: 'unknown_ca',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'unknown_ca',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'unknown_ca',
  SELF_SIGNED_CERT_IN_CHAIN: 'unknown_ca',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'unknown_ca',
  CERT_UNTRUSTED: 'unknown_ca',
  INVALID_PURPOSE: 'wrong_certificate_purpose',
};

/** The reason for a client certificate that failed verification (`socket.authorizationError`). */
export function verifyErrorReason(code: string | Error | null | undefined): RefusalReason {
  const name = typeof code === 'string' ? code : (code as { code?: string } | null | undefined)?.code;
  return (name !== undefined && VERIFY_REASONS[name]) || 'bad_certificate';
}

/** Client-side alerts: the client refused *our* certificate (a misconfigured CA bundle on its side). */
const CLIENT_REJECTED = /^ERR_SSL_(SSLV3|TLSV1)_ALERT_(BAD_CERTIFICATE|CERTIFICATE_UNKNOWN|UNKNOWN_CA|CERTIFICATE_EXPIRED|UNSUPPORTED_CERTIFICATE|DECRYPT_ERROR|ACCESS_DENIED)$/;
/** Bytes that are not a TLS record at all: plain HTTP to a TLS port, random input, a port scanner. */
const NOT_TLS = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_HTTP_REQUEST', 'ERR_SSL_HTTPS_PROXY_REQUEST', 'ERR_SSL_UNKNOWN_PROTOCOL', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'ERR_SSL_RECORD_LENGTH_MISMATCH', 'ERR_SSL_BAD_PACKET_LENGTH', 'ERR_SSL_UNEXPECTED_MESSAGE', 'ERR_SSL_UNEXPECTED_RECORD', 'ERR_SSL_BAD_RECORD_TYPE', 'ERR_SSL_LENGTH_MISMATCH', 'ERR_SSL_BAD_LENGTH', 'ERR_SSL_RECORD_TOO_SMALL', 'ERR_SSL_ENCRYPTED_LENGTH_TOO_LONG']);
/** The client went away during the handshake: not a refusal of ours, nothing to count. */
const ABORTED = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ETIMEDOUT', 'ERR_STREAM_PREMATURE_CLOSE']);

/**
 * The reason for a 'tlsClientError' (a handshake that failed), or null when the client merely went
 * away (reset, closed) — that is not a refusal and is not counted.
 */
export function tlsErrorReason(error: { code?: string; message?: string }): RefusalReason | null {
  const code = error.code ?? '';
  if (ABORTED.has(code)) return null;
  if (code === 'ERR_TLS_HANDSHAKE_TIMEOUT') return 'handshake_timeout';
  if (code === 'ERR_SSL_NO_APPLICATION_PROTOCOL' || code === 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL') return 'bad_alpn';
  if (code === 'ERR_SSL_UNSUPPORTED_PROTOCOL' || code === 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' || code === 'ERR_SSL_VERSION_TOO_LOW') return 'tls_version';
  if (code === 'ERR_SSL_NO_SHARED_CIPHER' || code === 'ERR_SSL_NO_SUITABLE_SIGNATURE_ALGORITHM') return 'no_shared_cipher';
  if (code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE') return 'no_certificate';
  if (CLIENT_REJECTED.test(code)) return 'client_rejected_server_certificate';
  if (NOT_TLS.has(code)) return 'not_tls';
  if (VERIFY_REASONS[code]) return VERIFY_REASONS[code]!;
  if (code === '' && /socket hang up|ECONNRESET/.test(error.message ?? '')) return null;
  return 'tls_error';
}

export interface HttpRefusal {
  status: 400 | 408 | 431;
  reason: RefusalReason;
}

/**
 * What an HTTP listener answers to an http.Server 'clientError': 431 for oversized headers, 408
 * for Node's own request/header timeout, 400 for anything the parser could not read; null when
 * the client is simply gone (nothing to answer, not a refusal).
 */
export function httpClientErrorRefusal(error: { code?: string }): HttpRefusal | null {
  const code = error.code ?? '';
  // The client closed in the middle of a request head: it is gone, not refused.
  if (code === 'HPE_INVALID_EOF_STATE') return null;
  if (code === 'HPE_HEADER_OVERFLOW') return { status: 431, reason: 'headers_too_large' };
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'ERR_HTTP_HEADERS_TIMEOUT') return { status: 408, reason: 'header_timeout' };
  if (code.startsWith('HPE_')) return { status: 400, reason: 'bad_request' };
  return null;
}

/** The bytes of a refusal answer: a complete response that closes the connection. */
export function refusalResponse(status: number, reason: RefusalReason): string {
  const body = `${reason}\n`;
  const text = ({ 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' } as Record<number, string>)[status] ?? 'Error';
  return `HTTP/1.1 ${status} ${text}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`;
}
