// The server side of a SPDY/3.1 session over a real TCP connection, driven by a client written
// with the framer: streams are replied to and carry data both ways, PINGs are echoed, a reset
// stream is destroyed, flow control is honoured once the peer keeps windows, and garbage ends
// the session with GOAWAY instead of an exception.
import { strict as assert } from 'node:assert';
import net from 'node:net';
import { once } from 'node:events';
import { createLogger } from '../../../common/log.js';
import { HeaderCompressor, HeaderDecompressor } from '../../../federation/apiserver/pods/header-compression.js';
import { SpdySession, type SpdyStream } from '../../../federation/apiserver/pods/spdy-session.js';
import { decodeHeaderBlock, encodeFrame, encodeHeaderBlock, SpdyParser, type Frame } from '../../../federation/apiserver/pods/spdy.js';
import { assertNoLeakedResources, resourceBaseline } from '../../support/leaks.js';

const log = createLogger('spdy-test', 'silent');

interface Client {
  socket: net.Socket;
  send(frame: Frame): void;
  open(id: number, headers: Record<string, string>, fin?: boolean): void;
  next(match: (f: Frame) => boolean): Promise<Frame>;
  headersOf(f: Frame): Map<string, string[]>;
  /** Frames received and not yet taken by next(). */
  pending(): Frame[];
}

async function pair(): Promise<{ client: Client; session: SpdySession; streams: SpdyStream[]; close(): Promise<void> }> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const [serverSide] = await accepted;
  const session = new SpdySession(serverSide, { log });
  const streams: SpdyStream[] = [];
  session.on('stream', (s: SpdyStream) => streams.push(s));
  const parser = new SpdyParser();
  const compressor = new HeaderCompressor();
  const decompressor = new HeaderDecompressor();
  const frames: Frame[] = [];
  const waiters = new Set<() => void>();
  socket.on('data', (d: Buffer) => {
    frames.push(...parser.push(d));
    for (const w of [...waiters]) w();
  });
  const client: Client = {
    socket,
    send: (f) => socket.write(encodeFrame(f)),
    open(id, headers, fin = false) {
      const block = compressor.compress(encodeHeaderBlock(new Map(Object.entries(headers).map(([k, v]) => [k, [v]]))));
      socket.write(encodeFrame({ type: 'syn_stream', streamId: id, associatedId: 0, priority: 0, slot: 0, fin, unidirectional: false, headerBlock: block }));
    },
    next: (match) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          const i = frames.findIndex(match);
          if (i < 0) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(frames.splice(i, 1)[0]!);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching frame; have ${JSON.stringify(frames.map((f) => f.type))}`));
        }, 5000);
        waiters.add(check);
        check();
      }),
    pending: () => [...frames],
    headersOf: (f) => decodeHeaderBlock(decompressor.decompress((f as { headerBlock: Buffer }).headerBlock)),
  };
  return {
    client,
    session,
    streams,
    close: async () => {
      socket.destroy();
      session.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('pods: SPDY/3.1 server session over TCP', function () {
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  beforeEach(async function () {
    baseline = await resourceBaseline();
  });
  afterEach(async function () {
    await assertNoLeakedResources(baseline);
  });

  it('replies to each stream, carries data both ways, FIN ends each direction', async function () {
    const p = await pair();
    try {
      p.client.open(1, { streamtype: 'stdin' });
      const reply = await p.client.next((f) => f.type === 'syn_reply');
      assert.equal((reply as { streamId: number }).streamId, 1);
      assert.deepEqual(p.client.headersOf(reply), new Map());
      const stream = p.streams[0]!;
      assert.equal(stream.header('streamType'), 'stdin');
      const got = once(stream, 'data');
      p.client.send({ type: 'data', streamId: 1, fin: true, data: Buffer.from('ping') });
      assert.equal(String((await got)[0]), 'ping');
      stream.end('pong');
      const data = await p.client.next((f) => f.type === 'data' && f.data.length > 0);
      assert.equal(String((data as { data: Buffer }).data), 'pong');
      await p.client.next((f) => f.type === 'data' && f.fin);
    } finally {
      await p.close();
    }
  });

  it('echoes client PINGs and destroys a stream the client resets', async function () {
    const p = await pair();
    try {
      p.client.send({ type: 'ping', id: 7 });
      assert.deepEqual(await p.client.next((f) => f.type === 'ping'), { type: 'ping', id: 7 });
      p.client.open(3, { streamtype: 'data' });
      await p.client.next((f) => f.type === 'syn_reply');
      const stream = p.streams[0]!;
      stream.on('error', () => {});
      const closed = once(stream, 'close');
      p.client.send({ type: 'rst_stream', streamId: 3, status: 5 });
      await closed;
      assert.equal(p.session.openStreams, 0);
    } finally {
      await p.close();
    }
  });

  it('refuses even stream ids and data on unknown streams with RST_STREAM', async function () {
    const p = await pair();
    try {
      p.client.open(2, { streamtype: 'data' });
      assert.equal(((await p.client.next((f) => f.type === 'rst_stream')) as { streamId: number }).streamId, 2);
      p.client.send({ type: 'data', streamId: 9, fin: false, data: Buffer.from('x') });
      assert.equal(((await p.client.next((f) => f.type === 'rst_stream')) as { streamId: number }).streamId, 9);
      assert.equal(p.streams.length, 0);
    } finally {
      await p.close();
    }
  });

  it('once the peer keeps windows, sends no more than its window until WINDOW_UPDATE', async function () {
    const p = await pair();
    try {
      p.client.send({ type: 'settings', clear: false, entries: [{ flags: 0, id: 7, value: 1000 }] });
      p.client.open(1, { streamtype: 'stdout' });
      await p.client.next((f) => f.type === 'syn_reply');
      const stream = p.streams[0]!;
      stream.write(Buffer.alloc(3000, 1));
      const first = (await p.client.next((f) => f.type === 'data')) as { data: Buffer };
      assert.equal(first.data.length, 1000);
      // The rest waits for the window: a PING round trip proves nothing else was sent meanwhile.
      p.client.send({ type: 'ping', id: 9 });
      await p.client.next((f) => f.type === 'ping');
      assert.deepEqual(p.client.pending().filter((f) => f.type === 'data'), []);
      p.client.send({ type: 'window_update', streamId: 1, delta: 2000 });
      const second = (await p.client.next((f) => f.type === 'data')) as { data: Buffer };
      assert.equal(second.data.length, 2000);
    } finally {
      await p.close();
    }
  });

  it('garbage ends the session with GOAWAY (protocol error), never an exception', async function () {
    const p = await pair();
    try {
      const closed = once(p.session, 'close');
      p.client.socket.write(Buffer.from([0x80, 0x02, 0x00, 0x01, 0, 0, 0, 0]));
      const goaway = (await p.client.next((f) => f.type === 'goaway')) as { status: number };
      assert.equal(goaway.status, 1);
      await closed;
    } finally {
      await p.close();
    }
  });
});
