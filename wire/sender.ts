// The sending half of the codec: frame encoders, and a FrameSender that batches every frame
// produced in one tick into a single carrier write. Batching is what makes small frames cheap:
// one writev on a TLS socket becomes one TLS record run instead of a record per frame.
import type { Duplex } from 'node:stream';
import { FrameType, HEADER_SIZE } from './frames.js';

export function encodeHeader(type: FrameType, streamId: number, length: number): Buffer {
  const header = Buffer.allocUnsafe(HEADER_SIZE);
  header[0] = type;
  header[1] = 0;
  header.writeUInt32BE(streamId, 2);
  header.writeUInt32BE(length, 6);
  return header;
}

/** Fills the first HEADER_SIZE bytes of `frame` with a DATA header for the payload after them. */
export function writeDataHeader(frame: Buffer, streamId: number): void {
  frame[0] = FrameType.DATA;
  frame[1] = 0;
  frame.writeUInt32BE(streamId, 2);
  frame.writeUInt32BE(frame.length - HEADER_SIZE, 6);
}

export function encodeControl(type: FrameType, streamId: number, payload?: Buffer): Buffer {
  const length = payload?.length ?? 0;
  const frame = Buffer.allocUnsafe(HEADER_SIZE + length);
  frame[0] = type;
  frame[1] = 0;
  frame.writeUInt32BE(streamId, 2);
  frame.writeUInt32BE(length, 6);
  if (payload) payload.copy(frame, HEADER_SIZE);
  return frame;
}

export function encodeJson(type: FrameType, streamId: number, message: object): Buffer {
  return encodeControl(type, streamId, Buffer.from(JSON.stringify(message)));
}

export function encodeWindow(streamId: number, increment: number): Buffer {
  const payload = Buffer.allocUnsafe(4);
  payload.writeUInt32BE(increment, 0);
  return encodeControl(FrameType.WINDOW, streamId, payload);
}

/** Above this many queued bytes, streams are told to wait before writing more. */
const CARRIER_BACKLOG_LIMIT = 1024 * 1024;

export class FrameSender {
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  private flushScheduled = false;
  private waiters: Array<() => void> = [];
  private closed = false;
  /** Bytes handed to the carrier (frames, headers included): the status page's throughput. */
  bytesWritten = 0;

  /**
   * @param coalesce concatenate a batch into one buffer before writing. Message-oriented carriers
   *   (WebSocket) need it, or every frame header would travel as its own message.
   */
  constructor(
    private readonly carrier: Duplex,
    private readonly coalesce: boolean,
  ) {
    carrier.on('drain', this.releaseWaiters);
  }

  sendControl(frame: Buffer): void {
    this.enqueue(frame);
  }

  sendData(streamId: number, chunk: Buffer): void {
    this.enqueue(encodeHeader(FrameType.DATA, streamId, chunk.length));
    this.enqueue(chunk);
  }

  /**
   * Sends a DATA frame built in one buffer (header room first, see writeDataHeader). With nothing
   * queued it is written at once: a full frame gains nothing from waiting a tick for company, and
   * one buffer per write is what keeps the carrier from copying header and payload together.
   * `written` is called when the carrier is done with a frame written at once; a queued frame is
   * left to the garbage collector.
   */
  sendDataFrame(streamId: number, frame: Buffer, written?: (frame: Buffer) => void): void {
    if (this.closed) return;
    writeDataHeader(frame, streamId);
    if (this.queue.length > 0) {
      this.enqueue(frame);
      return;
    }
    if (this.carrier.destroyed || !this.carrier.writable) return;
    this.bytesWritten += frame.length;
    if (written) this.carrier.write(frame, () => written(frame));
    else this.carrier.write(frame);
  }

  /** True while the carrier is backed up; writers should wait with whenWritable(). */
  get congested(): boolean {
    return this.queuedBytes + this.carrier.writableLength > CARRIER_BACKLOG_LIMIT || this.carrier.writableNeedDrain;
  }

  whenWritable(callback: () => void): void {
    if (this.closed || !this.congested) callback();
    else this.waiters.push(callback);
  }

  /** Drops everything queued; later sends are ignored. Waiting writers are released. */
  close(): void {
    this.closed = true;
    this.queue = [];
    this.queuedBytes = 0;
    this.carrier.off('drain', this.releaseWaiters);
    this.releaseWaiters();
  }

  private enqueue(buffer: Buffer): void {
    if (this.closed) return;
    this.queue.push(buffer);
    this.queuedBytes += buffer.length;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(this.flush);
    }
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    if (this.closed || this.queue.length === 0) return;
    const batch = this.queue;
    const bytes = this.queuedBytes;
    this.queue = [];
    this.queuedBytes = 0;
    if (this.carrier.destroyed || !this.carrier.writable) return;
    this.bytesWritten += bytes;
    if (this.coalesce || batch.length === 1) {
      this.carrier.write(batch.length === 1 ? batch[0] : Buffer.concat(batch));
    } else {
      this.carrier.cork();
      for (const buffer of batch) this.carrier.write(buffer);
      this.carrier.uncork();
    }
    if (!this.congested) this.releaseWaiters();
  };

  private readonly releaseWaiters = (): void => {
    if (this.waiters.length === 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  };
}
