import { strict as assert } from 'node:assert';
import { Duplex, PassThrough } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { FrameType, HEADER_SIZE, MAX_WINDOW } from '../../wire/frames.js';
import { FrameReceiver } from '../../wire/receiver.js';
import { FrameSender, encodeControl, encodeHeader, encodeJson, encodeWindow } from '../../wire/sender.js';

interface Decoded {
  type: FrameType;
  streamId: number;
  payload: Buffer;
}

/** Decodes whole frames; DATA payload slices are joined per frame. */
function decode(bytes: Buffer): Decoded[] {
  const frames: Decoded[] = [];
  let data: Decoded | null = null;
  const receiver = new FrameReceiver({
    onControl: (type, streamId, payload) => {
      data = null;
      frames.push({ type, streamId, payload: Buffer.from(payload) });
    },
    onData: (streamId, chunk) => {
      if (data && data.streamId === streamId) data.payload = Buffer.concat([data.payload, chunk]);
      else frames.push((data = { type: FrameType.DATA, streamId, payload: Buffer.from(chunk) }));
    },
  });
  receiver.feed(bytes);
  return frames;
}

/** A carrier that records every _write and _writev call; `hold` keeps write callbacks pending. */
class RecordingCarrier extends Duplex {
  writes: Buffer[] = [];
  writevs: Buffer[][] = [];
  corks = 0;
  uncorks = 0;
  held: Array<() => void> = [];
  hold = false;

  constructor(highWaterMark = 16 * 1024) {
    super({ writableHighWaterMark: highWaterMark });
  }

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.writes.push(chunk);
    if (this.hold) this.held.push(() => callback());
    else callback();
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    this.writevs.push(chunks.map((c) => c.chunk));
    if (this.hold) this.held.push(() => callback());
    else callback();
  }

  override cork(): void {
    this.corks++;
    super.cork();
  }

  override uncork(): void {
    this.uncorks++;
    super.uncork();
  }

  release(): void {
    this.hold = false;
    const held = this.held;
    this.held = [];
    for (const callback of held) callback();
  }

  /** Everything that reached the carrier, in order. */
  get bytes(): Buffer {
    const all: Buffer[] = [];
    // _write and _writev calls interleave only across ticks; keep it simple for these tests.
    all.push(...this.writes, ...this.writevs.flat());
    return Buffer.concat(all);
  }
}

describe('wire: encoders', function () {
  it('encodeHeader writes type, zero flags, stream id and length big-endian', function () {
    const header = encodeHeader(FrameType.DATA, 0x01020304, 0x0a0b0c0d);
    assert.equal(header.length, HEADER_SIZE);
    assert.equal(header.toString('hex'), '0500' + '01020304' + '0a0b0c0d');
  });

  it('encodeHeader + payload round-trips through FrameReceiver', function () {
    const payload = Buffer.from('hello, tunnel');
    const frames = decode(Buffer.concat([encodeHeader(FrameType.DATA, 42, payload.length), payload]));
    assert.equal(frames.length, 1);
    assert.equal(frames[0]!.type, FrameType.DATA);
    assert.equal(frames[0]!.streamId, 42);
    assert.ok(frames[0]!.payload.equals(payload));
  });

  it('encodeControl round-trips with and without payload', function () {
    const withPayload = encodeControl(FrameType.PING, 0, Buffer.from('12345678'));
    assert.equal(withPayload.length, HEADER_SIZE + 8);
    const without = encodeControl(FrameType.FIN, 0xffffffff);
    assert.equal(without.length, HEADER_SIZE);
    assert.deepEqual(decode(Buffer.concat([withPayload, without])), [
      { type: FrameType.PING, streamId: 0, payload: Buffer.from('12345678') },
      { type: FrameType.FIN, streamId: 0xffffffff, payload: Buffer.alloc(0) },
    ]);
  });

  it('encodeJson round-trips the message, including non-ASCII text', function () {
    const message = { code: 'DIAL_FAILED', message: 'naïve → ünïcode ✓ 🚀' };
    const frame = encodeJson(FrameType.OPEN_FAIL, 7, message);
    assert.equal(frame.readUInt32BE(6), Buffer.byteLength(JSON.stringify(message)), 'length counts bytes, not characters');
    const [decoded] = decode(frame);
    assert.equal(decoded!.type, FrameType.OPEN_FAIL);
    assert.equal(decoded!.streamId, 7);
    assert.deepEqual(JSON.parse(decoded!.payload.toString('utf8')), message);
  });

  it('encodeWindow carries a 4-byte big-endian increment', function () {
    for (const increment of [1, 32768, MAX_WINDOW, 0xffffffff]) {
      const [decoded] = decode(encodeWindow(3, increment));
      assert.equal(decoded!.type, FrameType.WINDOW);
      assert.equal(decoded!.streamId, 3);
      assert.equal(decoded!.payload.length, 4);
      assert.equal(decoded!.payload.readUInt32BE(0), increment);
    }
  });
});

describe('wire: FrameSender', function () {
  it('coalesce=true: all frames of one tick become one carrier write', async function () {
    const carrier = new RecordingCarrier();
    const sender = new FrameSender(carrier, true);
    sender.sendControl(encodeControl(FrameType.OPEN_OK, 1));
    sender.sendData(1, Buffer.from('abc'));
    sender.sendControl(encodeWindow(1, 100));
    sender.sendData(3, Buffer.from('defgh'));
    assert.equal(carrier.writes.length + carrier.writevs.length, 0, 'nothing is written synchronously');
    await nextTurn();
    assert.equal(carrier.writes.length, 1);
    assert.equal(carrier.writevs.length, 0);
    assert.deepEqual(decode(carrier.writes[0]!), [
      { type: FrameType.OPEN_OK, streamId: 1, payload: Buffer.alloc(0) },
      { type: FrameType.DATA, streamId: 1, payload: Buffer.from('abc') },
      { type: FrameType.WINDOW, streamId: 1, payload: encodeWindow(1, 100).subarray(HEADER_SIZE) },
      { type: FrameType.DATA, streamId: 3, payload: Buffer.from('defgh') },
    ]);
    sender.close();
  });

  it('coalesce=false: one tick is several writes under one cork, delivered as one writev', async function () {
    const carrier = new RecordingCarrier();
    const sender = new FrameSender(carrier, false);
    sender.sendControl(encodeControl(FrameType.OPEN_OK, 1));
    sender.sendData(1, Buffer.from('abc'));
    sender.sendControl(encodeControl(FrameType.FIN, 1));
    await nextTurn();
    assert.equal(carrier.corks, 1);
    assert.equal(carrier.uncorks, 1);
    assert.equal(carrier.writes.length, 0, 'no separate _write calls');
    assert.equal(carrier.writevs.length, 1, 'one writev');
    assert.equal(carrier.writevs[0]!.length, 4, 'OPEN_OK, DATA header, DATA payload, FIN');
    assert.deepEqual(decode(Buffer.concat(carrier.writevs[0]!)), [
      { type: FrameType.OPEN_OK, streamId: 1, payload: Buffer.alloc(0) },
      { type: FrameType.DATA, streamId: 1, payload: Buffer.from('abc') },
      { type: FrameType.FIN, streamId: 1, payload: Buffer.alloc(0) },
    ]);
    sender.close();
  });

  it('coalesce=false on a PassThrough: several write() calls, one cork/uncork pair, bytes in order', async function () {
    const carrier = new PassThrough();
    let writeCalls = 0;
    let corks = 0;
    let uncorks = 0;
    const write = carrier.write.bind(carrier) as (chunk: Buffer) => boolean;
    const cork = carrier.cork.bind(carrier);
    const uncork = carrier.uncork.bind(carrier);
    carrier.write = ((chunk: Buffer) => {
      writeCalls++;
      return write(chunk);
    }) as typeof carrier.write;
    carrier.cork = () => {
      corks++;
      cork();
    };
    carrier.uncork = () => {
      uncorks++;
      uncork();
    };
    const sender = new FrameSender(carrier, false);
    sender.sendData(5, Buffer.from('one'));
    sender.sendData(5, Buffer.from('two'));
    await nextTurn();
    assert.equal(writeCalls, 4);
    assert.equal(corks, 1);
    assert.equal(uncorks, 1);
    assert.deepEqual(decode(carrier.read() as Buffer), [{ type: FrameType.DATA, streamId: 5, payload: Buffer.from('onetwo') }]);
    sender.close();
  });

  it('writes a single queued buffer as is, without corking', async function () {
    const carrier = new RecordingCarrier();
    const sender = new FrameSender(carrier, false);
    const frame = encodeControl(FrameType.PING, 0, Buffer.alloc(8));
    sender.sendControl(frame);
    await nextTurn();
    assert.equal(carrier.corks, 0);
    assert.deepEqual(carrier.writes, [frame]);
    sender.close();
  });

  describe('sendDataFrame (a DATA frame built in one buffer)', function () {
    const frameOf = (payload: string): Buffer => Buffer.concat([Buffer.alloc(HEADER_SIZE), Buffer.from(payload)]);

    it('fills the header and writes the buffer itself at once, then reports it written', function () {
      const carrier = new RecordingCarrier();
      carrier.hold = true;
      const sender = new FrameSender(carrier, false);
      const frame = frameOf('payload');
      const written: Buffer[] = [];
      sender.sendDataFrame(9, frame, (f) => written.push(f));
      assert.equal(carrier.writes.length, 1, 'no tick of waiting');
      assert.equal(carrier.writes[0], frame, 'the same buffer, not a copy');
      assert.deepEqual(decode(frame), [{ type: FrameType.DATA, streamId: 9, payload: Buffer.from('payload') }]);
      assert.deepEqual(written, [], 'not before the carrier is done with it');
      carrier.held.shift()!();
      assert.deepEqual(written, [frame]);
      assert.equal(sender.bytesWritten, frame.length);
      sender.close();
    });

    it('queues behind frames of the same tick, keeping their order', async function () {
      const carrier = new RecordingCarrier();
      const sender = new FrameSender(carrier, true);
      sender.sendControl(encodeControl(FrameType.FIN, 1));
      sender.sendDataFrame(3, frameOf('after'));
      assert.equal(carrier.writes.length, 0);
      await nextTurn();
      assert.deepEqual(
        decode(carrier.bytes).map((f) => [f.type, f.streamId]),
        [
          [FrameType.FIN, 1],
          [FrameType.DATA, 3],
        ],
      );
      sender.close();
    });
  });

  it('frames of different ticks become different writes', async function () {
    const carrier = new RecordingCarrier();
    const sender = new FrameSender(carrier, true);
    sender.sendControl(encodeControl(FrameType.FIN, 1));
    await nextTurn();
    sender.sendControl(encodeControl(FrameType.FIN, 3));
    sender.sendControl(encodeControl(FrameType.FIN, 5));
    await nextTurn();
    assert.equal(carrier.writes.length, 2);
    assert.deepEqual(
      decode(carrier.bytes).map((f) => f.streamId),
      [1, 3, 5],
    );
    sender.close();
  });

  it('close() drops queued frames, ignores later sends and releases waiters', async function () {
    const carrier = new RecordingCarrier(1024);
    carrier.hold = true;
    const sender = new FrameSender(carrier, true);
    sender.sendData(1, Buffer.alloc(4096));
    await nextTurn();
    assert.ok(sender.congested);
    let released = false;
    sender.whenWritable(() => (released = true));
    sender.sendControl(encodeControl(FrameType.FIN, 1));
    sender.close();
    assert.ok(released, 'waiting writers are released by close()');
    sender.sendControl(encodeControl(FrameType.FIN, 3));
    await nextTurn();
    assert.equal(carrier.writes.length, 1, 'only the batch flushed before close() was written');
    let later = false;
    sender.whenWritable(() => (later = true));
    assert.ok(later, 'a closed sender never makes writers wait');
    carrier.release();
  });

  it('does not write to a destroyed carrier', async function () {
    const carrier = new RecordingCarrier();
    const sender = new FrameSender(carrier, true);
    sender.sendControl(encodeControl(FrameType.FIN, 1));
    carrier.destroy();
    await nextTurn();
    assert.equal(carrier.writes.length, 0);
    sender.close();
  });

  describe('whenWritable', function () {
    it('calls back at once while the carrier is not congested', function () {
      const sender = new FrameSender(new RecordingCarrier(), true);
      let called = false;
      sender.whenWritable(() => (called = true));
      assert.ok(called);
      sender.close();
    });

    it('waits while the carrier needs a drain and calls back on drain', async function () {
      const carrier = new RecordingCarrier(1024);
      carrier.hold = true;
      const sender = new FrameSender(carrier, true);
      sender.sendData(1, Buffer.alloc(2048));
      await nextTurn();
      assert.ok(carrier.writableNeedDrain);
      assert.ok(sender.congested);
      let calls = 0;
      sender.whenWritable(() => calls++);
      sender.whenWritable(() => calls++);
      await nextTurn();
      assert.equal(calls, 0, 'writers wait while the carrier is backed up');
      carrier.release();
      await nextTurn();
      assert.ok(!sender.congested);
      assert.equal(calls, 2, 'every waiter is released on drain');
      sender.close();
    });

    it('counts bytes queued in the current tick: more than 1 MiB queued is congestion', async function () {
      const carrier = new RecordingCarrier(64 * 1024 * 1024);
      const sender = new FrameSender(carrier, false);
      sender.sendData(1, Buffer.alloc(512 * 1024));
      assert.ok(!sender.congested);
      sender.sendData(1, Buffer.alloc(600 * 1024));
      assert.ok(sender.congested, 'queued bytes alone make the sender congested');
      let called = false;
      sender.whenWritable(() => (called = true));
      assert.ok(!called);
      await nextTurn();
      assert.ok(called, 'released once the batch went to a carrier with room');
      sender.close();
    });
  });
});
