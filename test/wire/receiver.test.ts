import { strict as assert } from 'node:assert';
import { FrameType, HEADER_SIZE, MAX_CONTROL_PAYLOAD, MAX_DATA_PAYLOAD } from '../../wire/frames.js';
import { FrameReceiver } from '../../wire/receiver.js';
import { ProtocolError } from '../../wire/errors.js';
import { encodeControl, encodeHeader, encodeJson, encodeWindow } from '../../wire/sender.js';

type Event = { kind: 'control'; type: FrameType; streamId: number; payload: string } | { kind: 'data'; streamId: number; bytes: string };

/** Records what a receiver delivers; DATA slices are kept individually. */
function recorder() {
  const events: Event[] = [];
  const slices: Array<{ streamId: number; chunk: Buffer }> = [];
  const receiver = new FrameReceiver({
    onControl: (type, streamId, payload) => events.push({ kind: 'control', type, streamId, payload: payload.toString('hex') }),
    onData: (streamId, chunk) => {
      slices.push({ streamId, chunk: Buffer.from(chunk) });
      const last = events.at(-1);
      // Slices of one frame (or of consecutive frames of one stream) are merged for comparison.
      if (last?.kind === 'data' && last.streamId === streamId) last.bytes += chunk.toString('hex');
      else events.push({ kind: 'data', streamId, bytes: chunk.toString('hex') });
    },
  });
  return { receiver, events, slices };
}

function dataFrame(streamId: number, payload: Buffer): Buffer {
  return Buffer.concat([encodeHeader(FrameType.DATA, streamId, payload.length), payload]);
}

function bytes(size: number, seed: number): Buffer {
  const buffer = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) buffer[i] = (i * 31 + seed) & 0xff;
  return buffer;
}

const PAYLOAD_A = bytes(1000, 1);
const PAYLOAD_B = bytes(37, 2);

/** A mixed run of frames, including zero-length ones, and what a receiver must deliver for it. */
const STREAM = Buffer.concat([
  encodeJson(FrameType.HELLO, 0, { version: 1, instance: 'x', window: 65536 }),
  encodeJson(FrameType.OPEN, 1, { host: 'h', port: 1, sid: 's', timeoutMs: 10 }),
  encodeControl(FrameType.OPEN_OK, 1),
  dataFrame(1, PAYLOAD_A),
  encodeWindow(1, 12345),
  dataFrame(3, PAYLOAD_B),
  encodeHeader(FrameType.DATA, 3, 0),
  encodeControl(FrameType.FIN, 1),
  encodeControl(FrameType.PING, 0, Buffer.from('01234567')),
  dataFrame(1, Buffer.from('z')),
  encodeJson(FrameType.RESET, 3, { code: 'CANCEL', message: 'm' }),
]);

const EXPECTED: Event[] = [
  { kind: 'control', type: FrameType.HELLO, streamId: 0, payload: Buffer.from(JSON.stringify({ version: 1, instance: 'x', window: 65536 })).toString('hex') },
  { kind: 'control', type: FrameType.OPEN, streamId: 1, payload: Buffer.from(JSON.stringify({ host: 'h', port: 1, sid: 's', timeoutMs: 10 })).toString('hex') },
  { kind: 'control', type: FrameType.OPEN_OK, streamId: 1, payload: '' },
  { kind: 'data', streamId: 1, bytes: PAYLOAD_A.toString('hex') },
  { kind: 'control', type: FrameType.WINDOW, streamId: 1, payload: '00003039' },
  { kind: 'data', streamId: 3, bytes: PAYLOAD_B.toString('hex') },
  { kind: 'control', type: FrameType.FIN, streamId: 1, payload: '' },
  { kind: 'control', type: FrameType.PING, streamId: 0, payload: Buffer.from('01234567').toString('hex') },
  { kind: 'data', streamId: 1, bytes: Buffer.from('z').toString('hex') },
  { kind: 'control', type: FrameType.RESET, streamId: 3, payload: Buffer.from(JSON.stringify({ code: 'CANCEL', message: 'm' })).toString('hex') },
];

function feedAll(chunks: Buffer[]) {
  const r = recorder();
  for (const chunk of chunks) r.receiver.feed(chunk);
  return r;
}

describe('wire: FrameReceiver', function () {
  it('delivers a run of frames fed in one chunk', function () {
    const { events } = feedAll([STREAM]);
    assert.deepEqual(events, EXPECTED);
  });

  it('delivers the same frames when fed byte by byte', function () {
    const chunks: Buffer[] = [];
    for (let i = 0; i < STREAM.length; i++) chunks.push(STREAM.subarray(i, i + 1));
    const { events, slices } = feedAll(chunks);
    assert.deepEqual(events, EXPECTED);
    // One DATA slice per fed byte of payload: nothing is buffered up.
    assert.equal(slices.length, PAYLOAD_A.length + PAYLOAD_B.length + 1);
  });

  it('delivers the same frames when split into two chunks at every offset', function () {
    for (let at = 0; at <= STREAM.length; at++) {
      const { events } = feedAll([STREAM.subarray(0, at), STREAM.subarray(at)]);
      assert.deepEqual(events, EXPECTED, `split at ${at}`);
    }
  });

  it('delivers the same frames when split into three chunks at many offset pairs', function () {
    for (let a = 0; a <= STREAM.length; a += 7) {
      for (let b = a; b <= STREAM.length; b += 13) {
        const { events } = feedAll([STREAM.subarray(0, a), STREAM.subarray(a, b), STREAM.subarray(b)]);
        assert.deepEqual(events, EXPECTED, `split at ${a} and ${b}`);
      }
    }
  });

  it('hands DATA on in non-empty slices whose concatenation is the payload', function () {
    const payload = bytes(MAX_DATA_PAYLOAD, 9);
    const frame = dataFrame(5, payload);
    for (const size of [1, 9, 10, 11, 1000, 65536, frame.length]) {
      const { receiver, slices } = recorder();
      for (let i = 0; i < frame.length; i += size) receiver.feed(frame.subarray(i, i + size));
      assert.ok(slices.every((s) => s.chunk.length > 0 && s.streamId === 5), `chunk size ${size}`);
      assert.ok(Buffer.concat(slices.map((s) => s.chunk)).equals(payload), `chunk size ${size}`);
      assert.ok(slices.length >= Math.floor(payload.length / size), `chunk size ${size}: one slice per chunk at least`);
    }
  });

  it('hands DATA slices on as views of the fed chunk, without reassembly', function () {
    const payload = bytes(100, 3);
    const frame = dataFrame(1, payload);
    const seen: Buffer[] = [];
    const receiver = new FrameReceiver({ onControl: () => assert.fail('no control frame'), onData: (_id, chunk) => seen.push(chunk) });
    receiver.feed(frame.subarray(0, 50));
    receiver.feed(frame.subarray(50));
    assert.equal(seen.length, 2);
    assert.equal(seen[0]!.buffer, frame.buffer, 'first slice shares memory with the fed chunk');
    assert.ok(Buffer.concat(seen).equals(payload));
  });

  it('delivers zero-length control frames with an empty payload, whole or split', function () {
    for (const type of [FrameType.OPEN_OK, FrameType.FIN, FrameType.GOAWAY, FrameType.PING]) {
      const frame = encodeControl(type, 7);
      assert.equal(frame.length, HEADER_SIZE);
      for (let at = 0; at <= HEADER_SIZE; at++) {
        const { receiver, events } = recorder();
        receiver.feed(frame.subarray(0, at));
        receiver.feed(frame.subarray(at));
        assert.deepEqual(events, [{ kind: 'control', type, streamId: 7, payload: '' }], `${FrameType[type]} split at ${at}`);
      }
    }
  });

  it('delivers nothing for a zero-length DATA frame and keeps parsing after it', function () {
    const { events, slices } = feedAll([Buffer.concat([encodeHeader(FrameType.DATA, 9, 0), encodeControl(FrameType.FIN, 9)])]);
    assert.equal(slices.length, 0, 'onData is never called with an empty slice');
    assert.deepEqual(events, [{ kind: 'control', type: FrameType.FIN, streamId: 9, payload: '' }]);
  });

  it('accepts the largest DATA and control payloads', function () {
    const { slices } = feedAll([dataFrame(1, Buffer.alloc(MAX_DATA_PAYLOAD))]);
    assert.equal(Buffer.concat(slices.map((s) => s.chunk)).length, MAX_DATA_PAYLOAD);
    const { events } = feedAll([encodeControl(FrameType.GOAWAY, 0, Buffer.alloc(MAX_CONTROL_PAYLOAD, 0x61))]);
    assert.equal(events.length, 1);
    assert.equal((events[0] as { payload: string }).payload.length, MAX_CONTROL_PAYLOAD * 2);
  });

  it('bufferedBytes counts a partial header and the control payload being assembled, never DATA', function () {
    const { receiver } = recorder();
    const control = encodeControl(FrameType.GOAWAY, 0, Buffer.alloc(MAX_CONTROL_PAYLOAD, 0x61));
    receiver.feed(control.subarray(0, 4));
    assert.equal(receiver.bufferedBytes, 4);
    receiver.feed(control.subarray(4, HEADER_SIZE + 1));
    assert.equal(receiver.bufferedBytes, MAX_CONTROL_PAYLOAD, 'the payload buffer is sized from the checked length');
    receiver.feed(control.subarray(HEADER_SIZE + 1));
    assert.equal(receiver.bufferedBytes, 0);
    receiver.feed(dataFrame(1, Buffer.alloc(MAX_DATA_PAYLOAD)).subarray(0, HEADER_SIZE + 1000));
    assert.equal(receiver.bufferedBytes, 0, 'DATA is handed on, not held');
  });

  it('keeps stream ids up to 2^32-1 intact', function () {
    const { events } = feedAll([encodeControl(FrameType.FIN, 0xffffffff)]);
    assert.deepEqual(events, [{ kind: 'control', type: FrameType.FIN, streamId: 0xffffffff, payload: '' }]);
  });

  describe('protocol errors', function () {
    function rejects(header: Buffer, pattern: RegExp): void {
      // Whole, and with the header trickling in byte by byte.
      assert.throws(() => recorder().receiver.feed(header), (e: unknown) => e instanceof ProtocolError && e.code === 'PROTOCOL_ERROR' && pattern.test(e.message));
      const { receiver } = recorder();
      for (let i = 0; i < header.length - 1; i++) receiver.feed(header.subarray(i, i + 1));
      assert.throws(() => receiver.feed(header.subarray(header.length - 1)), ProtocolError);
    }

    it('refuses a DATA frame longer than MAX_DATA_PAYLOAD', function () {
      rejects(encodeHeader(FrameType.DATA, 1, MAX_DATA_PAYLOAD + 1), /exceeds/);
      rejects(encodeHeader(FrameType.DATA, 1, 0xffffffff), /exceeds/);
    });

    it('refuses a control frame longer than MAX_CONTROL_PAYLOAD', function () {
      for (const type of [FrameType.HELLO, FrameType.OPEN, FrameType.RESET, FrameType.WINDOW, FrameType.GOAWAY]) {
        rejects(encodeHeader(type, 0, MAX_CONTROL_PAYLOAD + 1), /exceeds/);
      }
    });

    it('refuses unknown frame types', function () {
      for (const type of [0, 13, 0x7f, 0xff]) rejects(encodeHeader(type as FrameType, 1, 0), /unknown frame type/);
    });

    it('refuses DATA on stream 0', function () {
      rejects(encodeHeader(FrameType.DATA, 0, 4), /stream 0/);
      rejects(encodeHeader(FrameType.DATA, 0, 0), /stream 0/);
    });

    it('delivers the frames before a malformed one', function () {
      const { receiver, events } = recorder();
      assert.throws(() => receiver.feed(Buffer.concat([encodeControl(FrameType.FIN, 1), encodeHeader(99 as FrameType, 1, 0)])), ProtocolError);
      assert.deepEqual(events, [{ kind: 'control', type: FrameType.FIN, streamId: 1, payload: '' }]);
    });
  });

  describe('stop()', function () {
    it('halts delivery in the middle of a chunk when called from a control handler', function () {
      const delivered: string[] = [];
      const receiver: FrameReceiver = new FrameReceiver({
        onControl: (type) => {
          delivered.push(FrameType[type]);
          if (type === FrameType.OPEN_OK) receiver.stop();
        },
        onData: () => delivered.push('DATA'),
      });
      receiver.feed(Buffer.concat([encodeControl(FrameType.FIN, 1), encodeControl(FrameType.OPEN_OK, 1), dataFrame(1, Buffer.from('abc')), encodeControl(FrameType.FIN, 3)]));
      assert.deepEqual(delivered, ['FIN', 'OPEN_OK']);
      receiver.feed(encodeControl(FrameType.FIN, 5));
      assert.deepEqual(delivered, ['FIN', 'OPEN_OK'], 'nothing is delivered after stop()');
    });

    it('halts delivery in the middle of a chunk when called from a data handler', function () {
      const delivered: string[] = [];
      const receiver: FrameReceiver = new FrameReceiver({
        onControl: (type) => delivered.push(FrameType[type]),
        onData: (_id, chunk) => {
          delivered.push(`DATA:${chunk.toString()}`);
          receiver.stop();
        },
      });
      receiver.feed(Buffer.concat([dataFrame(1, Buffer.from('abc')), encodeControl(FrameType.FIN, 1), dataFrame(1, Buffer.from('def'))]));
      assert.deepEqual(delivered, ['DATA:abc']);
    });

    it('does not throw for malformed bytes that arrive after stop()', function () {
      const { receiver } = recorder();
      receiver.stop();
      receiver.feed(Buffer.alloc(64, 0xff));
    });
  });
});
