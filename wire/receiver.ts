// The receiving half of the codec: a pure state machine that turns carrier bytes into frames. It
// does no I/O and keeps no per-stream state; the session decides what a frame means.
//
// DATA payloads are handed on as they arrive, possibly split across several onData calls, so a
// 256 KiB frame never has to be reassembled (no copy, no latency added by buffering it whole).
import { FrameType, HEADER_SIZE, MAX_CONTROL_PAYLOAD, MAX_DATA_PAYLOAD, isKnownFrameType } from './frames.js';
import { ProtocolError } from './errors.js';

export interface FrameHandler {
  onControl(type: FrameType, streamId: number, payload: Buffer): void;
  /** A slice of a DATA frame's payload; never empty. */
  onData(streamId: number, chunk: Buffer): void;
}

const enum State {
  Header,
  Data,
  Control,
}

const EMPTY = Buffer.alloc(0);

export class FrameReceiver {
  private state = State.Header;
  private readonly header = Buffer.allocUnsafe(HEADER_SIZE);
  private headerFill = 0;
  private type: FrameType = FrameType.DATA;
  private streamId = 0;
  /** Payload bytes of the current frame not yet consumed. */
  private remaining = 0;
  private control: Buffer = EMPTY;
  private controlFill = 0;
  private stopped = false;

  constructor(private readonly handler: FrameHandler) {}

  /**
   * Bytes held for the frame in progress: a partial header and a control payload being assembled
   * (DATA is never held). Bounded by HEADER_SIZE + MAX_CONTROL_PAYLOAD whatever the peer sends,
   * because a length above the limit is refused from the header, before any payload is buffered.
   */
  get bufferedBytes(): number {
    return this.headerFill + this.control.length;
  }

  /** Stops delivering frames, e.g. after the handler closed the link mid-chunk. */
  stop(): void {
    this.stopped = true;
  }

  /** Consumes one chunk of carrier bytes. Throws ProtocolError on malformed input. */
  feed(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length && !this.stopped) {
      switch (this.state) {
        case State.Header: {
          if (this.headerFill === 0 && chunk.length - offset >= HEADER_SIZE) {
            this.beginFrame(chunk, offset);
            offset += HEADER_SIZE;
          } else {
            const n = Math.min(HEADER_SIZE - this.headerFill, chunk.length - offset);
            chunk.copy(this.header, this.headerFill, offset, offset + n);
            this.headerFill += n;
            offset += n;
            if (this.headerFill === HEADER_SIZE) {
              this.headerFill = 0;
              this.beginFrame(this.header, 0);
            }
          }
          break;
        }
        case State.Data: {
          const n = Math.min(this.remaining, chunk.length - offset);
          const slice = chunk.subarray(offset, offset + n);
          offset += n;
          this.remaining -= n;
          if (this.remaining === 0) this.state = State.Header;
          this.handler.onData(this.streamId, slice);
          break;
        }
        case State.Control: {
          const n = Math.min(this.remaining, chunk.length - offset);
          chunk.copy(this.control, this.controlFill, offset, offset + n);
          this.controlFill += n;
          offset += n;
          this.remaining -= n;
          if (this.remaining === 0) this.deliverControl(this.control);
          break;
        }
      }
    }
  }

  private beginFrame(source: Buffer, at: number): void {
    const type = source[at]!;
    const streamId = source.readUInt32BE(at + 2);
    const length = source.readUInt32BE(at + 6);
    if (!isKnownFrameType(type)) throw new ProtocolError(`unknown frame type ${type}`);
    this.type = type;
    this.streamId = streamId;
    if (type === FrameType.DATA) {
      if (length > MAX_DATA_PAYLOAD) throw new ProtocolError(`DATA frame of ${length} bytes exceeds ${MAX_DATA_PAYLOAD}`);
      if (streamId === 0) throw new ProtocolError('DATA frame on stream 0');
      this.remaining = length;
      this.state = length === 0 ? State.Header : State.Data;
      return;
    }
    if (length > MAX_CONTROL_PAYLOAD) throw new ProtocolError(`frame type ${type} of ${length} bytes exceeds ${MAX_CONTROL_PAYLOAD}`);
    if (length === 0) {
      this.deliverControl(EMPTY);
      return;
    }
    this.control = Buffer.allocUnsafe(length);
    this.controlFill = 0;
    this.remaining = length;
    this.state = State.Control;
  }

  private deliverControl(payload: Buffer): void {
    this.state = State.Header;
    this.control = EMPTY;
    this.handler.onControl(this.type, this.streamId, payload);
  }
}
