// Helpers for the wire tests that run MuxSessions over real loopback TCP connections: socket
// pairs, session pairs, a raw frame-level peer, bounded waits and a per-test handle leak check
// (the one in test/support/leaks.ts).
import net from 'node:net';
import { setImmediate as nextTurn, setTimeout as pause } from 'node:timers/promises';
import { FrameType } from '../../wire/frames.js';
import { FrameReceiver } from '../../wire/receiver.js';
import { encodeControl, encodeJson } from '../../wire/sender.js';
import { MuxSession, type SessionOptions } from '../../wire/session.js';
import type { TunnelStream } from '../../wire/stream.js';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';

// ---- bounded waits ------------------------------------------------------------------------------

/** Rejects when `promise` does not settle within `ms`; the timer never outlives the wait. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `condition` every loop turn (then every few ms) until it holds, failing after `ms`. */
export async function until(condition: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  let turn = 0;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    if (turn++ < 50) await nextTurn();
    else await pause(2);
  }
}

/** Resolves with the stream's error (or null) once it has closed, also when it closed already. */
export function closed(stream: TunnelStream): Promise<Error | null> {
  if (stream.closed) return Promise.resolve(stream.errored);
  return new Promise((resolve) => stream.once('close', () => resolve(stream.errored)));
}

/** Resolves with the close error (if any) once the session has closed, also when it closed already. */
export function sessionClosed(session: MuxSession): Promise<Error | undefined> {
  if (session.isClosed) return Promise.resolve(undefined);
  return new Promise((resolve) => session.once('close', resolve));
}

/** Destroys `session` and waits until `other`, the session at the far end of the link, has closed too. */
export async function closeLink(session: MuxSession, other: MuxSession): Promise<void> {
  session.destroy();
  await within(sessionClosed(other), 5000, 'the far end of the link to close');
}

/** Reads a stream to its end. */
export function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('error', reject);
  });
}

/** Writes `pattern(total)` in `chunkSize` pieces, honouring backpressure. */
export async function writeBytes(stream: NodeJS.WritableStream, total: number, chunkSize = 64 * 1024): Promise<void> {
  const bytes = pattern(total);
  let sent = 0;
  while (sent < total) {
    const n = Math.min(chunkSize, total - sent);
    const chunk = bytes.subarray(sent, sent + n);
    sent += n;
    if (!stream.write(chunk)) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = (): void => {
          stream.off('error', onError);
          resolve();
        };
        const onError = (error: Error): void => {
          stream.off('drain', onDrain);
          reject(error);
        };
        stream.once('drain', onDrain);
        stream.once('error', onError);
      });
    }
  }
}

export function pattern(size: number): Buffer {
  const buffer = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) buffer[i] = (i * 7 + 3) & 0xff;
  return buffer;
}

// ---- harness ------------------------------------------------------------------------------------

export const SESSION_DEFAULTS = {
  coalesceWrites: false,
  window: 256 * 1024,
  keepaliveIntervalMs: 1000,
  keepaliveTimeoutMs: 5000,
  maxStreams: 100,
} as const;

export interface Frame {
  type: FrameType;
  streamId: number;
  payload: Buffer;
}

/** A peer that speaks frames by hand: records what it receives and writes raw bytes. */
export class RawPeer {
  readonly frames: Frame[] = [];
  /** DATA bytes received per stream. */
  readonly data = new Map<number, number>();
  readonly receiver = new FrameReceiver({
    onControl: (type, streamId, payload) => this.frames.push({ type, streamId, payload: Buffer.from(payload) }),
    onData: (streamId, chunk) => this.data.set(streamId, (this.data.get(streamId) ?? 0) + chunk.length),
  });
  protocolError: Error | undefined;
  ended = false;

  constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      try {
        this.receiver.feed(chunk);
      } catch (error) {
        this.protocolError = error as Error;
        this.receiver.stop();
      }
    });
    // Behave like a well-mannered peer: when the session ends the link, end ours too.
    socket.on('end', () => {
      this.ended = true;
      socket.end();
    });
    socket.on('close', () => (this.ended = true));
    socket.on('error', () => undefined);
  }

  send(...buffers: Buffer[]): void {
    for (const buffer of buffers) this.socket.write(buffer);
  }

  hello(window = 64 * 1024, instance = 'raw-peer'): void {
    this.send(encodeJson(FrameType.HELLO, 0, { version: 1, instance, window }));
  }

  framesOf(type: FrameType): Frame[] {
    return this.frames.filter((frame) => frame.type === type);
  }

  async waitFor(type: FrameType, what = FrameType[type], count = 1, ms = 5000): Promise<Frame> {
    await until(() => this.framesOf(type).length >= count, ms, `${what} frame from the session`);
    return this.framesOf(type)[count - 1]!;
  }

  json(frame: Frame): Record<string, unknown> {
    return JSON.parse(frame.payload.toString('utf8')) as Record<string, unknown>;
  }

  /** Waits until the session at the other end has closed the link (our side ends with it). */
  async waitEnded(ms = 5000): Promise<void> {
    await until(() => this.ended, ms, 'raw peer to see the close');
  }
}

export class Harness {
  private readonly sockets = new Set<net.Socket>();
  private readonly sessions = new Set<MuxSession>();

  /** A connected loopback TCP pair; the listening server is already closed. */
  async socketPair(): Promise<[net.Socket, net.Socket]> {
    // Like the real carriers (agent-listener.ts, connector.ts): Nagle off, half-open allowed.
    const server = net.createServer({ allowHalfOpen: true, noDelay: true });
    const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    const client = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true, noDelay: true });
    this.sockets.add(client);
    client.on('error', () => undefined);
    const [serverSide] = await Promise.all([accepted, new Promise((resolve) => client.once('connect', resolve))]);
    this.sockets.add(serverSide);
    serverSide.on('error', () => undefined);
    // Stop listening now; the 'close' event itself would wait for the accepted socket to end.
    server.close();
    return [serverSide, client];
  }

  session(role: 'server' | 'agent', carrier: net.Socket, options: Partial<SessionOptions> = {}): MuxSession {
    const session = new MuxSession({ ...SESSION_DEFAULTS, role, carrier, instance: `${role}-test`, ...options });
    this.sessions.add(session);
    return session;
  }

  /** A server session and an agent session over one TCP connection, handshake completed. */
  async linked(serverOptions: Partial<SessionOptions> = {}, agentOptions: Partial<SessionOptions> = {}) {
    const [serverSocket, agentSocket] = await this.socketPair();
    const server = this.session('server', serverSocket, serverOptions);
    const agent = this.session('agent', agentSocket, agentOptions);
    await within(
      Promise.all([new Promise((r) => server.once('hello', r)), new Promise((r) => agent.once('hello', r))]),
      5000,
      'HELLO exchange',
    );
    return { server, agent, serverSocket, agentSocket };
  }

  /** A server session whose peer is a RawPeer; the peer has not sent HELLO yet. */
  async rawAgent(serverOptions: Partial<SessionOptions> = {}) {
    const [serverSocket, agentSocket] = await this.socketPair();
    const server = this.session('server', serverSocket, serverOptions);
    const peer = new RawPeer(agentSocket);
    await peer.waitFor(FrameType.HELLO);
    return { server, peer, serverSocket, agentSocket };
  }

  /** An agent session whose peer is a RawPeer; the peer has not sent HELLO yet. */
  async rawServer(agentOptions: Partial<SessionOptions> = {}) {
    const [serverSocket, agentSocket] = await this.socketPair();
    const agent = this.session('agent', agentSocket, agentOptions);
    const peer = new RawPeer(serverSocket);
    await peer.waitFor(FrameType.HELLO);
    return { agent, peer, serverSocket, agentSocket };
  }

  async dispose(): Promise<void> {
    for (const session of this.sessions) session.destroy();
    const closing: Promise<unknown>[] = [];
    for (const socket of this.sockets) {
      if (!socket.closed) closing.push(new Promise((resolve) => socket.once('close', resolve)));
      socket.destroy();
    }
    await within(Promise.all(closing), 5000, 'sockets to close');
  }
}

// ---- raw-peer sequences --------------------------------------------------------------------------

/** Where openRawStream() opens its stream to; the peer receives exactly this in the OPEN frame. */
export const RAW_OPEN = { host: 'x', port: 1, sid: 'raw', timeoutMs: 5000 } as const;

export interface RawAgentOptions {
  /** Options for the server session. */
  server?: Partial<SessionOptions>;
  /** The receive window the raw peer announces in its HELLO. */
  window?: number;
}

/** A server session whose RawPeer agent has sent HELLO, and the server has taken it in. */
export async function rawAgentAfterHello(h: Harness, options: RawAgentOptions = {}) {
  const raw = await h.rawAgent(options.server);
  raw.peer.hello(options.window);
  await until(() => raw.server.peerHello !== undefined, 5000, 'server to receive HELLO');
  return raw;
}

/**
 * rawAgentAfterHello(), then one stream: the server opens RAW_OPEN, the peer answers the OPEN
 * frame (with OPEN_OK unless `answer` gives other frames, sent in one go) and the open resolves.
 * Returns the OPEN frame the peer received as `open` and the server's stream as `stream`.
 */
export async function openRawStream(h: Harness, options: RawAgentOptions & { answer?: (streamId: number) => Buffer[] } = {}) {
  const raw = await rawAgentAfterHello(h, options);
  const { host, port, ...openOptions } = RAW_OPEN;
  const opening = raw.server.open(host, port, openOptions);
  const open = await raw.peer.waitFor(FrameType.OPEN);
  raw.peer.send(...(options.answer?.(open.streamId) ?? [encodeControl(FrameType.OPEN_OK, open.streamId)]));
  const stream = await within(opening, 5000, 'open');
  return { ...raw, open, stream };
}

/** Destroys the server session and waits until its RawPeer has seen the link close. */
export async function closeRaw(server: MuxSession, peer: RawPeer): Promise<void> {
  server.destroy();
  await peer.waitEnded();
}

/**
 * Wraps a test body: takes a handle baseline, runs the body with a Harness, and fails the test
 * when TCP handles or timers outlive it. The body must close what it opened (usually by
 * destroying one session and letting the peer notice); the harness only tears things down
 * after the check, or when the body failed.
 */
export function loopbackTest(body: (h: Harness) => Promise<void>): () => Promise<void> {
  return async function () {
    const baseline = await resourceBaseline();
    const harness = new Harness();
    try {
      await body(harness);
      await assertNoLeakedResources(baseline);
    } finally {
      await harness.dispose();
    }
  };
}
