// JSON payloads of control frames, validated on receipt: a peer's bytes are untrusted input.
import { MAX_WINDOW } from './frames.js';
import { ProtocolError, isDialErrorCode, isLinkRefusalCode, isResetCode, type DialErrorCode, type LinkRefusalCode, type ResetCode } from './errors.js';

export interface HelloMessage {
  version: number;
  /** Instance name of the sender (pod name, host name), for logs only: never used as identity. */
  instance: string;
  /** Per-stream receive window of the sender: the peer's initial send credit on every stream. */
  window: number;
}

export interface OpenMessage {
  host: string;
  port: number;
  /** Stream id that follows the connection through both processes' logs. */
  sid: string;
  /** How long the agent may spend dialing the destination. */
  timeoutMs: number;
}

export interface OpenFailMessage {
  code: DialErrorCode;
  message: string;
}

export interface ResetMessage {
  code: ResetCode;
  message: string;
}

export interface GoAwayMessage {
  reason: string;
  /** Set when the server refuses or closes the link for a reason the agent should report as such. */
  code?: LinkRefusalCode;
}

const MAX_TEXT = 1024;

function parseObject(payload: Buffer, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new ProtocolError(`${what} payload is not JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ProtocolError(`${what} payload is not an object`);
  }
  return value as Record<string, unknown>;
}

function text(value: unknown, what: string, max = MAX_TEXT): string {
  if (typeof value !== 'string' || value.length > max) throw new ProtocolError(`${what} must be a string of at most ${max} characters`);
  return value;
}

function integer(value: unknown, what: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ProtocolError(`${what} must be an integer in [${min}, ${max}]`);
  }
  return value;
}

export function parseHello(payload: Buffer): HelloMessage {
  const o = parseObject(payload, 'HELLO');
  return {
    version: integer(o.version, 'HELLO.version', 0, 0xffff),
    instance: text(o.instance, 'HELLO.instance', 253),
    window: integer(o.window, 'HELLO.window', 1024, MAX_WINDOW),
  };
}

export function parseOpen(payload: Buffer): OpenMessage {
  const o = parseObject(payload, 'OPEN');
  return {
    host: text(o.host, 'OPEN.host', 253),
    port: integer(o.port, 'OPEN.port', 1, 65535),
    sid: text(o.sid, 'OPEN.sid', 64),
    timeoutMs: integer(o.timeoutMs, 'OPEN.timeoutMs', 1, 3_600_000),
  };
}

export function parseOpenFail(payload: Buffer): OpenFailMessage {
  const o = parseObject(payload, 'OPEN_FAIL');
  return { code: isDialErrorCode(o.code) ? o.code : 'DIAL_FAILED', message: text(o.message, 'OPEN_FAIL.message') };
}

export function parseReset(payload: Buffer): ResetMessage {
  const o = parseObject(payload, 'RESET');
  return { code: isResetCode(o.code) ? o.code : 'CANCEL', message: text(o.message, 'RESET.message') };
}

export function parseGoAway(payload: Buffer): GoAwayMessage {
  const o = parseObject(payload, 'GOAWAY');
  const reason = text(o.reason, 'GOAWAY.reason');
  // An unknown code (a newer server) is dropped: the reason still says what happened.
  return isLinkRefusalCode(o.code) ? { reason, code: o.code } : { reason };
}

/** Truncates free text sent to a peer so a long error message cannot break the frame limit. */
export function clip(message: string): string {
  return message.length > MAX_TEXT ? message.slice(0, MAX_TEXT - 1) + '…' : message;
}
