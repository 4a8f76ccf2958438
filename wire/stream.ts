// One tunneled connection: a Duplex with per-stream credit flow control and half-close.
//
// Flow control is strict, not advisory (unlike remotedialer's PAUSE/RESUME): a sender may have at
// most `window` unacknowledged bytes in flight, and the receiver grants more only as its reader
// consumes them. So a stalled reader holds at most `window` bytes, costs the link nothing, and
// never delays other streams on the same link.
import { Duplex } from 'node:stream';
import { HEADER_SIZE, MAX_DATA_PAYLOAD, MAX_WINDOW } from './frames.js';
import { StreamResetError, type ResetCode } from './errors.js';

/** What a stream needs from the session that carries it. */
export interface StreamLink {
  sendData(streamId: number, chunk: Buffer): void;
  /**
   * Sends a DATA frame whose payload follows HEADER_SIZE bytes of room in `frame`; `written`, if
   * given, may be called once the carrier no longer needs the buffer (or never, if it was dropped).
   */
  sendDataFrame(streamId: number, frame: Buffer, written?: (frame: Buffer) => void): void;
  /** True while the carrier is backed up. */
  readonly congested: boolean;
  sendWindow(streamId: number, increment: number): void;
  sendFin(streamId: number): void;
  sendReset(streamId: number, code: ResetCode, message: string): void;
  /** Calls back once the carrier can take more bytes. */
  whenWritable(callback: () => void): void;
  /** The stream needs no more frames routed to it. */
  forget(stream: TunnelStream): void;
}

interface PendingWrite {
  chunk: Buffer;
  offset: number;
  callback: (error?: Error | null) => void;
}

function ignoreError(): void {}

const WRITE_HIGH_WATER_MARK = 64 * 1024;

export class TunnelStream extends Duplex {
  /** Bytes we may still send before the peer grants more. */
  private sendCredit: number;
  private pendingWrite: PendingWrite | null = null;
  /** Bytes the peer may still send before we grant more. */
  private receiveRemaining: number;
  /** DATA bytes received from the peer. */
  bytesReceived = 0;
  /** DATA bytes handed to the link for the peer. */
  bytesSent = 0;
  private grantedTotal = 0;
  private finSent = false;
  private finReceived = false;
  private forgotten = false;
  /** Idle timer of setTimeout(), refreshed by traffic. */
  private idleTimer: NodeJS.Timeout | undefined;
  /** Set when the peer or the link ended the stream, so we do not answer with a RESET. */
  private resetByPeer = false;

  constructor(
    private readonly link: StreamLink,
    readonly id: number,
    /** Correlation id shared with the peer's logs. */
    readonly sid: string,
    /** Our receive window for this stream. */
    private readonly window: number,
    /** The peer's receive window: our initial send credit. */
    peerWindow: number,
  ) {
    super({
      allowHalfOpen: true,
      // Node calls _read() (where we grant credit) only while the buffer is below the high-water
      // mark. At 64 KiB, a reader catching up after back-pressure would hand credit back only
      // when nearly empty, idling the sender for a round trip per window; at the window size it
      // is granted every half window as it is consumed. Memory stays bounded by the window either
      // way, since the peer cannot send beyond its credit.
      readableHighWaterMark: window,
      writableHighWaterMark: WRITE_HIGH_WATER_MARK,
    });
    this.sendCredit = peerWindow;
    this.receiveRemaining = window;
    // A failing stream must never take the process (and every other stream of the link) down
    // when its owner has not attached an 'error' listener yet, e.g. a RESET that arrives in the
    // same read as OPEN_OK. Owners still get 'error' and can read `errored` on 'close'.
    this.on('error', ignoreError);
  }

  /** Bytes received from the peer and not yet read by our consumer. */
  get bufferedFromPeer(): number {
    return this.readableLength;
  }

  // ---- called by the session ------------------------------------------------------------------

  /** @internal */
  receiveData(chunk: Buffer): void {
    if (this.finReceived) {
      this.resetLocally('PROTOCOL', 'DATA after FIN');
      return;
    }
    if (chunk.length > this.receiveRemaining) {
      this.resetLocally('FLOW_CONTROL', `peer sent ${chunk.length} bytes with ${this.receiveRemaining} of window left`);
      return;
    }
    this.receiveRemaining -= chunk.length;
    this.bytesReceived += chunk.length;
    this.idleTimer?.refresh();
    // A slice keeps its whole carrier buffer alive, and one WebSocket message can hold megabytes
    // of other streams' bytes: copy small slices that will wait in our buffer, so a stalled
    // stream holds its window and no more.
    const waits = this.readableLength > 0 || this.readableFlowing !== true;
    this.push(waits && chunk.buffer.byteLength > 2 * chunk.length ? Buffer.from(chunk) : chunk);
    this.grantConsumed();
  }

  /** @internal */
  receiveWindow(increment: number): void {
    if (increment === 0 || this.sendCredit + increment > MAX_WINDOW) {
      this.resetLocally('FLOW_CONTROL', `invalid window increment ${increment}`);
      return;
    }
    this.sendCredit += increment;
    this.writePending();
  }

  /** @internal */
  receiveFin(): void {
    if (this.finReceived) return;
    this.finReceived = true;
    this.push(null);
    this.forgetWhenDone();
  }

  /** @internal The peer reset the stream, or the link is gone. Emits 'error' to the owner. */
  receiveReset(error: StreamResetError): void {
    this.resetByPeer = true;
    this.destroy(error);
  }

  /**
   * @internal Ends a stream that nobody owns yet (its open failed or was never answered), without
   * a frame and without an 'error' event that no one would listen to.
   */
  abandon(): void {
    this.resetByPeer = true;
    this.destroy();
  }

  /** @internal Resets a stream nobody owns yet, telling the peer why. */
  cancel(code: ResetCode, message: string): void {
    if (!this.forgotten) {
      this.forgotten = true;
      this.link.sendReset(this.id, code, message);
      this.link.forget(this);
    }
    this.destroy();
  }

  /**
   * Sends a DATA frame that the caller read straight into `frame` after HEADER_SIZE bytes of room
   * (frame-reader.ts), so the carrier gets one buffer per frame instead of a header and a payload
   * it would copy together. When the frame cannot leave at once — credit short, earlier writes
   * still queued, the link backed up — its payload takes the ordinary write() path, which keeps
   * the order and the back-pressure of a Writable.
   * @param written called once the carrier no longer needs `frame`, when it went whole; the caller
   *   may reuse it then
   * @returns like write(): false when the caller should wait for 'drain' before sending more
   */
  writeFrame(frame: Buffer, written?: (frame: Buffer) => void): boolean {
    const length = frame.length - HEADER_SIZE;
    const direct =
      this.pendingWrite === null &&
      this.writableLength === 0 &&
      !this.writableEnded &&
      !this.destroyed &&
      length <= this.sendCredit &&
      length <= MAX_DATA_PAYLOAD &&
      !this.link.congested;
    if (!direct) return this.write(frame.subarray(HEADER_SIZE));
    this.link.sendDataFrame(this.id, frame, written);
    this.sendCredit -= length;
    this.bytesSent += length;
    this.idleTimer?.refresh();
    return true;
  }

  // ---- net.Socket compatibility -----------------------------------------------------------------
  // http.Agent, http2-proxy and @kubernetes/client-node call these on whatever createConnection
  // returns. Keepalive and Nagle belong to the carrier, not to a stream inside it.

  setKeepAlive(): this {
    return this;
  }
  setNoDelay(): this {
    return this;
  }
  /** Like net.Socket: emits 'timeout' after `ms` without bytes in either direction; 0 disables. */
  setTimeout(ms: number, callback?: () => void): this {
    if (callback) this.once('timeout', callback);
    clearTimeout(this.idleTimer);
    this.idleTimer = ms > 0 ? setTimeout(() => this.emit('timeout'), ms).unref() : undefined;
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }

  // ---- Duplex implementation --------------------------------------------------------------------

  override _read(): void {
    this.grantConsumed();
  }

  // Node calls _read() before the bytes being read leave the buffer, and not again until the next
  // push(): a reader draining a full window would never hand credit back, and with the peer out
  // of credit no push would ever come. So also grant after every read (pipe() and 'data' use it).
  override read(size?: number): any {
    const chunk: unknown = super.read(size);
    this.grantConsumed();
    return chunk;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.pendingWrite = { chunk, offset: 0, callback };
    this.writePending();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.finSent = true;
    if (!this.forgotten) this.link.sendFin(this.id);
    callback();
    this.forgetWhenDone();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.pendingWrite = null;
    clearTimeout(this.idleTimer);
    if (!this.forgotten) {
      if (!this.resetByPeer && !(this.finSent && this.finReceived)) {
        const code = error instanceof StreamResetError ? error.code : error ? 'CLIENT_ERROR' : 'CANCEL';
        this.link.sendReset(this.id, code, error?.message ?? 'stream closed');
      }
      this.forgotten = true;
      this.link.forget(this);
    }
    callback(error);
  }

  // ---- internals --------------------------------------------------------------------------------

  private writePending(): void {
    const pending = this.pendingWrite;
    if (!pending) return;
    while (this.sendCredit > 0 && pending.offset < pending.chunk.length) {
      const size = Math.min(this.sendCredit, MAX_DATA_PAYLOAD, pending.chunk.length - pending.offset);
      this.link.sendData(this.id, pending.chunk.subarray(pending.offset, pending.offset + size));
      pending.offset += size;
      this.sendCredit -= size;
      this.bytesSent += size;
    }
    this.idleTimer?.refresh();
    if (pending.offset < pending.chunk.length) return; // resumed by receiveWindow()
    this.pendingWrite = null;
    this.link.whenWritable(pending.callback);
  }

  /**
   * Grants the peer the bytes our consumer has read since the last grant, in batches of half a
   * window so a busy stream sends one WINDOW frame per half window rather than one per chunk.
   */
  private grantConsumed(): void {
    if (this.finReceived || this.forgotten) return;
    const consumed = this.bytesReceived - this.readableLength;
    const increment = consumed - this.grantedTotal;
    if (increment >= this.window / 2) {
      this.grantedTotal += increment;
      this.receiveRemaining += increment;
      this.link.sendWindow(this.id, increment);
    }
  }

  private resetLocally(code: ResetCode, message: string): void {
    this.destroy(new StreamResetError(code, message, false));
  }

  private forgetWhenDone(): void {
    if (this.finSent && this.finReceived && !this.forgotten) {
      this.forgotten = true;
      this.link.forget(this);
    }
  }
}
