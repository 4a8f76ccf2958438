// JSON payloads of control frames, validated on receipt: a peer's bytes are untrusted input.
import { MAX_WINDOW } from './frames.js';
import { ProtocolError, isDialErrorCode, isLinkRefusalCode, isResetCode, type DialErrorCode, type LinkRefusalCode, type ResetCode } from './errors.js';

export interface HelloMessage {
  version: number;
  /** Instance name of the sender (pod name, host name), for logs only: never used as identity. */
  instance: string;
  /** Per-stream receive window of the sender: the peer's initial send credit on every stream. */
  window: number;
  /**
   * Optional protocol extensions the sender understands (e.g. FEATURE_REPLICAS). Absent in older
   * releases; a receiver ignores names it does not know, so adding one needs no version bump.
   */
  features?: string[];
}

/** One live hub replica, as announced to agents in REPLICAS. */
export interface ReplicaAddress {
  /** The replica's identity: its --instance, which is also the `instance` of its HELLO. */
  id: string;
  /** host:port of the replica's own agent listener (its --advertise-agent-address). */
  address: string;
}

export interface ReplicasMessage {
  replicas: ReplicaAddress[];
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

/** More features or replicas than this is not a peer we want to talk to. */
const MAX_LIST = 64;

export function parseHello(payload: Buffer): HelloMessage {
  const o = parseObject(payload, 'HELLO');
  const hello: HelloMessage = {
    version: integer(o.version, 'HELLO.version', 0, 0xffff),
    instance: text(o.instance, 'HELLO.instance', 253),
    window: integer(o.window, 'HELLO.window', 1024, MAX_WINDOW),
  };
  if (o.features !== undefined) {
    if (!Array.isArray(o.features) || o.features.length > MAX_LIST) throw new ProtocolError(`HELLO.features must be an array of at most ${MAX_LIST} strings`);
    hello.features = o.features.map((f) => text(f, 'HELLO.features[]', 64));
  }
  return hello;
}

export function parseReplicas(payload: Buffer): ReplicasMessage {
  const o = parseObject(payload, 'REPLICAS');
  if (!Array.isArray(o.replicas) || o.replicas.length > MAX_LIST) throw new ProtocolError(`REPLICAS.replicas must be an array of at most ${MAX_LIST} entries`);
  const replicas = o.replicas.map((entry: unknown) => {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new ProtocolError('REPLICAS.replicas[] must be objects');
    const r = entry as Record<string, unknown>;
    const id = text(r.id, 'REPLICAS.replicas[].id', 253);
    const address = text(r.address, 'REPLICAS.replicas[].address', 261);
    if (id === '' || address === '') throw new ProtocolError('REPLICAS.replicas[] needs a non-empty id and address');
    return { id, address };
  });
  return { replicas };
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
