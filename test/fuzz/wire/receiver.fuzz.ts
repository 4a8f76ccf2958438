// Fuzzes the frame parser (wire/receiver.ts, layout of wire/frames.ts) with valid frame sequences
// split at arbitrary chunk boundaries, mutated sequences (bit flips, truncation, inserted and
// deleted bytes, lying length fields) and random bytes. Whatever arrives: the receiver delivers
// frames or throws ProtocolError, never holds more than one header and one control payload, and
// refuses an oversized length from the header alone.
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { FrameType, HEADER_SIZE, MAX_CONTROL_PAYLOAD, MAX_DATA_PAYLOAD, MAX_STREAM_ID } from '../../../wire/frames.js';
import { FrameReceiver } from '../../../wire/receiver.js';
import { ProtocolError } from '../../../wire/errors.js';
import { encodeControl, encodeHeader } from '../../../wire/sender.js';
import { fuzzTarget, splitAt } from '../support.js';

interface Frame {
  type: FrameType;
  streamId: number;
  payload: Buffer;
}

const BOUND = HEADER_SIZE + MAX_CONTROL_PAYLOAD;

/** Payload bytes: mostly small random ones, sometimes a large run up to `max` (cheap to generate). */
function payloadArb(max: number): fc.Arbitrary<Buffer> {
  return fc.oneof(
    { weight: 30, arbitrary: fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)) },
    { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 0, max }), fc.integer({ min: 0, max: 255 })).map(([n, fill]) => Buffer.alloc(n, fill)) },
  );
}

const streamIdArb = fc.oneof(fc.integer({ min: 0, max: 8 }), fc.integer({ min: 0, max: MAX_STREAM_ID }));

const frameArb: fc.Arbitrary<Frame> = fc.oneof(
  fc.record({ type: fc.constant(FrameType.DATA), streamId: streamIdArb.filter((id) => id !== 0), payload: payloadArb(MAX_DATA_PAYLOAD) }),
  fc.record({
    type: fc.constantFrom(...(Object.values(FrameType).filter((t) => typeof t === 'number' && t !== FrameType.DATA) as FrameType[])),
    streamId: streamIdArb,
    payload: payloadArb(MAX_CONTROL_PAYLOAD),
  }),
);

function encode(frame: Frame): Buffer {
  return frame.type === FrameType.DATA ? Buffer.concat([encodeHeader(FrameType.DATA, frame.streamId, frame.payload.length), frame.payload]) : encodeControl(frame.type, frame.streamId, frame.payload);
}

/** Feeds chunks, checking the buffering bound after each; returns the frames seen, or the ProtocolError. */
function run(chunks: Buffer[]): { frames: Frame[]; error: ProtocolError | null } {
  const frames: Frame[] = [];
  const receiver = new FrameReceiver({
    onControl: (type, streamId, payload) => {
      assert.ok(payload.length <= MAX_CONTROL_PAYLOAD, `control payload of ${payload.length} bytes delivered`);
      frames.push({ type, streamId, payload: Buffer.from(payload) });
    },
    onData: (streamId, chunk) => {
      assert.ok(chunk.length > 0, 'empty DATA slice delivered');
      assert.ok(chunk.length <= MAX_DATA_PAYLOAD);
      frames.push({ type: FrameType.DATA, streamId, payload: Buffer.from(chunk) });
    },
  });
  try {
    for (const chunk of chunks) {
      receiver.feed(chunk);
      assert.ok(receiver.bufferedBytes <= BOUND, `receiver holds ${receiver.bufferedBytes} bytes`);
    }
  } catch (error) {
    if (error instanceof ProtocolError) return { frames, error };
    throw error;
  }
  return { frames, error: null };
}

/**
 * What a receiver reports for `frames`, comparable whatever the chunking: DATA slices of one stream
 * that follow each other are joined, and empty DATA frames deliver nothing.
 */
function normalize(frames: Frame[]): Frame[] {
  const out: Frame[] = [];
  for (const f of frames) {
    if (f.type === FrameType.DATA && f.payload.length === 0) continue;
    const last = out.at(-1);
    if (f.type === FrameType.DATA && last?.type === FrameType.DATA && last.streamId === f.streamId) last.payload = Buffer.concat([last.payload, f.payload]);
    else out.push({ ...f });
  }
  return out;
}

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; count: number }
  | { kind: 'length'; frame: number; length: number }
  | { kind: 'type'; frame: number; type: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 12 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 12 }) }),
  fc.record({
    kind: fc.constant('length' as const),
    frame: fc.nat(),
    length: fc.oneof(fc.constantFrom(0, 1, MAX_CONTROL_PAYLOAD, MAX_CONTROL_PAYLOAD + 1, MAX_DATA_PAYLOAD, MAX_DATA_PAYLOAD + 1, 0x7fffffff, 0xffffffff), fc.nat({ max: 0xffffffff })),
  }),
  fc.record({ kind: fc.constant('type' as const), frame: fc.nat(), type: fc.integer({ min: 0, max: 255 }) }),
);

/** Applies mutations to the encoded frames; header mutations address a frame by index. */
function mutate(frames: Frame[], mutations: Mutation[]): Buffer {
  const encoded = frames.map(encode);
  const starts: number[] = [];
  let offset = 0;
  for (const e of encoded) {
    starts.push(offset);
    offset += e.length;
  }
  let bytes = Buffer.concat(encoded);
  for (const m of mutations) {
    const at = bytes.length === 0 ? 0 : m.kind === 'length' || m.kind === 'type' ? 0 : m.at % bytes.length;
    switch (m.kind) {
      case 'flip':
        if (bytes.length > 0) bytes[at] = bytes[at]! ^ (1 << m.bit);
        break;
      case 'truncate':
        bytes = bytes.subarray(0, at);
        break;
      case 'insert':
        bytes = Buffer.concat([bytes.subarray(0, at), m.bytes, bytes.subarray(at)]);
        break;
      case 'delete':
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + m.count)]);
        break;
      case 'length':
      case 'type': {
        if (starts.length === 0) break;
        const start = starts[m.frame % starts.length]!;
        if (start + HEADER_SIZE > bytes.length) break;
        bytes = Buffer.from(bytes);
        if (m.kind === 'length') bytes.writeUInt32BE(m.length, start + 6);
        else bytes[start] = m.type;
        break;
      }
    }
  }
  return bytes;
}

const cutsArb = fc.array(fc.nat(), { maxLength: 12 });

fuzzTarget('wire/receiver', {
  'valid frames split at any chunk boundaries arrive exactly as sent': {
    runs: 60_000,
    property: () =>
      fc.property(fc.array(frameArb, { maxLength: 8 }), cutsArb, (frames, cuts) => {
        const { frames: seen, error } = run(splitAt(Buffer.concat(frames.map(encode)), cuts));
        assert.equal(error, null);
        assert.deepEqual(normalize(seen), normalize(frames));
      }),
  },
  'mutated frame sequences: frames or ProtocolError, bounded buffering': {
    runs: 150_000,
    property: () =>
      fc.property(fc.array(frameArb, { minLength: 1, maxLength: 6 }), fc.array(mutationArb, { minLength: 1, maxLength: 4 }), cutsArb, (frames, mutations, cuts) => {
        run(splitAt(mutate(frames, mutations), cuts));
      }),
  },
  'random bytes: frames or ProtocolError, bounded buffering': {
    runs: 100_000,
    property: () =>
      fc.property(fc.uint8Array({ maxLength: 256 }), cutsArb, (bytes, cuts) => {
        run(splitAt(Buffer.from(bytes), cuts));
      }),
  },
  'an oversized or unknown header is refused from its 10 bytes, before any payload': {
    runs: 50_000,
    property: () =>
      fc.property(fc.integer({ min: 0, max: 255 }), streamIdArb, fc.nat({ max: 0xffffffff }), fc.nat({ max: HEADER_SIZE }), (type, streamId, length, firstCut) => {
        const header = Buffer.alloc(HEADER_SIZE);
        header[0] = type;
        header.writeUInt32BE(streamId, 2);
        header.writeUInt32BE(length, 6);
        const known = type >= FrameType.HELLO && type <= FrameType.REPLICAS;
        const limit = type === FrameType.DATA ? MAX_DATA_PAYLOAD : MAX_CONTROL_PAYLOAD;
        const mustRefuse = !known || length > limit || (type === FrameType.DATA && streamId === 0);
        const { error } = run([header.subarray(0, firstCut), header.subarray(firstCut)]);
        assert.equal(error !== null, mustRefuse);
      }),
  },
});
