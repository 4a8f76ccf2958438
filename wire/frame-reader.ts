// Reads a socket straight into DATA frames: every read lands in one buffer of ours (net.Socket's
// `onread`) sized so that header and payload together fill at most READ_FRAME_SIZE, and leaves as
// one frame buffer. Node's own read path allocates a 64 KiB buffer per read, and the carrier then
// copies a separate header and that payload together for every frame (TLS writes a multi-buffer
// write as one), which ends each frame with a 10-byte TLS record: five records, five read events
// and five client writes on the receiving side per frame instead of four.
import type net from 'node:net';
import { HEADER_SIZE, READ_FRAME_SIZE } from './frames.js';
import type { TunnelStream } from './stream.js';

/**
 * Where every reader's socket reads land. One for the process: `onread` hands each read to its
 * callback synchronously, before any other read can land, and the callback copies it out at once.
 * (A buffer per socket would cost an idle stream 64 KiB.)
 */
const landing = Buffer.allocUnsafeSlow(READ_FRAME_SIZE - HEADER_SIZE);

/**
 * Frame buffers the carrier has finished with, shared by every reader: a busy stream reuses a few
 * instead of allocating 64 KiB per read, and an idle one holds none.
 */
const spares: Buffer[] = [];
const MAX_SPARES = 16;

function takeFrame(payloadBytes: number): Buffer {
  return (spares.pop() ?? Buffer.allocUnsafeSlow(READ_FRAME_SIZE)).subarray(0, HEADER_SIZE + payloadBytes);
}

/** Called once the carrier no longer needs `frame` (not for a frame that took the write() path). */
function recycle(frame: Buffer): void {
  if (spares.length < MAX_SPARES) spares.push(Buffer.from(frame.buffer, frame.byteOffset, READ_FRAME_SIZE));
}

export class SocketFrameReader {
  private socket: net.Socket | undefined;
  private tunnel: TunnelStream | undefined;
  /** Frames read before attach(); the socket pauses after the first. */
  private readonly early: Buffer[] = [];

  /** Give to net.connect({ onread }); the socket then emits no 'data'. */
  readonly onread = { buffer: landing, callback: (bytes: number): boolean => this.onRead(bytes) };

  /** Starts sending what the socket reads as DATA frames on `tunnel`. */
  attach(socket: net.Socket, tunnel: TunnelStream): void {
    this.socket = socket;
    this.tunnel = tunnel;
    let writable = true;
    for (const frame of this.early.splice(0)) writable = tunnel.writeFrame(frame, recycle);
    if (writable) socket.resume();
    else tunnel.once('drain', this.resume);
  }

  /** Returns false to pause the socket (onread's contract) until the tunnel drains. */
  private onRead(bytes: number): boolean {
    // The landing buffer takes the next read, so the payload moves to its frame now.
    const frame = takeFrame(bytes);
    landing.copy(frame, HEADER_SIZE, 0, bytes);
    if (!this.tunnel) {
      this.early.push(frame);
      return false;
    }
    if (this.tunnel.writeFrame(frame, recycle)) return true;
    this.tunnel.once('drain', this.resume);
    return false;
  }

  private readonly resume = (): void => {
    this.socket?.resume();
  };
}
