// SocketFrameReader: a destination socket read straight into DATA frames, spliced to a stream of a
// real session pair over loopback TCP. What the agent writes to its carrier is parsed frame by frame.
import { strict as assert } from 'node:assert';
import net from 'node:net';
import { FrameType, HEADER_SIZE, READ_FRAME_SIZE } from '../../wire/frames.js';
import { SocketFrameReader } from '../../wire/frame-reader.js';
import { splice, type SpliceResult } from '../../wire/splice.js';
import type { TunnelStream } from '../../wire/stream.js';
import { closeLink, pattern, readAll, until, within, loopbackTest, type Harness } from './loopback.js';

const OPEN = { sid: 'frames', timeoutMs: 5000 };
const MiB = 1024 * 1024;

/** Sizes (header included) of the DATA frames in a carrier's byte stream. */
class DataFrameSizes {
  readonly sizes: number[] = [];
  private header = Buffer.alloc(0);
  private remaining = 0;

  feed = (chunk: Buffer): void => {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - offset);
        this.remaining -= n;
        offset += n;
        continue;
      }
      const need = HEADER_SIZE - this.header.length;
      this.header = Buffer.concat([this.header, chunk.subarray(offset, offset + need)]);
      offset += Math.min(need, chunk.length - offset);
      if (this.header.length < HEADER_SIZE) return;
      const length = this.header.readUInt32BE(6);
      if (this.header[0] === FrameType.DATA) this.sizes.push(HEADER_SIZE + length);
      this.remaining = length;
      this.header = Buffer.alloc(0);
    }
  };
}

/**
 * A linked pair whose agent dials a loopback "destination" with a SocketFrameReader for every
 * open; `remotes` are the destination's ends. `beforeSplice` may hold the splice back.
 */
async function framedLink(h: Harness, window: number, beforeSplice: (socket: net.Socket) => Promise<void> = async () => undefined) {
  const { server, agent, serverSocket } = await h.linked({ window }, { window });
  const carrierFrames = new DataFrameSizes();
  serverSocket.on('data', carrierFrames.feed);
  const remotes: net.Socket[] = [];
  const sockets: net.Socket[] = [];
  const results: SpliceResult[] = [];
  const destination = net.createServer({ allowHalfOpen: true }, (socket) => remotes.push(socket));
  await new Promise<void>((resolve) => destination.listen(0, '127.0.0.1', resolve));
  const { port } = destination.address() as net.AddressInfo;
  agent.on('open', (stream: TunnelStream) => {
    const reader = new SocketFrameReader();
    const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true, onread: reader.onread });
    sockets.push(socket);
    socket.once('connect', () => {
      agent.accept(stream);
      void beforeSplice(socket).then(() => splice(stream, socket, 'DESTINATION_ERROR', (result) => results.push(result), reader));
    });
  });
  const close = async (): Promise<void> => {
    await new Promise((resolve) => destination.close(resolve));
    await closeLink(server, agent);
  };
  return { server, agent, remotes, sockets, results, carrierFrames, close };
}

describe('wire: SocketFrameReader', function () {
  this.timeout(20_000);

  it(
    'carries a destination stream intact in DATA frames of at most READ_FRAME_SIZE, then its half-close',
    loopbackTest(async (h) => {
      const link = await framedLink(h, 1 * MiB);
      const stream = await link.server.open('dest', 1, OPEN);
      await until(() => link.remotes.length === 1, 5000, 'destination connection');
      const bytes = pattern(3 * MiB + 123);
      const received = readAll(stream);
      link.remotes[0]!.end(bytes);
      assert.ok((await within(received, 10_000, 'the download')).equals(bytes));
      const { sizes } = link.carrierFrames;
      assert.ok(sizes.every((size) => size <= READ_FRAME_SIZE), `largest frame ${Math.max(...sizes)} bytes`);
      assert.ok(sizes.includes(READ_FRAME_SIZE), 'a destination that keeps the socket full fills whole frames');
      stream.end();
      await until(() => link.results.length === 1, 5000, 'splice done');
      assert.equal(link.results[0]!.error, undefined);
      await link.close();
    }),
  );

  it(
    'bytes the destination sends before the splice come first, in order',
    loopbackTest(async (h) => {
      const link = await framedLink(h, 1 * MiB, (socket) => until(() => socket.bytesRead > 0, 5000, 'the banner to be read'));
      const stream = await link.server.open('dest', 1, OPEN);
      await until(() => link.remotes.length === 1, 5000, 'destination connection');
      const remote = link.remotes[0]!;
      remote.write('banner\n');
      const received = readAll(stream);
      remote.end('rest');
      assert.equal((await within(received, 5000, 'the stream')).toString(), 'banner\nrest');
      stream.end();
      await until(() => link.results.length === 1, 5000, 'splice done');
      await link.close();
    }),
  );

  it(
    'stops reading the destination while the stream reader holds a full window',
    loopbackTest(async (h) => {
      const window = 256 * 1024;
      const link = await framedLink(h, window);
      const stream = await link.server.open('dest', 1, OPEN);
      await until(() => link.remotes.length === 1, 5000, 'destination connection');
      stream.pause();
      const remote = link.remotes[0]!;
      const total = 8 * MiB;
      remote.end(pattern(total));
      await until(() => stream.bufferedFromPeer === window, 5000, 'a full window at the server');
      const agentSocket = link.sockets[0]!;
      const readSoFar = agentSocket.bytesRead;
      // The window, the stream's write buffer (64 KiB) and one read beyond it, at most.
      assert.ok(readSoFar <= window + 64 * 1024 + 2 * READ_FRAME_SIZE, `agent read ${readSoFar} bytes ahead of a stalled reader`);
      const received = readAll(stream);
      stream.resume();
      assert.ok((await within(received, 10_000, 'the rest')).equals(pattern(total)));
      stream.end();
      await until(() => link.results.length === 1, 5000, 'splice done');
      await link.close();
    }),
  );
});
