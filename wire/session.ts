// A multiplexed link over one carrier (a TLS socket or a WebSocket stream): routes frames to
// streams, opens streams (server side) or answers opens (agent side), runs the keepalive and
// carries the drain announcement. All framing rules live in receiver.ts/sender.ts and all
// per-stream rules in stream.ts; this file only ties them to one carrier.
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { performance } from 'node:perf_hooks';
import { FrameType, MAX_STREAM_ID, PROTOCOL_VERSION } from './frames.js';
import { FrameReceiver } from './receiver.js';
import { FrameSender, encodeControl, encodeJson, encodeWindow } from './sender.js';
import { TunnelStream, type StreamLink } from './stream.js';
import { DialError, LinkClosedError, LinkRefusedError, ProtocolError, StreamResetError, type DialErrorCode, type LinkRefusalCode, type ResetCode } from './errors.js';

export { LinkClosedError };
import {
  clip,
  parseGoAway,
  parseHello,
  parseOpen,
  parseOpenFail,
  parseReplicas,
  parseReset,
  type GoAwayMessage,
  type ReplicasMessage,
  type HelloMessage,
  type OpenMessage,
} from './messages.js';

export interface SessionOptions {
  /** The server opens streams; the agent answers them. */
  role: 'server' | 'agent';
  carrier: Duplex;
  /** Concatenate each batch of frames into one write (message-oriented carriers). */
  coalesceWrites: boolean;
  /** Our per-stream receive window in bytes, announced to the peer in HELLO. */
  window: number;
  keepaliveIntervalMs: number;
  /** The link is declared dead when nothing arrives for this long. */
  keepaliveTimeoutMs: number;
  /** Most streams open at once; the server refuses to open more, the agent refuses to accept. */
  maxStreams: number;
  /** Our HELLO, sent as the first frame. */
  instance: string;
  /** Protocol extensions announced in our HELLO (agent side: FEATURE_REPLICAS). */
  features?: string[];
}

export interface OpenOptions {
  sid: string;
  timeoutMs: number;
  signal?: AbortSignal;
}

interface PendingOpen {
  stream: TunnelStream;
  resolve(stream: TunnelStream): void;
  reject(error: DialError): void;
}

export interface MuxSessionEvents {
  hello: [HelloMessage];
  /** Agent side: the server asks for a connection. Answer with accept() or reject(). */
  open: [TunnelStream, OpenMessage];
  /** The peer is going away; `code` is set when the server closes the link for a typed reason. */
  goaway: [reason: string, code?: LinkRefusalCode];
  rtt: [number];
  /** Agent side: the hub's current live replica set (each REPLICAS frame). */
  replicas: [ReplicasMessage];
  close: [Error | undefined];
}

export class MuxSession extends EventEmitter<MuxSessionEvents> implements StreamLink {
  private readonly streams = new Map<number, TunnelStream>();
  private readonly pendingOpens = new Map<number, PendingOpen>();
  private readonly sender: FrameSender;
  private readonly receiver: FrameReceiver;
  private readonly keepaliveTimer: NodeJS.Timeout;
  private lastReceivedAt = performance.now();
  private nextStreamId = 1;
  private highestRemoteStreamId = 0;
  private helloReceived = false;
  private closed = false;
  private ending = false;
  /** We announced GOAWAY. */
  localDraining = false;
  /** The peer announced GOAWAY. */
  remoteDraining = false;
  /** Latest keepalive round trip in milliseconds; NaN until the first PONG. */
  rttMs = Number.NaN;
  /** Bytes read from the carrier (every frame, headers included). */
  bytesIn = 0;
  peerHello: HelloMessage | undefined;

  constructor(private readonly options: SessionOptions) {
    super();
    const { carrier } = options;
    this.sender = new FrameSender(carrier, options.coalesceWrites);
    this.receiver = new FrameReceiver({
      onControl: (type, id, payload) => this.onControl(type, id, payload),
      onData: (id, chunk) => this.streams.get(id)?.receiveData(chunk),
    });
    carrier.on('data', this.onCarrierData);
    carrier.on('end', this.onCarrierEnd);
    carrier.on('error', this.onCarrierError);
    carrier.on('close', this.onCarrierClose);
    this.keepaliveTimer = setInterval(this.onKeepaliveTick, options.keepaliveIntervalMs);
    const hello: HelloMessage = { version: PROTOCOL_VERSION, instance: options.instance, window: options.window };
    if (options.features?.length) hello.features = options.features;
    this.sender.sendControl(encodeJson(FrameType.HELLO, 0, hello));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Bytes written to the carrier (every frame, headers included). */
  get bytesOut(): number {
    return this.sender.bytesWritten;
  }

  /** Open streams plus opens awaiting an answer. */
  get streamCount(): number {
    return this.streams.size;
  }

  /** Server side: asks the agent to connect to host:port and resolves with the stream. */
  open(host: string, port: number, options: OpenOptions): Promise<TunnelStream> {
    if (this.options.role !== 'server') throw new Error('only the server side opens streams');
    if (this.closed) return Promise.reject(new DialError('LINK_LOST', 'agent link is closed'));
    if (!this.peerHello) return Promise.reject(new DialError('NO_AGENT', 'agent link has not completed its handshake'));
    if (this.localDraining || this.remoteDraining) return Promise.reject(new DialError('AGENT_DRAINING', 'agent link is draining'));
    if (this.streams.size >= this.options.maxStreams) {
      return Promise.reject(new DialError('STREAM_LIMIT', `agent link has ${this.streams.size} streams open (limit ${this.options.maxStreams})`));
    }
    if (this.nextStreamId > MAX_STREAM_ID) {
      this.goAway('stream ids exhausted');
      return Promise.reject(new DialError('AGENT_DRAINING', 'agent link ran out of stream ids'));
    }
    const id = this.nextStreamId++;
    const stream = new TunnelStream(this, id, options.sid, this.options.window, this.peerHello.window);
    this.streams.set(id, stream);
    const message: OpenMessage = { host, port, sid: options.sid, timeoutMs: options.timeoutMs };
    this.sender.sendControl(encodeJson(FrameType.OPEN, id, message));

    return new Promise<TunnelStream>((resolve, reject) => {
      const { signal } = options;
      const settle = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.pendingOpens.delete(id);
      };
      const fail = (error: DialError): void => {
        settle();
        stream.cancel('CANCEL', error.message);
        reject(error);
      };
      const onAbort = (): void => fail(new DialError('CANCELLED', 'dial cancelled by the caller'));
      // The agent enforces timeoutMs on its own dial; this timer is the backstop for a slow link.
      const timer = setTimeout(() => fail(new DialError('DIAL_TIMEOUT', `no answer from the agent within ${options.timeoutMs} ms`)), options.timeoutMs + 1000);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pendingOpens.set(id, {
        stream,
        resolve: (s) => {
          settle();
          resolve(s);
        },
        reject: (error) => {
          settle();
          reject(error);
        },
      });
      if (signal?.aborted) onAbort();
    });
  }

  /** Agent side: the destination is connected; data may flow. */
  accept(stream: TunnelStream): void {
    if (this.closed || stream.destroyed) return;
    this.sender.sendControl(encodeControl(FrameType.OPEN_OK, stream.id));
  }

  /** Agent side: the dial failed; the server's dial() rejects with this code. */
  reject(stream: TunnelStream, code: DialErrorCode, message: string): void {
    if (this.streams.get(stream.id) === stream) {
      this.streams.delete(stream.id);
      this.sender.sendControl(encodeJson(FrameType.OPEN_FAIL, stream.id, { code, message: clip(message) }));
    }
    stream.abandon();
  }

  /** Announces that this side is going away: the peer opens (or expects) no new streams. */
  goAway(reason: string): void {
    if (this.closed || this.localDraining) return;
    this.localDraining = true;
    this.sender.sendControl(encodeJson(FrameType.GOAWAY, 0, { reason: clip(reason) }));
  }

  /** Server side: tells the agent the live replica set. Only for peers whose HELLO listed FEATURE_REPLICAS. */
  sendReplicas(message: ReplicasMessage): void {
    if (this.options.role !== 'server') throw new Error('only the server side announces replicas');
    if (this.closed || this.ending) return;
    this.sender.sendControl(encodeJson(FrameType.REPLICAS, 0, message));
  }

  /** Whether the peer's HELLO announced `feature`. */
  peerSupports(feature: string): boolean {
    return this.peerHello?.features?.includes(feature) ?? false;
  }

  /** Flushes what is queued, then closes the carrier; the peer sees a clean end of the link. */
  end(): void {
    if (this.closed || this.ending) return;
    this.ending = true;
    this.goAway('closing');
    process.nextTick(() => process.nextTick(() => this.options.carrier.end()));
  }

  /**
   * Tears the link down at once; every stream and pending open fails with `error`. With
   * `goAwayReason`, a last GOAWAY tells the peer why (and, given as a message, with a typed code)
   * before the carrier closes (queued frames are dropped, so it is written straight to the carrier).
   */
  destroy(error?: Error, goAwayReason?: string | GoAwayMessage): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.keepaliveTimer);
    this.receiver.stop();
    this.sender.close();
    const { carrier } = this.options;
    carrier.off('data', this.onCarrierData);
    carrier.off('end', this.onCarrierEnd);
    carrier.off('close', this.onCarrierClose);
    // Keep an error listener: a late socket error after destroy must not crash the process.
    if (goAwayReason !== undefined && carrier.writable) {
      const message = typeof goAwayReason === 'string' ? { reason: goAwayReason } : goAwayReason;
      carrier.end(encodeJson(FrameType.GOAWAY, 0, { ...message, reason: clip(message.reason) }), () => carrier.destroy());
    } else {
      carrier.destroy();
    }
    const reason = error?.message ?? 'link closed';
    for (const pending of [...this.pendingOpens.values()]) {
      pending.reject(new DialError('LINK_LOST', `agent link lost: ${reason}`));
      pending.stream.abandon();
    }
    for (const stream of [...this.streams.values()]) stream.receiveReset(new StreamResetError('LINK_LOST', `agent link lost: ${reason}`));
    this.streams.clear();
    this.emit('close', error);
  }

  // ---- StreamLink ----------------------------------------------------------------------------

  sendData(streamId: number, chunk: Buffer): void {
    this.sender.sendData(streamId, chunk);
  }
  sendWindow(streamId: number, increment: number): void {
    this.sender.sendControl(encodeWindow(streamId, increment));
  }
  sendFin(streamId: number): void {
    this.sender.sendControl(encodeControl(FrameType.FIN, streamId));
  }
  sendReset(streamId: number, code: ResetCode, message: string): void {
    this.sender.sendControl(encodeJson(FrameType.RESET, streamId, { code, message: clip(message) }));
  }
  whenWritable(callback: () => void): void {
    this.sender.whenWritable(callback);
  }
  forget(stream: TunnelStream): void {
    if (this.streams.get(stream.id) === stream) this.streams.delete(stream.id);
    const pending = this.pendingOpens.get(stream.id);
    if (pending) pending.reject(new DialError('CANCELLED', 'stream closed before the agent answered'));
  }

  // ---- carrier events ------------------------------------------------------------------------

  private readonly onCarrierData = (chunk: Buffer): void => {
    this.lastReceivedAt = performance.now();
    this.bytesIn += chunk.length;
    try {
      this.receiver.feed(chunk);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      this.destroy(error, `protocol error: ${error.message}`);
    }
  };

  private readonly onCarrierEnd = (): void => this.destroy(new LinkClosedError('peer closed the link'));
  private readonly onCarrierError = (error: Error): void => this.destroy(new LinkClosedError(`carrier error: ${error.message}`));
  private readonly onCarrierClose = (): void => this.destroy(new LinkClosedError('carrier closed'));

  private readonly onKeepaliveTick = (): void => {
    const silentFor = performance.now() - this.lastReceivedAt;
    if (silentFor > this.options.keepaliveTimeoutMs) {
      this.destroy(new LinkClosedError(`no frames from the peer for ${Math.round(silentFor)} ms (keepalive timeout ${this.options.keepaliveTimeoutMs} ms)`));
      return;
    }
    const stamp = Buffer.allocUnsafe(8);
    stamp.writeDoubleBE(performance.now(), 0);
    this.sender.sendControl(encodeControl(FrameType.PING, 0, stamp));
  };

  // ---- frame dispatch ------------------------------------------------------------------------

  private onControl(type: FrameType, id: number, payload: Buffer): void {
    if (!this.helloReceived && type === FrameType.GOAWAY) {
      // A server refusing the link (e.g. a revoked certificate) answers the HELLO with a typed GOAWAY.
      const { reason, code } = parseGoAway(payload);
      if (code !== undefined) return this.destroy(new LinkRefusedError(code, reason));
    }
    if (!this.helloReceived && type !== FrameType.HELLO) throw new ProtocolError(`expected HELLO, got frame type ${type}`);
    switch (type) {
      case FrameType.HELLO: {
        if (this.helloReceived) throw new ProtocolError('second HELLO');
        this.helloReceived = true;
        this.peerHello = parseHello(payload);
        this.emit('hello', this.peerHello);
        return;
      }
      case FrameType.PING:
        if (payload.length !== 8) throw new ProtocolError('PING payload must be 8 bytes');
        this.sender.sendControl(encodeControl(FrameType.PONG, 0, payload));
        return;
      case FrameType.PONG: {
        if (payload.length !== 8) throw new ProtocolError('PONG payload must be 8 bytes');
        this.rttMs = performance.now() - payload.readDoubleBE(0);
        this.emit('rtt', this.rttMs);
        return;
      }
      case FrameType.GOAWAY: {
        const { reason, code } = parseGoAway(payload);
        if (!this.remoteDraining) {
          this.remoteDraining = true;
          if (code === undefined) this.emit('goaway', reason);
          else this.emit('goaway', reason, code);
        }
        return;
      }
      case FrameType.REPLICAS:
        this.requireRole('agent', type);
        if (id !== 0) throw new ProtocolError('REPLICAS on a stream other than 0');
        this.emit('replicas', parseReplicas(payload));
        return;
      case FrameType.OPEN:
        return this.onOpen(id, payload);
      case FrameType.OPEN_OK: {
        this.requireRole('server', type);
        const pending = this.pendingOpens.get(id);
        if (pending) pending.resolve(pending.stream);
        return;
      }
      case FrameType.OPEN_FAIL: {
        this.requireRole('server', type);
        const pending = this.pendingOpens.get(id);
        if (!pending) return; // we gave up on it already
        const { code, message } = parseOpenFail(payload);
        this.streams.delete(id);
        pending.reject(new DialError(code, message));
        pending.stream.abandon();
        return;
      }
      case FrameType.WINDOW: {
        if (payload.length !== 4) throw new ProtocolError('WINDOW payload must be 4 bytes');
        this.streams.get(id)?.receiveWindow(payload.readUInt32BE(0));
        return;
      }
      case FrameType.FIN:
        this.streams.get(id)?.receiveFin();
        return;
      case FrameType.RESET: {
        const stream = this.streams.get(id);
        if (!stream) return; // already gone on our side: resets cross on the wire
        const { code, message } = parseReset(payload);
        this.streams.delete(id);
        const pending = this.pendingOpens.get(id);
        if (pending) {
          pending.reject(new DialError('DIAL_FAILED', `agent reset the stream: ${message}`));
          stream.abandon();
        } else {
          stream.receiveReset(new StreamResetError(code, message));
        }
        return;
      }
      default:
        throw new ProtocolError(`unexpected frame type ${type}`);
    }
  }

  private onOpen(id: number, payload: Buffer): void {
    this.requireRole('agent', FrameType.OPEN);
    if (id <= this.highestRemoteStreamId) throw new ProtocolError(`OPEN reuses stream id ${id}`);
    this.highestRemoteStreamId = id;
    const target = parseOpen(payload);
    const stream = new TunnelStream(this, id, target.sid, this.options.window, this.peerHello!.window);
    this.streams.set(id, stream);
    if (this.localDraining) return this.reject(stream, 'AGENT_DRAINING', 'agent is draining');
    if (this.streams.size > this.options.maxStreams) {
      return this.reject(stream, 'STREAM_LIMIT', `agent has ${this.streams.size - 1} streams open (limit ${this.options.maxStreams})`);
    }
    this.emit('open', stream, target);
  }

  private requireRole(role: SessionOptions['role'], type: FrameType): void {
    if (this.options.role !== role) throw new ProtocolError(`frame type ${type} is not valid towards the ${this.options.role}`);
  }
}

/**
 * Server side: refuses a link before any HELLO with one GOAWAY carrying `code`, then closes the
 * carrier; the agent's handshake fails with a LinkRefusedError that names the reason. What the agent
 * sends meanwhile is read and dropped, so the close does not reset the connection before the GOAWAY
 * is read; an agent that never closes its side is cut off after `lingerMs`.
 */
export function refuseLink(carrier: Duplex, code: LinkRefusalCode, reason: string, lingerMs: number): void {
  carrier.on('error', () => carrier.destroy());
  const timer = setTimeout(() => carrier.destroy(), lingerMs);
  carrier.once('close', () => clearTimeout(timer));
  carrier.resume();
  carrier.end(encodeJson(FrameType.GOAWAY, 0, { reason: clip(reason), code } satisfies GoAwayMessage));
}
