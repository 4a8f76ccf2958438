// SPDY/3.1 framing (pure): a parser that turns bytes into frames (a state machine that keeps a
// partial frame between pushes and throws only SpdyProtocolError), a frame encoder, and the
// name/value header block codec. Header blocks stay compressed here; header-compression.ts holds
// the per-direction zlib contexts, because those are state of a session, not of a frame.
// Kubernetes clients (moby/spdystream) send exactly these frames; see README "Pods in member mode".

export const SPDY_VERSION = 3;
/** The 24-bit length field bounds every frame. */
export const MAX_FRAME_LENGTH = 0xffffff;
/** Control frames carry headers and settings only; a larger one is an attack or a bug. */
export const DEFAULT_MAX_CONTROL_LENGTH = 1024 * 1024;

export const FrameType = {
  SYN_STREAM: 1,
  SYN_REPLY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  HEADERS: 8,
  WINDOW_UPDATE: 9,
} as const;

export const FLAG_FIN = 0x01;
export const FLAG_UNIDIRECTIONAL = 0x02;
export const FLAG_SETTINGS_CLEAR = 0x01;
export const SETTINGS_INITIAL_WINDOW_SIZE = 7;

/** RST_STREAM status codes (SPDY/3.1 §2.4.2). */
export const RstStatus = {
  PROTOCOL_ERROR: 1,
  INVALID_STREAM: 2,
  REFUSED_STREAM: 3,
  UNSUPPORTED_VERSION: 4,
  CANCEL: 5,
  INTERNAL_ERROR: 6,
  FLOW_CONTROL_ERROR: 7,
  STREAM_IN_USE: 8,
  STREAM_ALREADY_CLOSED: 9,
  FRAME_TOO_LARGE: 11,
} as const;

export const GoAwayStatus = { OK: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2 } as const;

export interface SettingsEntry {
  flags: number;
  id: number;
  value: number;
}

export type Frame =
  | { type: 'data'; streamId: number; fin: boolean; data: Buffer }
  | { type: 'syn_stream'; streamId: number; associatedId: number; priority: number; slot: number; fin: boolean; unidirectional: boolean; headerBlock: Buffer }
  | { type: 'syn_reply'; streamId: number; fin: boolean; headerBlock: Buffer }
  | { type: 'rst_stream'; streamId: number; status: number }
  | { type: 'settings'; clear: boolean; entries: SettingsEntry[] }
  | { type: 'ping'; id: number }
  | { type: 'goaway'; lastGoodStreamId: number; status: number }
  | { type: 'headers'; streamId: number; fin: boolean; headerBlock: Buffer }
  | { type: 'window_update'; streamId: number; delta: number };

export type SpdyErrorCode = 'UNSUPPORTED_VERSION' | 'FRAME_TOO_LARGE' | 'INVALID_FRAME' | 'INVALID_HEADER_BLOCK' | 'COMPRESSION';

export class SpdyProtocolError extends Error {
  constructor(
    readonly code: SpdyErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SpdyProtocolError';
  }
}

const STREAM_ID_MASK = 0x7fffffff;

/**
 * Bytes in, frames out. After a SpdyProtocolError the parser stays failed (a SPDY session cannot
 * resynchronise after a bad frame: the caller sends GOAWAY and closes).
 */
export class SpdyParser {
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private failed: SpdyProtocolError | null = null;

  constructor(private readonly maxControlLength = DEFAULT_MAX_CONTROL_LENGTH) {}

  push(chunk: Buffer): Frame[] {
    if (this.failed) throw this.failed;
    if (chunk.length > 0) {
      this.buffered.push(chunk);
      this.bufferedBytes += chunk.length;
    }
    const frames: Frame[] = [];
    try {
      for (;;) {
        if (this.bufferedBytes < 8) break;
        const head = this.peek(8);
        const length = head.readUIntBE(5, 3);
        const control = (head[0]! & 0x80) !== 0;
        if (control) {
          const version = head.readUInt16BE(0) & 0x7fff;
          if (version !== SPDY_VERSION) throw new SpdyProtocolError('UNSUPPORTED_VERSION', `SPDY version ${version} is not supported`);
          if (length > this.maxControlLength) throw new SpdyProtocolError('FRAME_TOO_LARGE', `control frame of ${length} bytes exceeds ${this.maxControlLength}`);
        }
        if (this.bufferedBytes < 8 + length) break;
        const whole = this.take(8 + length);
        const frame = parseFrame(whole.subarray(0, 8), whole.subarray(8));
        if (frame) frames.push(frame);
      }
    } catch (err) {
      this.failed = err instanceof SpdyProtocolError ? err : new SpdyProtocolError('INVALID_FRAME', (err as Error).message);
      throw this.failed;
    }
    return frames;
  }

  private peek(n: number): Buffer {
    if (this.buffered[0]!.length < n) this.buffered = [Buffer.concat(this.buffered)];
    return this.buffered[0]!.subarray(0, n);
  }

  private take(n: number): Buffer {
    if (this.buffered[0]!.length < n) this.buffered = [Buffer.concat(this.buffered)];
    const first = this.buffered[0]!;
    const out = first.subarray(0, n);
    if (first.length === n) this.buffered.shift();
    else this.buffered[0] = first.subarray(n);
    this.bufferedBytes -= n;
    return out;
  }
}

function need(payload: Buffer, n: number, what: string): void {
  if (payload.length < n) throw new SpdyProtocolError('INVALID_FRAME', `${what} frame needs ${n} bytes, has ${payload.length}`);
}

/** One whole frame (8-byte head + payload); null for a control frame type SPDY says to ignore. */
function parseFrame(head: Buffer, payload: Buffer): Frame | null {
  const flags = head[4]!;
  if ((head[0]! & 0x80) === 0) {
    // Data frames are copied out: the parser's buffer may be reused for the next push.
    return { type: 'data', streamId: head.readUInt32BE(0) & STREAM_ID_MASK, fin: (flags & FLAG_FIN) !== 0, data: Buffer.from(payload) };
  }
  const type = head.readUInt16BE(2);
  switch (type) {
    case FrameType.SYN_STREAM:
      need(payload, 10, 'SYN_STREAM');
      return {
        type: 'syn_stream',
        streamId: payload.readUInt32BE(0) & STREAM_ID_MASK,
        associatedId: payload.readUInt32BE(4) & STREAM_ID_MASK,
        priority: payload[8]! >> 5,
        slot: payload[9]!,
        fin: (flags & FLAG_FIN) !== 0,
        unidirectional: (flags & FLAG_UNIDIRECTIONAL) !== 0,
        headerBlock: Buffer.from(payload.subarray(10)),
      };
    case FrameType.SYN_REPLY:
      need(payload, 4, 'SYN_REPLY');
      return { type: 'syn_reply', streamId: payload.readUInt32BE(0) & STREAM_ID_MASK, fin: (flags & FLAG_FIN) !== 0, headerBlock: Buffer.from(payload.subarray(4)) };
    case FrameType.RST_STREAM:
      if (payload.length !== 8) throw new SpdyProtocolError('INVALID_FRAME', `RST_STREAM frame must be 8 bytes, is ${payload.length}`);
      return { type: 'rst_stream', streamId: payload.readUInt32BE(0) & STREAM_ID_MASK, status: payload.readUInt32BE(4) };
    case FrameType.SETTINGS: {
      need(payload, 4, 'SETTINGS');
      const count = payload.readUInt32BE(0);
      if (payload.length !== 4 + count * 8) throw new SpdyProtocolError('INVALID_FRAME', `SETTINGS frame with ${count} entries must be ${4 + count * 8} bytes, is ${payload.length}`);
      const entries: SettingsEntry[] = [];
      for (let i = 0; i < count; i++) {
        const at = 4 + i * 8;
        entries.push({ flags: payload[at]!, id: payload.readUIntBE(at + 1, 3), value: payload.readUInt32BE(at + 4) });
      }
      return { type: 'settings', clear: (flags & FLAG_SETTINGS_CLEAR) !== 0, entries };
    }
    case FrameType.PING:
      if (payload.length !== 4) throw new SpdyProtocolError('INVALID_FRAME', `PING frame must be 4 bytes, is ${payload.length}`);
      return { type: 'ping', id: payload.readUInt32BE(0) };
    case FrameType.GOAWAY:
      if (payload.length !== 8) throw new SpdyProtocolError('INVALID_FRAME', `GOAWAY frame must be 8 bytes, is ${payload.length}`);
      return { type: 'goaway', lastGoodStreamId: payload.readUInt32BE(0) & STREAM_ID_MASK, status: payload.readUInt32BE(4) };
    case FrameType.HEADERS:
      need(payload, 4, 'HEADERS');
      return { type: 'headers', streamId: payload.readUInt32BE(0) & STREAM_ID_MASK, fin: (flags & FLAG_FIN) !== 0, headerBlock: Buffer.from(payload.subarray(4)) };
    case FrameType.WINDOW_UPDATE:
      if (payload.length !== 8) throw new SpdyProtocolError('INVALID_FRAME', `WINDOW_UPDATE frame must be 8 bytes, is ${payload.length}`);
      return { type: 'window_update', streamId: payload.readUInt32BE(0) & STREAM_ID_MASK, delta: payload.readUInt32BE(4) & STREAM_ID_MASK };
    default:
      // SPDY/3 §2.2.1: a receiver ignores control frames of unknown type.
      return null;
  }
}

function control(type: number, flags: number, payload: Buffer): Buffer {
  if (payload.length > MAX_FRAME_LENGTH) throw new RangeError(`frame payload of ${payload.length} bytes exceeds the 24-bit length`);
  const head = Buffer.alloc(8);
  head.writeUInt16BE(0x8000 | SPDY_VERSION, 0);
  head.writeUInt16BE(type, 2);
  head[4] = flags;
  head.writeUIntBE(payload.length, 5, 3);
  return Buffer.concat([head, payload]);
}

function u32s(...values: number[]): Buffer {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeUInt32BE(v >>> 0, i * 4));
  return b;
}

/** The bytes of one frame (header blocks must already be compressed). */
export function encodeFrame(frame: Frame): Buffer {
  switch (frame.type) {
    case 'data': {
      if (frame.data.length > MAX_FRAME_LENGTH) throw new RangeError(`data frame of ${frame.data.length} bytes exceeds the 24-bit length`);
      const head = Buffer.alloc(8);
      head.writeUInt32BE(frame.streamId & STREAM_ID_MASK, 0);
      head[4] = frame.fin ? FLAG_FIN : 0;
      head.writeUIntBE(frame.data.length, 5, 3);
      return Buffer.concat([head, frame.data]);
    }
    case 'syn_stream': {
      const fixed = Buffer.alloc(10);
      fixed.writeUInt32BE(frame.streamId & STREAM_ID_MASK, 0);
      fixed.writeUInt32BE(frame.associatedId & STREAM_ID_MASK, 4);
      fixed[8] = (frame.priority & 0x7) << 5;
      fixed[9] = frame.slot & 0xff;
      return control(FrameType.SYN_STREAM, (frame.fin ? FLAG_FIN : 0) | (frame.unidirectional ? FLAG_UNIDIRECTIONAL : 0), Buffer.concat([fixed, frame.headerBlock]));
    }
    case 'syn_reply':
      return control(FrameType.SYN_REPLY, frame.fin ? FLAG_FIN : 0, Buffer.concat([u32s(frame.streamId & STREAM_ID_MASK), frame.headerBlock]));
    case 'rst_stream':
      return control(FrameType.RST_STREAM, 0, u32s(frame.streamId & STREAM_ID_MASK, frame.status));
    case 'settings': {
      const body = Buffer.alloc(4 + frame.entries.length * 8);
      body.writeUInt32BE(frame.entries.length, 0);
      frame.entries.forEach((e, i) => {
        const at = 4 + i * 8;
        body[at] = e.flags & 0xff;
        body.writeUIntBE(e.id & 0xffffff, at + 1, 3);
        body.writeUInt32BE(e.value >>> 0, at + 4);
      });
      return control(FrameType.SETTINGS, frame.clear ? FLAG_SETTINGS_CLEAR : 0, body);
    }
    case 'ping':
      return control(FrameType.PING, 0, u32s(frame.id));
    case 'goaway':
      return control(FrameType.GOAWAY, 0, u32s(frame.lastGoodStreamId & STREAM_ID_MASK, frame.status));
    case 'headers':
      return control(FrameType.HEADERS, frame.fin ? FLAG_FIN : 0, Buffer.concat([u32s(frame.streamId & STREAM_ID_MASK), frame.headerBlock]));
    case 'window_update':
      return control(FrameType.WINDOW_UPDATE, 0, u32s(frame.streamId & STREAM_ID_MASK, frame.delta & STREAM_ID_MASK));
  }
}

/** Header names are lower-case; a name with several values carries them NUL-separated (SPDY/3 §2.6.10). */
export type HeaderBlock = Map<string, string[]>;

/** The uncompressed name/value block of SYN_STREAM, SYN_REPLY and HEADERS. */
export function encodeHeaderBlock(headers: HeaderBlock): Buffer {
  const parts: Buffer[] = [u32s(headers.size)];
  for (const [name, values] of headers) {
    const n = Buffer.from(name.toLowerCase(), 'utf8');
    const v = Buffer.from(values.join('\0'), 'utf8');
    parts.push(u32s(n.length), n, u32s(v.length), v);
  }
  return Buffer.concat(parts);
}

export function decodeHeaderBlock(block: Buffer): HeaderBlock {
  const fail = (why: string): never => {
    throw new SpdyProtocolError('INVALID_HEADER_BLOCK', why);
  };
  if (block.length < 4) fail('header block shorter than its pair count');
  const count = block.readUInt32BE(0);
  let at = 4;
  const out: HeaderBlock = new Map();
  const field = (what: string): Buffer => {
    if (at + 4 > block.length) fail(`header block ends inside a ${what} length`);
    const len = block.readUInt32BE(at);
    at += 4;
    if (at + len > block.length) fail(`header ${what} of ${len} bytes overruns the block`);
    const b = block.subarray(at, at + len);
    at += len;
    return b;
  };
  for (let i = 0; i < count; i++) {
    const name = field('name').toString('utf8');
    if (name.length === 0) fail('empty header name');
    if (out.has(name)) fail(`duplicate header name ${name}`);
    const values = field('value').toString('utf8').split('\0');
    out.set(name, values);
  }
  if (at !== block.length) fail(`${block.length - at} bytes after the last header`);
  return out;
}
