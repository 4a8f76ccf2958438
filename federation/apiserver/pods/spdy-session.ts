// The server side of a SPDY/3.1 session as kube-apiservers run it for exec and port-forward: the
// client opens every stream (SYN_STREAM with a streamType header), the server answers each with
// SYN_REPLY at once and then reads and writes data on it. Each stream is a Node Duplex.
//
// Flow control: the windows are tracked as SPDY/3.1 asks (64 KiB initial, per stream and per
// session, WINDOW_UPDATE as data is consumed). Sending honours the peer's windows only once the
// peer has shown it keeps them (it sent a WINDOW_UPDATE or an initial window SETTING):
// moby/spdystream, the Go library kubectl uses, never sends WINDOW_UPDATE, so waiting for one would
// stall every transfer past 64 KiB. Backpressure then comes from TCP: a stream whose reader is
// slow pauses the transport.
import { EventEmitter } from 'node:events';
import { Duplex } from 'node:stream';
import type { Logger } from '../../../common/log.js';
import { HeaderCompressor, HeaderDecompressor } from './header-compression.js';
import {
  decodeHeaderBlock,
  encodeFrame,
  encodeHeaderBlock,
  GoAwayStatus,
  RstStatus,
  SETTINGS_INITIAL_WINDOW_SIZE,
  SpdyParser,
  SpdyProtocolError,
  type Frame,
  type HeaderBlock,
} from './spdy.js';

export const INITIAL_WINDOW = 64 * 1024;
/** Data frames we send are at most this large (kubectl reads in 32 KiB buffers). */
const MAX_DATA_FRAME = 32 * 1024;

export class SpdyStream extends Duplex {
  /** Bytes received and not yet acknowledged with WINDOW_UPDATE. */
  unacked = 0;
  /** What the peer may still receive on this stream (enforced once the peer keeps windows). */
  sendWindow: number;
  localFin = false;
  remoteFin = false;
  private waitingWindow: (() => void) | null = null;

  constructor(
    private readonly session: SpdySession,
    readonly id: number,
    readonly headers: HeaderBlock,
    sendWindow: number,
  ) {
    super({ allowHalfOpen: true });
    this.sendWindow = sendWindow;
  }

  /** A header value (SPDY header names are lower-case). */
  header(name: string): string | undefined {
    return this.headers.get(name.toLowerCase())?.[0];
  }

  override _read(): void {
    this.session.resumeFor(this);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    void this.session.sendData(this, chunk).then(() => done(), done);
  }

  override _final(done: (err?: Error | null) => void): void {
    this.localFin = true;
    this.session.sendFin(this);
    done();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.session.streamDestroyed(this);
    this.windowOpened();
    done(err);
  }

  windowOpened(): void {
    const w = this.waitingWindow;
    this.waitingWindow = null;
    w?.();
  }

  waitForWindow(): Promise<void> {
    return new Promise((resolve) => {
      this.waitingWindow = resolve;
    });
  }
}

export interface SpdySessionOptions {
  log: Logger;
}

/**
 * Runs on a byte transport: a TLS socket after the 101 answer, or a WebSocket stream carrying
 * SPDY frames (port-forward tunnelling). Emits 'stream' for each stream the client opens (already
 * replied to) and 'close' once, when the transport is gone.
 */
export class SpdySession extends EventEmitter {
  private readonly parser = new SpdyParser();
  private readonly compressor = new HeaderCompressor();
  private readonly decompressor = new HeaderDecompressor();
  private readonly streams = new Map<number, SpdyStream>();
  private lastStreamId = 0;
  private peerKeepsWindows = false;
  private peerInitialWindow = INITIAL_WINDOW;
  private sessionSendWindow = INITIAL_WINDOW;
  private sessionUnacked = 0;
  private readonly paused = new Set<SpdyStream>();
  private closed = false;
  private readonly sessionWindowWaiters: Array<() => void> = [];

  constructor(
    private readonly transport: Duplex,
    private readonly options: SpdySessionOptions,
  ) {
    super();
    transport.on('data', (chunk: Buffer) => this.received(chunk));
    transport.on('error', (err: Error) => options.log.debug({ err: err.message }, 'spdy transport error'));
    transport.once('close', () => this.teardown());
    transport.once('end', () => this.teardown());
  }

  get openStreams(): number {
    return this.streams.size;
  }

  /** Sends GOAWAY and ends the transport once what was written is flushed. */
  close(): void {
    if (this.closed) return;
    this.write({ type: 'goaway', lastGoodStreamId: this.lastStreamId, status: GoAwayStatus.OK });
    this.transport.end();
    this.teardown();
  }

  destroy(): void {
    this.transport.destroy();
    this.teardown();
  }

  private teardown(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of [...this.streams.values()]) s.destroy();
    this.streams.clear();
    for (const w of this.sessionWindowWaiters.splice(0)) w();
    if (!this.transport.destroyed && !this.transport.writableEnded) this.transport.end();
    this.emit('close');
  }

  private write(frame: Frame): boolean {
    if (this.closed || this.transport.destroyed || this.transport.writableEnded) return true;
    return this.transport.write(encodeFrame(frame));
  }

  private received(chunk: Buffer): void {
    let frames: Frame[];
    try {
      frames = this.parser.push(chunk);
    } catch (err) {
      this.protocolError(err as SpdyProtocolError);
      return;
    }
    for (const frame of frames) {
      try {
        this.handle(frame);
      } catch (err) {
        if (err instanceof SpdyProtocolError) return this.protocolError(err);
        throw err;
      }
    }
  }

  private protocolError(err: SpdyProtocolError): void {
    this.options.log.warn({ code: err.code, err: err.message }, 'spdy protocol error: session closed');
    this.write({ type: 'goaway', lastGoodStreamId: this.lastStreamId, status: GoAwayStatus.PROTOCOL_ERROR });
    this.transport.end();
    this.teardown();
  }

  private handle(frame: Frame): void {
    switch (frame.type) {
      case 'syn_stream': {
        // Inflate first, whatever happens to the stream: the zlib context must stay in step.
        const headers = decodeHeaderBlock(this.decompressor.decompress(frame.headerBlock));
        if (frame.streamId % 2 === 0 || frame.streamId <= this.lastStreamId) {
          this.write({ type: 'rst_stream', streamId: frame.streamId, status: RstStatus.PROTOCOL_ERROR });
          return;
        }
        this.lastStreamId = frame.streamId;
        const stream = new SpdyStream(this, frame.streamId, headers, this.peerInitialWindow);
        this.streams.set(frame.streamId, stream);
        this.write({ type: 'syn_reply', streamId: frame.streamId, fin: false, headerBlock: this.compressor.compress(encodeHeaderBlock(new Map())) });
        if (frame.fin || frame.unidirectional) {
          stream.remoteFin = true;
          stream.push(null);
        }
        this.emit('stream', stream);
        return;
      }
      case 'data': {
        const stream = this.streams.get(frame.streamId);
        if (!stream || stream.remoteFin) {
          this.write({ type: 'rst_stream', streamId: frame.streamId, status: stream ? RstStatus.STREAM_ALREADY_CLOSED : RstStatus.INVALID_STREAM });
          return;
        }
        if (frame.data.length > 0) {
          stream.unacked += frame.data.length;
          this.sessionUnacked += frame.data.length;
          if (!stream.push(frame.data)) this.pauseFor(stream);
          else this.acknowledge(stream);
        }
        if (frame.fin) {
          stream.remoteFin = true;
          stream.push(null);
          this.forgetIfDone(stream);
        }
        return;
      }
      case 'rst_stream': {
        const stream = this.streams.get(frame.streamId);
        if (stream) {
          this.streams.delete(frame.streamId);
          stream.destroy();
        }
        return;
      }
      case 'settings':
        for (const e of frame.entries) {
          if (e.id === SETTINGS_INITIAL_WINDOW_SIZE) {
            this.peerKeepsWindows = true;
            const delta = e.value - this.peerInitialWindow;
            this.peerInitialWindow = e.value;
            for (const s of this.streams.values()) {
              s.sendWindow += delta;
              s.windowOpened();
            }
          }
        }
        return;
      case 'ping':
        // Client pings have odd ids; a reply to one of ours (we send none) would be even.
        if (frame.id % 2 === 1) this.write(frame);
        return;
      case 'goaway':
        // No new streams will come: the streams open now finish on their own.
        return;
      case 'headers':
        this.decompressor.decompress(frame.headerBlock);
        return;
      case 'window_update': {
        this.peerKeepsWindows = true;
        if (frame.streamId === 0) {
          this.sessionSendWindow += frame.delta;
          for (const w of this.sessionWindowWaiters.splice(0)) w();
        } else {
          const s = this.streams.get(frame.streamId);
          if (s) {
            s.sendWindow += frame.delta;
            s.windowOpened();
          }
        }
        return;
      }
      case 'syn_reply':
        // The server opens no streams, so a reply is for nothing we asked: ignore its headers but keep zlib in step.
        this.decompressor.decompress(frame.headerBlock);
        return;
    }
  }

  private acknowledge(stream: SpdyStream): void {
    // WINDOW_UPDATE once half a window was consumed, for the stream and for the session.
    if (stream.unacked >= INITIAL_WINDOW / 2 && !stream.remoteFin) {
      this.write({ type: 'window_update', streamId: stream.id, delta: stream.unacked });
      stream.unacked = 0;
    }
    if (this.sessionUnacked >= INITIAL_WINDOW / 2) {
      this.write({ type: 'window_update', streamId: 0, delta: this.sessionUnacked });
      this.sessionUnacked = 0;
    }
  }

  private pauseFor(stream: SpdyStream): void {
    this.paused.add(stream);
    this.transport.pause();
  }

  /** The stream's reader wants more: acknowledge what it consumed and resume the transport. */
  resumeFor(stream: SpdyStream): void {
    if (!this.paused.delete(stream)) return;
    this.acknowledge(stream);
    if (this.paused.size === 0 && !this.closed) this.transport.resume();
  }

  async sendData(stream: SpdyStream, chunk: Buffer): Promise<void> {
    let at = 0;
    while (at < chunk.length) {
      if (this.closed || stream.destroyed || !this.streams.has(stream.id)) throw new Error('spdy stream closed');
      let size = Math.min(MAX_DATA_FRAME, chunk.length - at);
      if (this.peerKeepsWindows) {
        if (stream.sendWindow <= 0) {
          await stream.waitForWindow();
          continue;
        }
        if (this.sessionSendWindow <= 0) {
          await new Promise<void>((resolve) => this.sessionWindowWaiters.push(resolve));
          continue;
        }
        size = Math.min(size, stream.sendWindow, this.sessionSendWindow);
        stream.sendWindow -= size;
        this.sessionSendWindow -= size;
      }
      const flushed = this.write({ type: 'data', streamId: stream.id, fin: false, data: chunk.subarray(at, at + size) });
      at += size;
      if (!flushed) await this.drained();
    }
  }

  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.transport.off('drain', done);
        this.off('close', done);
        resolve();
      };
      this.transport.on('drain', done);
      this.once('close', done);
    });
  }

  sendFin(stream: SpdyStream): void {
    if (!this.streams.has(stream.id)) return;
    this.write({ type: 'data', streamId: stream.id, fin: true, data: Buffer.alloc(0) });
    this.forgetIfDone(stream);
  }

  private forgetIfDone(stream: SpdyStream): void {
    if (stream.localFin && stream.remoteFin) this.streams.delete(stream.id);
  }

  /** A stream destroyed locally before both sides finished is reset toward the peer. */
  streamDestroyed(stream: SpdyStream): void {
    this.paused.delete(stream);
    if (this.streams.get(stream.id) === stream) {
      this.streams.delete(stream.id);
      if (!(stream.localFin && stream.remoteFin)) this.write({ type: 'rst_stream', streamId: stream.id, status: RstStatus.CANCEL });
    }
    if (this.paused.size === 0 && !this.closed && this.transport.isPaused()) this.transport.resume();
  }
}
