// MuxSession and TunnelStream end to end, in process, over real loopback TCP connections.
import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { setTimeout as pause } from 'node:timers/promises';
import { FEATURE_REPLICAS, FrameType } from '../../wire/frames.js';
import { DialError, LinkRefusedError, ProtocolError, StreamResetError } from '../../wire/errors.js';
import { encodeControl, encodeHeader, encodeJson, encodeWindow } from '../../wire/sender.js';
import { LinkClosedError, refuseLink, type MuxSession } from '../../wire/session.js';
import type { TunnelStream } from '../../wire/stream.js';
import {
  RAW_OPEN,
  closeLink,
  closeRaw,
  closed,
  loopbackTest,
  openRawStream,
  pattern,
  rawAgentAfterHello,
  readAll,
  sessionClosed,
  until,
  within,
  writeBytes,
} from './loopback.js';

const OPEN = { sid: 'test', timeoutMs: 5000 };

async function dialError(promise: Promise<unknown>): Promise<DialError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof DialError, `expected a DialError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected the open to fail');
}

/** Agent side: accepts every open and hands the stream to `serve`. */
function acceptAll(agent: MuxSession, serve: (stream: TunnelStream) => void): void {
  agent.on('open', (stream) => {
    agent.accept(stream);
    serve(stream);
  });
}

describe('wire: MuxSession over loopback TCP', function () {
  this.timeout(20_000);

  describe('handshake', function () {
    it(
      'exchanges HELLO: each side learns the other instance and window',
      loopbackTest(async (h) => {
        const { server, agent } = await h.linked({ window: 100_000, instance: 'srv' }, { window: 200_000, instance: 'agt' });
        assert.deepEqual(server.peerHello, { version: 1, instance: 'agt', window: 200_000 });
        assert.deepEqual(agent.peerHello, { version: 1, instance: 'srv', window: 100_000 });
        assert.equal(server.streamCount, 0);
        await closeLink(server, agent);
      }),
    );

    it(
      'open() before the peer HELLO fails with NO_AGENT; only the server opens',
      loopbackTest(async (h) => {
        const [serverSocket, agentSocket] = await h.socketPair();
        const server = h.session('server', serverSocket);
        const error = await dialError(server.open('x', 1, OPEN));
        assert.equal(error.code, 'NO_AGENT');
        const agent = h.session('agent', agentSocket);
        assert.throws(() => agent.open('x', 1, OPEN), /only the server side opens streams/);
        await closeLink(agent, server);
      }),
    );
  });

  describe('replica announcements (REPLICAS, HA hubs)', function () {
    it(
      'an agent that lists the feature receives each REPLICAS frame as an event; one without it says so',
      loopbackTest(async (h) => {
        const { server, agent } = await h.linked({}, { features: [FEATURE_REPLICAS] });
        assert.ok(server.peerSupports(FEATURE_REPLICAS));
        assert.deepEqual(server.peerHello?.features, [FEATURE_REPLICAS]);
        const first = { replicas: [{ id: 'hub-0', address: '127.0.0.1:1' }] };
        const second = { replicas: [...first.replicas, { id: 'hub-1', address: '127.0.0.1:2' }] };
        const received = once(agent, 'replicas');
        server.sendReplicas(first);
        assert.deepEqual((await within(received, 5000, 'first REPLICAS'))[0], first);
        const again = once(agent, 'replicas');
        server.sendReplicas(second);
        assert.deepEqual((await within(again, 5000, 'second REPLICAS'))[0], second);
        assert.throws(() => agent.sendReplicas(first), /only the server side/);
        await closeLink(server, agent);
        const plain = await h.linked();
        assert.equal(plain.server.peerSupports(FEATURE_REPLICAS), false);
        assert.equal(plain.server.peerHello?.features, undefined);
        await closeLink(plain.server, plain.agent);
      }),
    );
  });

  describe('keepalive round trip and carrier bytes (the status page reads them)', function () {
    it(
      'measures the RTT from PING/PONG and counts carrier bytes each way, equal on both ends',
      loopbackTest(async (h) => {
        const { server, agent } = await h.linked({ keepaliveIntervalMs: 50 }, {});
        assert.ok(Number.isNaN(server.rttMs), 'no RTT before the first PONG');
        const rtt = await within(new Promise<number>((resolve) => server.once('rtt', resolve)), 5000, 'a keepalive round trip');
        assert.ok(rtt > 0 && rtt < 1000, `loopback RTT ${rtt} ms`);
        assert.equal(server.rttMs, rtt);
        acceptAll(agent, (stream) => void readAll(stream).then(() => stream.end()));
        const stream = await server.open('example', 80, OPEN);
        stream.resume();
        stream.end(pattern(200_000));
        await within(closed(stream), 5000, 'stream close');
        await until(() => agent.bytesIn === server.bytesOut && server.bytesIn === agent.bytesOut, 5000, 'both ends to agree on the bytes');
        assert.ok(server.bytesOut >= 200_000, `server sent ${server.bytesOut} bytes`);
        assert.ok(server.bytesIn > 0 && server.bytesIn < 10_000, `server received ${server.bytesIn} bytes of control frames`);
        await closeLink(server, agent);
      }),
    );
  });

  describe('streams', function () {
    it(
      'carries bytes both ways; the server half-closes first and still receives',
      loopbackTest(async (h) => {
        const { server, agent } = await h.linked();
        const reply = pattern(300_000);
        let agentGot: Promise<Buffer> | undefined;
        acceptAll(agent, (stream) => {
          agentGot = readAll(stream);
          // Answer only after the server's end: the agent's write side is still open then.
          void agentGot.then(() => {
            stream.write(reply.subarray(0, 1000));
            stream.end(reply.subarray(1000));
          });
        });
        const stream = await server.open('example', 80, OPEN);
        assert.equal(server.streamCount, 1);
        const serverGot = readAll(stream);
        stream.write('hello ');
        stream.end('world');
        assert.equal((await within(agentGot!, 5000, 'agent to read to the end')).toString(), 'hello world');
        assert.ok(!stream.readableEnded, 'the server still reads after ending its write side');
        assert.ok((await within(serverGot, 5000, 'server to read the reply')).equals(reply));
        assert.equal(await within(closed(stream), 5000, 'stream close'), null, 'a stream closed from both sides has no error');
        await until(() => server.streamCount === 0 && agent.streamCount === 0, 5000, 'both sides to forget the stream');
        assert.equal(stream.bytesSent, 11);
        assert.equal(stream.bytesReceived, reply.length);
        await closeLink(server, agent);
      }),
    );

    it(
      'carries bytes both ways; the agent half-closes first and still receives',
      loopbackTest(async (h) => {
        const { server, agent } = await h.linked();
        const request = pattern(200_000);
        let agentStream: TunnelStream | undefined;
        let agentGot: Promise<Buffer> | undefined;
        acceptAll(agent, (stream) => {
          agentStream = stream;
          agentGot = readAll(stream);
          stream.end('banner');
        });
        const stream = await server.open('example', 80, OPEN);
        const banner = await within(readAll(stream), 5000, 'server to read the banner');
        assert.equal(banner.toString(), 'banner');
        assert.ok(agentStream!.writableFinished, 'agent write side is finished');
        assert.ok(!agentStream!.destroyed, 'agent stream lives on after its FIN');
        // The server writes after the agent's FIN; the agent still receives every byte.
        await writeBytes(stream, request.length);
        stream.end();
        assert.ok((await within(agentGot!, 5000, 'agent to read the request')).equals(request));
        assert.equal(await within(closed(agentStream!), 5000, 'agent stream close'), null);
        assert.equal(await within(closed(stream), 5000, 'server stream close'), null);
        await until(() => server.streamCount === 0 && agent.streamCount === 0, 5000, 'both sides to forget the stream');
        await closeLink(agent, server);
      }),
    );

    it(
      'runs many streams at once with independent contents',
      loopbackTest(async (h) => {
        const { server, agent } = await h.linked();
        // The agent echoes every stream.
        acceptAll(agent, (stream) => stream.pipe(stream));
        const results = await within(
          Promise.all(
            Array.from({ length: 20 }, async (_, i) => {
              const stream = await server.open('echo', 7, { ...OPEN, sid: `s${i}` });
              const got = readAll(stream);
              stream.end(Buffer.alloc(10_000 + i, i));
              return got;
            }),
          ),
          10_000,
          'echo on 20 streams',
        );
        results.forEach((buffer, i) => assert.ok(buffer.equals(Buffer.alloc(10_000 + i, i)), `stream ${i}`));
        await until(() => server.streamCount === 0 && agent.streamCount === 0, 5000, 'all streams forgotten');
        await closeLink(server, agent);
      }),
    );

    it(
      'each open gets a fresh stream id; the agent sees the same id, sid and target',
      loopbackTest(async (h) => {
        const { server, agent } = await h.linked();
        const seen: Array<[number, string, string, number]> = [];
        agent.on('open', (stream, target) => {
          seen.push([stream.id, stream.sid, target.host, target.port]);
          agent.accept(stream);
        });
        const a = await server.open('a.example', 443, { ...OPEN, sid: 'first' });
        const b = await server.open('b.example', 8443, { ...OPEN, sid: 'second' });
        assert.notEqual(a.id, b.id);
        assert.deepEqual(seen, [
          [a.id, 'first', 'a.example', 443],
          [b.id, 'second', 'b.example', 8443],
        ]);
        await closeLink(server, agent);
      }),
    );
  });

  describe('open failures', function () {
    it(
      'reject() fails the open with the agent code and message',
      loopbackTest(async (h) => {
        const { server, agent } = await h.linked();
        agent.on('open', (stream) => agent.reject(stream, 'CONNECTION_REFUSED', 'connection to x:1 refused'));
        const error = await dialError(server.open('x', 1, OPEN));
        assert.equal(error.code, 'CONNECTION_REFUSED');
        assert.equal(error.message, 'connection to x:1 refused');
        assert.equal(error.httpStatus, 502);
        assert.equal(server.streamCount, 0);
        assert.equal(agent.streamCount, 0);
        await closeLink(server, agent);
      }),
    );

    it(
      'an agent that resets instead of answering fails the open with DIAL_FAILED',
      loopbackTest(async (h) => {
        const { server, agent } = await h.linked();
        agent.on('open', (stream) => stream.destroy());
        const error = await dialError(server.open('x', 1, OPEN));
        assert.equal(error.code, 'DIAL_FAILED');
        await until(() => server.streamCount === 0 && agent.streamCount === 0, 5000, 'both sides to forget the stream');
        await closeLink(server, agent);
      }),
    );

    it(
      'no answer within timeoutMs (+1 s backstop) fails with DIAL_TIMEOUT and resets the agent stream',
      loopbackTest(async (h) => {
        const { server, agent } = await h.linked();
        let agentStream: TunnelStream | undefined;
        agent.on('open', (stream) => (agentStream = stream));
        const started = performance.now();
        const error = await dialError(server.open('x', 1, { sid: 'slow', timeoutMs: 50 }));
        const elapsed = performance.now() - started;
        assert.equal(error.code, 'DIAL_TIMEOUT');
        assert.ok(elapsed >= 1000 && elapsed < 5000, `timed out after ${elapsed} ms`);
        assert.equal(server.streamCount, 0);
        const agentError = await within(closed(agentStream!), 5000, 'agent stream reset');
        assert.ok(agentError instanceof StreamResetError);
        assert.equal(agentError.code, 'CANCEL');
        assert.equal(agentError.remote, true);
        assert.equal(agent.streamCount, 0);
        await closeLink(server, agent);
      }),
    );

    it(
      'an AbortSignal fails the open with CANCELLED and resets the agent stream',
      loopbackTest(async (h) => {
        const { server, agent } = await h.linked();
        const controller = new AbortController();
        const agentStreams: TunnelStream[] = [];
        agent.on('open', (stream) => {
          agentStreams.push(stream);
          controller.abort();
        });
        const error = await dialError(server.open('x', 1, { ...OPEN, signal: controller.signal }));
        assert.equal(error.code, 'CANCELLED');
        assert.equal(error.httpStatus, 499);
        const agentError = await within(closed(agentStreams[0]!), 5000, 'agent stream reset');
        assert.ok(agentError instanceof StreamResetError && agentError.code === 'CANCEL');
        // An already aborted signal fails at once.
        const early = await dialError(server.open('x', 1, { ...OPEN, signal: AbortSignal.abort() }));
        assert.equal(early.code, 'CANCELLED');
        await until(() => server.streamCount === 0 && agent.streamCount === 0, 5000, 'both sides to forget the streams');
        await closeLink(server, agent);
      }),
    );

    it(
      'the server refuses to open more than maxStreams streams (pending opens count)',
      loopbackTest(async (h) => {
        const { server, agent } = await h.linked({ maxStreams: 2 });
        let answered = false;
        agent.on('open', (stream) => {
          // Answer the first open only; the second stays pending.
          if (!answered) agent.accept(stream);
          answered = true;
        });
        await server.open('x', 1, OPEN);
        const pending = server.open('x', 2, { ...OPEN, timeoutMs: 60_000 });
        assert.equal(server.streamCount, 2);
        const refused = await dialError(server.open('x', 3, OPEN));
        assert.equal(refused.code, 'STREAM_LIMIT');
        assert.equal(refused.httpStatus, 503);
        server.destroy();
        assert.equal((await dialError(pending)).code, 'LINK_LOST');
        await within(sessionClosed(agent), 5000, 'agent close');
      }),
    );

    it(
      'the agent answers opens beyond its own maxStreams with STREAM_LIMIT',
      loopbackTest(async (h) => {
        const { server, agent } = await h.linked({}, { maxStreams: 1 });
        let opens = 0;
        acceptAll(agent, () => opens++);
        await server.open('x', 1, OPEN);
        const error = await dialError(server.open('x', 2, OPEN));
        assert.equal(error.code, 'STREAM_LIMIT');
        assert.equal(opens, 1, "the agent's owner only saw the open it could take");
        assert.equal(agent.streamCount, 1);
        assert.equal(server.streamCount, 1);
        await closeLink(server, agent);
      }),
    );
  });

  describe('flow control', function () {
    it(
      'a stalled reader holds at most one window while another stream on the link moves 8 MiB',
      loopbackTest(async (h) => {
        const WINDOW = 64 * 1024;
        const { server, agent } = await h.linked({ window: WINDOW }, { window: WINDOW });
        const agentStreams = new Map<string, TunnelStream>();
        acceptAll(agent, (stream) => agentStreams.set(stream.sid, stream));

        // Stream A: the agent writes as fast as it is allowed; nobody reads on the server.
        const a = await server.open('a', 1, { ...OPEN, sid: 'A' });
        const agentA = agentStreams.get('A')!;
        let offeredA = 0;
        let writeReturnedFalse = false;
        const chunk = pattern(16 * 1024);
        const pumpA = (): void => {
          while (offeredA < 1024 * 1024) {
            offeredA += chunk.length;
            if (!agentA.write(chunk)) {
              writeReturnedFalse = true;
              agentA.once('drain', pumpA);
              return;
            }
          }
          agentA.end();
        };
        pumpA();
        await until(() => agentA.bytesSent === WINDOW, 5000, 'agent to spend the window of stream A');

        // Stream B: 8 MiB agent → server, read eagerly, on the same link.
        const b = await server.open('b', 1, { ...OPEN, sid: 'B' });
        const agentB = agentStreams.get('B')!;
        const TOTAL = 8 * 1024 * 1024;
        let receivedB = 0;
        b.on('data', (data: Buffer) => (receivedB += data.length));
        const bEnded = once(b, 'end');
        await within(writeBytes(agentB, TOTAL), 20_000, 'agent to write 8 MiB on stream B');
        agentB.end();
        await within(bEnded, 20_000, 'stream B to end');
        assert.equal(receivedB, TOTAL, 'stream B moved every byte');
        assert.equal(b.bytesReceived, TOTAL);

        // Stream A never got more than its window, and its writer is stalled.
        assert.equal(agentA.bytesSent, WINDOW, 'the writer sent exactly one window');
        assert.equal(a.bytesReceived, WINDOW, 'the stalled reader received exactly one window');
        assert.equal(a.bufferedFromPeer, WINDOW, 'and holds it unread');
        assert.ok(writeReturnedFalse, "the writer's write() reported backpressure");
        assert.ok(agentA.writableLength > 0, 'the writer has bytes waiting for credit');
        assert.ok(offeredA <= WINDOW + agentA.writableHighWaterMark + chunk.length, `the writer was stopped after ${offeredA} bytes`);
        await closeLink(server, agent);
      }),
    );

    // BUG (wire/stream.ts, _read/grantConsumed): a reader that starts reading only after the
    // peer has used up the whole window never grants credit again, so the stream hangs forever.
    it(
      'a reader that resumes after the window filled up gets the rest of the stream',
      loopbackTest(async (h) => {
        const WINDOW = 64 * 1024;
        const TOTAL = 1024 * 1024;
        const { server, agent } = await h.linked({ window: WINDOW }, { window: WINDOW });
        let agentStream: TunnelStream | undefined;
        acceptAll(agent, (stream) => {
          agentStream = stream;
          void writeBytes(stream, TOTAL, 16 * 1024).then(() => stream.end());
        });
        const stream = await server.open('a', 1, OPEN);
        await until(() => stream.bytesReceived === WINDOW, 5000, 'one window to arrive unread');
        await pause(50);
        assert.equal(stream.bytesReceived, WINDOW, 'nothing beyond the window arrives while nobody reads');
        const all = await within(readAll(stream), 5000, 'the rest of the stream once the reader reads');
        assert.equal(all.length, TOTAL);
        assert.ok(all.equals(pattern(TOTAL)));
        assert.equal(agentStream!.bytesSent, TOTAL);
        await closeLink(server, agent);
      }),
    );

    it(
      'a reader that pauses and resumes while the peer keeps sending gets every byte',
      loopbackTest(async (h) => {
        const WINDOW = 64 * 1024;
        const TOTAL = 2 * 1024 * 1024;
        const { server, agent } = await h.linked({ window: WINDOW }, { window: WINDOW });
        acceptAll(agent, (stream) => void writeBytes(stream, TOTAL, 10_000).then(() => stream.end()));
        const stream = await server.open('a', 1, OPEN);
        // Read in bursts: pause for a while after every 200 kB, like a slow client socket.
        let received = 0;
        let nextPause = 200_000;
        const chunks: Buffer[] = [];
        const ended = once(stream, 'end');
        stream.on('data', (data: Buffer) => {
          chunks.push(data);
          received += data.length;
          if (received >= nextPause) {
            nextPause += 200_000;
            stream.pause();
            setTimeout(() => stream.resume(), 30);
          }
        });
        await within(ended, 5000, 'the whole stream through a pausing reader');
        assert.equal(received, TOTAL);
        assert.ok(Buffer.concat(chunks).equals(pattern(TOTAL)));
        await closeLink(server, agent);
      }),
    );

    it(
      'a peer that sends more than the window gets the stream reset with FLOW_CONTROL',
      loopbackTest(async (h) => {
        const WINDOW = 64 * 1024;
        const { server, peer, open, stream } = await openRawStream(h, { server: { window: WINDOW }, window: WINDOW });
        assert.deepEqual(peer.json(open), RAW_OPEN);
        // Exactly one window is fine (in two frames)...
        peer.send(encodeHeader(FrameType.DATA, open.streamId, WINDOW / 2), Buffer.alloc(WINDOW / 2, 1));
        peer.send(encodeHeader(FrameType.DATA, open.streamId, WINDOW / 2), Buffer.alloc(WINDOW / 2, 2));
        await until(() => stream.bytesReceived === WINDOW, 5000, 'one window of data');
        assert.ok(!stream.destroyed);
        // ...one byte more is not.
        peer.send(encodeHeader(FrameType.DATA, open.streamId, 1), Buffer.from('!'));
        const error = await within(closed(stream), 5000, 'stream reset');
        assert.ok(error instanceof StreamResetError, String(error));
        assert.equal(error.code, 'FLOW_CONTROL');
        assert.equal(error.remote, false, 'we reset it, not the peer');
        const reset = await peer.waitFor(FrameType.RESET);
        assert.equal(reset.streamId, open.streamId);
        assert.equal(peer.json(reset).code, 'FLOW_CONTROL');
        assert.equal(server.streamCount, 0);
        assert.ok(!server.isClosed, 'the link survives a stream-level error');
        await closeRaw(server, peer);
      }),
    );

    it(
      'a WINDOW increment of 0 resets the stream with FLOW_CONTROL',
      loopbackTest(async (h) => {
        // The zero increment travels together with the OPEN_OK.
        const { server, peer, stream } = await openRawStream(h, {
          answer: (streamId) => [encodeControl(FrameType.OPEN_OK, streamId), encodeWindow(streamId, 0)],
        });
        const error = await within(closed(stream), 5000, 'stream reset');
        assert.ok(error instanceof StreamResetError && error.code === 'FLOW_CONTROL', String(error));
        await closeRaw(server, peer);
      }),
    );

    it(
      'DATA after FIN resets the stream with PROTOCOL',
      loopbackTest(async (h) => {
        const { server, peer, open, stream } = await openRawStream(h);
        stream.resume();
        peer.send(encodeControl(FrameType.FIN, open.streamId), encodeHeader(FrameType.DATA, open.streamId, 1), Buffer.from('x'));
        const error = await within(closed(stream), 5000, 'stream reset');
        assert.ok(error instanceof StreamResetError && error.code === 'PROTOCOL', String(error));
        const reset = await peer.waitFor(FrameType.RESET);
        assert.equal(peer.json(reset).code, 'PROTOCOL');
        await closeRaw(server, peer);
      }),
    );
  });

  describe('reset', function () {
    for (const [what, makeError, code, message] of [
      ['a StreamResetError', () => new StreamResetError('DESTINATION_ERROR', 'destination said no', false), 'DESTINATION_ERROR', 'destination said no'],
      ['a plain Error', () => new Error('socket hang up'), 'CLIENT_ERROR', 'socket hang up'],
      ['no error', () => undefined, 'CANCEL', 'stream closed'],
    ] as const) {
      it(
        `an agent stream destroyed with ${what} reaches the server as StreamResetError ${code}`,
        loopbackTest(async (h) => {
          const { server, agent } = await h.linked();
          acceptAll(agent, (stream) => {
            stream.write('partial');
            setImmediate(() => stream.destroy(makeError()));
          });
          const stream = await server.open('x', 1, OPEN);
          let errorEvents = 0;
          stream.on('error', () => errorEvents++);
          // The RESET may arrive in the same read as OPEN_OK, before open() resolves: read the
          // error from the closed stream rather than racing for the 'error' event.
          const error = await within(closed(stream), 5000, 'stream reset');
          assert.ok(error instanceof StreamResetError, String(error));
          assert.ok(errorEvents <= 1);
          assert.equal(error.code, code);
          assert.equal(error.message, message);
          assert.equal(error.remote, true);
          await until(() => server.streamCount === 0 && agent.streamCount === 0, 5000, 'both sides to forget the stream');
          assert.ok(!server.isClosed && !agent.isClosed, 'the link survives');
          await closeLink(server, agent);
        }),
      );
    }

    it(
      'a server stream destroyed mid-transfer resets the agent stream and neither side keeps it',
      loopbackTest(async (h) => {
        const { server, agent } = await h.linked();
        let agentStream: TunnelStream | undefined;
        acceptAll(agent, (stream) => {
          agentStream = stream;
          stream.resume();
        });
        const stream = await server.open('x', 1, OPEN);
        stream.write(Buffer.alloc(1000));
        stream.destroy(new StreamResetError('CLIENT_ERROR', 'client went away', false));
        const error = await within(closed(agentStream!), 5000, 'agent stream reset');
        assert.ok(error instanceof StreamResetError && error.code === 'CLIENT_ERROR' && error.message === 'client went away');
        await until(() => server.streamCount === 0 && agent.streamCount === 0, 5000, 'both sides to forget the stream');
        await closeLink(server, agent);
      }),
    );
  });

  describe('keepalive', function () {
    it(
      'measures the round trip on a healthy link and keeps it up past the timeout',
      loopbackTest(async (h) => {
        const fast = { keepaliveIntervalMs: 20, keepaliveTimeoutMs: 100 };
        const { server, agent } = await h.linked(fast, fast);
        const [rtt] = (await within(once(server, 'rtt'), 5000, 'rtt on the server')) as [number];
        assert.ok(Number.isFinite(rtt) && rtt >= 0 && rtt < 1000, `rtt ${rtt}`);
        assert.equal(server.rttMs, rtt);
        await within(once(agent, 'rtt'), 5000, 'rtt on the agent');
        assert.ok(Number.isFinite(agent.rttMs));
        // An idle link answered by PONGs outlives several keepalive timeouts.
        await pause(400);
        assert.ok(!server.isClosed && !agent.isClosed, 'healthy idle link stays up');
        await closeLink(server, agent);
      }),
    );

    it(
      'a silent peer is declared dead: streams and pending opens fail with LINK_LOST',
      loopbackTest(async (h) => {
        const { server, peer } = await rawAgentAfterHello(h, { server: { keepaliveIntervalMs: 20, keepaliveTimeoutMs: 100 } });
        // First open is answered, the second is not; then the peer goes silent.
        const first = server.open('x', 1, OPEN);
        const second = server.open('x', 2, { ...OPEN, timeoutMs: 60_000 });
        const open = await peer.waitFor(FrameType.OPEN);
        peer.send(encodeControl(FrameType.OPEN_OK, open.streamId));
        const lastSentAt = performance.now();
        const stream = await within(first, 5000, 'first open');
        const closeEvent = sessionClosed(server);
        const [linkError, streamError, openError] = await within(Promise.all([closeEvent, closed(stream), dialError(second)]), 5000, 'link declared dead');
        const deadAfter = performance.now() - lastSentAt;
        assert.ok(deadAfter >= 80 && deadAfter < 2000, `declared dead after ${deadAfter} ms`);
        assert.ok(linkError instanceof LinkClosedError, String(linkError));
        assert.equal(linkError.code, 'LINK_LOST');
        assert.match(linkError.message, /keepalive timeout/);
        assert.ok(streamError instanceof StreamResetError && streamError.code === 'LINK_LOST', String(streamError));
        assert.equal(openError.code, 'LINK_LOST');
        assert.equal(server.streamCount, 0);
        assert.ok(peer.framesOf(FrameType.PING).length >= 1, 'the server pinged the silent peer');
        for (const ping of peer.framesOf(FrameType.PING)) assert.equal(ping.payload.length, 8);
        await peer.waitEnded();
      }),
    );
  });

  describe('GOAWAY', function () {
    it(
      'after the agent goes away new opens fail with AGENT_DRAINING and open streams keep working',
      loopbackTest(async (h) => {
        const { server, agent } = await h.linked();
        acceptAll(agent, (stream) => stream.pipe(stream));
        const stream = await server.open('echo', 7, OPEN);
        const goaway = once(server, 'goaway');
        agent.goAway('agent shutting down');
        assert.ok(agent.localDraining);
        const [reason] = await within(goaway, 5000, 'goaway on the server');
        assert.equal(reason, 'agent shutting down');
        assert.ok(server.remoteDraining);
        const refused = await dialError(server.open('echo', 7, OPEN));
        assert.equal(refused.code, 'AGENT_DRAINING');
        // The existing stream still echoes, in both directions, to a clean end.
        const echoed = readAll(stream);
        stream.end(pattern(100_000));
        assert.ok((await within(echoed, 5000, 'echo after GOAWAY')).equals(pattern(100_000)));
        assert.equal(await within(closed(stream), 5000, 'stream close'), null);
        await closeLink(server, agent);
      }),
    );

    it(
      'an OPEN that crosses the GOAWAY on the wire is refused by the agent with AGENT_DRAINING',
      loopbackTest(async (h) => {
        const { server, agent } = await h.linked();
        let opened = 0;
        agent.on('open', () => opened++);
        agent.goAway('bye');
        const error = await dialError(server.open('x', 1, OPEN));
        assert.equal(error.code, 'AGENT_DRAINING');
        assert.equal(opened, 0, "the agent's owner never sees the refused open");
        assert.equal(agent.streamCount, 0);
        await closeLink(server, agent);
      }),
    );

    it(
      'end() sends GOAWAY and closes the link cleanly',
      loopbackTest(async (h) => {
        const { server, agent } = await h.linked();
        const goaway = once(server, 'goaway');
        const serverClosed = sessionClosed(server);
        agent.end();
        assert.deepEqual(await within(goaway, 5000, 'goaway'), ['closing']);
        const error = await within(serverClosed, 5000, 'server close');
        assert.ok(error instanceof LinkClosedError);
        await within(sessionClosed(agent), 5000, 'agent close');
      }),
    );
  });

  describe('refusal with a typed code', function () {
    it(
      'refuseLink answers the HELLO with a typed GOAWAY: the agent fails with LinkRefusedError, not a protocol error',
      loopbackTest(async (h) => {
        const [serverSocket, agentSocket] = await h.socketPair();
        const agent = h.session('agent', agentSocket);
        refuseLink(serverSocket, 'CERTIFICATE_REVOKED', 'agent certificate serial 4a is revoked', 5000);
        const error = await within(sessionClosed(agent), 5000, 'agent close');
        assert.ok(error instanceof LinkRefusedError, String(error));
        assert.equal(error.code, 'CERTIFICATE_REVOKED');
        assert.match(error.message, /server refused the link \(CERTIFICATE_REVOKED\): agent certificate serial 4a is revoked/);
        assert.equal(agent.peerHello, undefined);
        await within(new Promise((resolve) => (serverSocket.closed ? resolve(null) : serverSocket.once('close', resolve))), 5000, 'server socket close');
      }),
    );

    it(
      'destroy() with a GOAWAY message tells an established agent the code',
      loopbackTest(async (h) => {
        const { server, agent } = await h.linked();
        const goaway = once(agent, 'goaway');
        server.destroy(new Error('revoked'), { reason: 'certificate revoked', code: 'CERTIFICATE_REVOKED' });
        assert.deepEqual(await within(goaway, 5000, 'goaway'), ['certificate revoked', 'CERTIFICATE_REVOKED']);
        await within(sessionClosed(agent), 5000, 'agent close');
      }),
    );
  });

  describe('link loss', function () {
    it(
      'destroying the carrier fails every stream and pending open with LINK_LOST, on both sides',
      loopbackTest(async (h) => {
        const { server, agent, serverSocket } = await h.linked();
        const agentStreams: TunnelStream[] = [];
        let answer = 2;
        agent.on('open', (stream) => {
          agentStreams.push(stream);
          if (answer-- > 0) agent.accept(stream);
        });
        const s1 = await server.open('x', 1, OPEN);
        const s2 = await server.open('x', 2, OPEN);
        s1.write('in flight');
        const pending = server.open('x', 3, { ...OPEN, timeoutMs: 60_000 });
        await until(() => agentStreams.length === 3, 5000, 'agent to see three opens');
        assert.equal(server.streamCount, 3);
        const serverClose = sessionClosed(server);
        const agentClose = sessionClosed(agent);
        serverSocket.destroy();
        const results = await within(Promise.all([closed(s1), closed(s2), dialError(pending), ...agentStreams.map(closed), serverClose, agentClose]), 5000, 'link loss');
        const [e1, e2, openError, a1, a2, a3] = results;
        for (const error of [e1, e2, a1, a2, a3]) {
          assert.ok(error instanceof StreamResetError, String(error));
          assert.equal(error.code, 'LINK_LOST');
        }
        assert.equal((openError as DialError).code, 'LINK_LOST');
        assert.equal(server.streamCount, 0);
        assert.equal(agent.streamCount, 0);
        assert.ok(server.isClosed && agent.isClosed);
        // A closed link refuses new opens.
        assert.equal((await dialError(server.open('x', 1, OPEN))).code, 'LINK_LOST');
      }),
    );

    it(
      'destroy(error) passes the error to the close event and is idempotent',
      loopbackTest(async (h) => {
        const { server, agent } = await h.linked();
        const reason = new Error('shutting down');
        let closes = 0;
        let seen: Error | undefined;
        server.on('close', (error) => {
          closes++;
          seen = error;
        });
        server.destroy(reason);
        server.destroy(new Error('again'));
        assert.equal(closes, 1);
        assert.equal(seen, reason);
        await within(sessionClosed(agent), 5000, 'agent close');
      }),
    );
  });

  describe('protocol errors close the link without throwing', function () {
    const hello = encodeJson(FrameType.HELLO, 0, { version: 1, instance: 'raw', window: 65536 });
    const cases: Array<[string, Buffer[], RegExp]> = [
      ['garbage bytes', [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')], /unknown frame type/],
      ['a frame before HELLO', [encodeControl(FrameType.PING, 0, Buffer.alloc(8))], /expected HELLO/],
      ['a second HELLO', [hello, hello], /second HELLO/],
      ['a malformed HELLO', [encodeJson(FrameType.HELLO, 0, { version: 1, instance: 'raw', window: 1 })], /HELLO\.window/],
      ['an OPEN sent to the server', [hello, encodeJson(FrameType.OPEN, 1, { host: 'x', port: 1, sid: 's', timeoutMs: 1 })], /not valid towards the server/],
      ['DATA on stream 0', [hello, encodeHeader(FrameType.DATA, 0, 1), Buffer.from('x')], /stream 0/],
      ['an oversized control frame', [hello, encodeHeader(FrameType.GOAWAY, 0, 1 << 20)], /exceeds/],
      ['a PING of the wrong size', [hello, encodeControl(FrameType.PING, 0, Buffer.alloc(4))], /PING payload/],
      ['a WINDOW of the wrong size', [hello, encodeControl(FrameType.WINDOW, 1, Buffer.alloc(3))], /WINDOW payload/],
      ['a REPLICAS sent to the server', [hello, encodeJson(FrameType.REPLICAS, 0, { replicas: [] })], /not valid towards the server/],
    ];
    for (const [what, bytes, pattern] of cases) {
      it(
        `server: ${what}`,
        loopbackTest(async (h) => {
          const { server, peer } = await h.rawAgent();
          const closeEvent = sessionClosed(server);
          peer.send(Buffer.concat(bytes));
          const error = await within(closeEvent, 5000, 'link close');
          assert.ok(error instanceof ProtocolError, String(error));
          assert.match(error.message, pattern);
          assert.ok(server.isClosed);
          await peer.waitEnded();
        }),
      );
    }

    it(
      'agent: OPEN_OK sent to the agent, and an OPEN that reuses a stream id',
      loopbackTest(async (h) => {
        for (const [bytes, pattern] of [
          [[hello, encodeControl(FrameType.OPEN_OK, 1)], /not valid towards the agent/],
          [[hello, encodeJson(FrameType.OPEN, 3, { host: 'x', port: 1, sid: 's', timeoutMs: 1 }), encodeJson(FrameType.OPEN, 3, { host: 'x', port: 1, sid: 's', timeoutMs: 1 })], /reuses stream id 3/],
          [[hello, encodeJson(FrameType.OPEN, 1, { host: 'x', port: 0, sid: 's', timeoutMs: 1 })], /OPEN\.port/],
        ] as const) {
          const { agent, peer } = await h.rawServer();
          const closeEvent = sessionClosed(agent);
          peer.send(Buffer.concat([...bytes]));
          const error = await within(closeEvent, 5000, 'link close');
          assert.ok(error instanceof ProtocolError, String(error));
          assert.match(error.message, pattern);
          await peer.waitEnded();
        }
      }),
    );

    it(
      'streams of a link closed for a protocol error fail with LINK_LOST',
      loopbackTest(async (h) => {
        const { server, peer, stream } = await openRawStream(h);
        peer.send(Buffer.alloc(10, 0xee));
        const error = await within(closed(stream), 5000, 'stream failure');
        assert.ok(error instanceof StreamResetError && error.code === 'LINK_LOST', String(error));
        assert.equal(server.streamCount, 0);
        await peer.waitEnded();
      }),
    );

    // The session queues a GOAWAY naming the protocol error before it tears the link down, so
    // the peer can log why it was dropped. This checks that the GOAWAY actually leaves.
    it(
      'the peer is told why: a GOAWAY naming the protocol error reaches it before the close',
      loopbackTest(async (h) => {
        const { server, peer } = await h.rawAgent();
        const closeEvent = sessionClosed(server);
        peer.hello();
        peer.send(encodeHeader(FrameType.DATA, 0, 1), Buffer.from('x'));
        await within(closeEvent, 5000, 'link close');
        await peer.waitEnded();
        const goaways = peer.framesOf(FrameType.GOAWAY).map((frame) => peer.json(frame).reason);
        assert.equal(goaways.length, 1, 'expected exactly one GOAWAY frame before the link closed');
        assert.match(String(goaways[0]), /^protocol error: DATA frame on stream 0/);
      }),
    );
  });
});
