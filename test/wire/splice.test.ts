// splice(): a tunnel stream joined to a TCP socket, as the agent joins a stream to its destination
// and the server joins it to the CONNECT client. Real sessions and real sockets over loopback.
import { strict as assert } from 'node:assert';
import type net from 'node:net';
import { once } from 'node:events';
import { Duplex } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { StreamResetError } from '../../wire/errors.js';
import { splice, type SpliceResult } from '../../wire/splice.js';
import { TunnelStream, type StreamLink } from '../../wire/stream.js';
import { SESSION_DEFAULTS, closeLink, closed, loopbackTest, pattern, readAll, until, within, type Harness } from './loopback.js';

const OPEN = { sid: 'splice', timeoutMs: 5000 };

/**
 * A linked session pair whose agent splices every accepted stream to a fresh loopback socket;
 * `remotes` are the far ends of those sockets (the "destination" processes).
 */
async function splicedLink(h: Harness, afterSplice: (stream: TunnelStream) => void = () => undefined) {
  const { server, agent } = await h.linked();
  const remotes: net.Socket[] = [];
  const results: SpliceResult[] = [];
  agent.on('open', (stream) => {
    void h.socketPair().then(([remote, destination]) => {
      remotes.push(remote);
      agent.accept(stream);
      splice(stream, destination, 'DESTINATION_ERROR', (result) => results.push(result));
      afterSplice(stream);
    });
  });
  return { server, agent, remotes, results };
}

describe('wire: splice', function () {
  this.timeout(20_000);

  it(
    'moves bytes both ways and carries each half-close to the other side',
    loopbackTest(async (h) => {
      const { server, agent, remotes, results } = await splicedLink(h);
      const stream = await server.open('dest', 80, OPEN);
      await until(() => remotes.length === 1, 5000, 'destination socket');
      const remote = remotes[0]!;
      const remoteGot = readAll(remote);
      stream.end('GET / HTTP/1.0\r\n\r\n');
      // The server's FIN reaches the destination as a socket end; the destination still answers.
      assert.equal((await within(remoteGot, 5000, 'request at the destination')).toString(), 'GET / HTTP/1.0\r\n\r\n');
      const serverGot = readAll(stream);
      remote.end('HTTP/1.0 200 OK\r\n\r\nbody');
      assert.equal((await within(serverGot, 5000, 'response at the server')).toString(), 'HTTP/1.0 200 OK\r\n\r\nbody');
      await until(() => results.length === 1, 5000, 'splice done');
      assert.deepEqual(results[0], { error: undefined, bytesFromSocket: 23, bytesToSocket: 18 });
      assert.equal(await closed(stream), null, 'a clean splice closes the stream without error');
      await until(() => server.streamCount === 0 && agent.streamCount === 0, 5000, 'streams forgotten');
      await closeLink(server, agent);
    }),
  );

  it(
    'a socket failure resets the stream with the given code',
    loopbackTest(async (h) => {
      const { server, agent, remotes, results } = await splicedLink(h);
      const stream = await server.open('dest', 80, OPEN);
      await until(() => remotes.length === 1, 5000, 'destination socket');
      remotes[0]!.resetAndDestroy();
      const error = await within(closed(stream), 5000, 'stream reset');
      assert.ok(error instanceof StreamResetError, String(error));
      assert.equal(error.code, 'DESTINATION_ERROR');
      await until(() => results.length === 1, 5000, 'splice done');
      assert.ok(results[0]!.error, 'the splice reports the socket error');
      await closeLink(server, agent);
    }),
  );

  it(
    'a stream reset tears the socket down',
    loopbackTest(async (h) => {
      const { server, agent, remotes, results } = await splicedLink(h);
      const stream = await server.open('dest', 80, OPEN);
      await until(() => remotes.length === 1, 5000, 'destination socket');
      const remote = remotes[0]!;
      remote.on('error', () => undefined);
      // A half-open peer: it closes its side once it sees ours go.
      remote.on('end', () => remote.end());
      remote.resume();
      const remoteClosed = new Promise((resolve) => remote.once('close', resolve));
      stream.destroy(new StreamResetError('CLIENT_ERROR', 'client went away', false));
      await within(remoteClosed, 5000, 'destination socket to close');
      await until(() => results.length === 1, 5000, 'splice done');
      assert.ok(results[0]!.error instanceof StreamResetError);
      assert.equal((results[0]!.error as StreamResetError).code, 'CLIENT_ERROR');
      await closeLink(server, agent);
    }),
  );

  // Found by the child-process leak check (test/support/idle-check.ts): after curl requests
  // through the tunnel the agent kept destination sockets (handle and fd) forever. The server's
  // FIN and RESET for a stream arrive back to back: the FIN ends the destination socket through
  // pipe(), and the reset then came while that shutdown was still pending, which libuv refuses
  // (uv_tcp_close_reset: EINVAL) and Node answers by dropping the handle without closing it.
  it(
    'a reset right after the FIN still closes the socket',
    loopbackTest(async (h) => {
      // pipe() ended the socket in an earlier 'end' listener: reset in that same tick.
      const { server, agent, remotes, results } = await splicedLink(h, (stream) =>
        stream.once('end', () => stream.destroy(new StreamResetError('CANCEL', 'reset after FIN', false))),
      );
      const stream = await server.open('dest', 80, OPEN);
      await until(() => remotes.length === 1, 5000, 'destination socket');
      const remote = remotes[0]!;
      remote.on('error', () => undefined);
      remote.resume();
      const remoteClosed = new Promise((resolve) => remote.once('close', resolve));
      stream.end();
      await until(() => results.length === 1, 5000, 'splice done (the destination socket closed)');
      remote.end();
      await within(remoteClosed, 5000, 'the destination to see its connection go');
      await closeLink(server, agent);
    }),
  );

  // BUG (wire/splice.ts, tunnel 'error' handler): the comment says the socket's peer "must see
  // the connection fail, not a clean EOF", but socket.destroy() on a TCP socket sends a FIN: the
  // peer sees a clean end of stream, and a response cut short by the reset looks complete.
  it(
    "a stream reset is a failure, not a clean EOF, for the socket's peer",
    loopbackTest(async (h) => {
      const { server, agent, remotes } = await splicedLink(h);
      const stream = await server.open('dest', 80, OPEN);
      await until(() => remotes.length === 1, 5000, 'destination socket');
      const remote = remotes[0]!;
      let cleanEnd = false;
      let failure: NodeJS.ErrnoException | undefined;
      const outcome = new Promise<void>((resolve) => {
        remote.on('end', () => {
          cleanEnd = true;
          remote.end();
          resolve();
        });
        remote.on('error', (error: NodeJS.ErrnoException) => {
          failure = error;
          resolve();
        });
      });
      remote.resume();
      stream.destroy(new StreamResetError('CLIENT_ERROR', 'client went away', false));
      await within(outcome, 5000, 'the destination to see its connection go');
      assert.ok(!cleanEnd && failure !== undefined, `the peer saw ${cleanEnd ? 'a clean end' : 'no error'} instead of a connection reset`);
      await closeLink(server, agent);
    }),
  );

  // BUG (wire/splice.ts; reached from proxy-server/connect-frontend.ts handleConnect): when the
  // agent's RESET arrives in the same read as its OPEN_OK, open() resolves with a stream that
  // has already closed. splice() then waits for a 'close' that never comes: done() is never
  // called and the socket is left open (the CONNECT client hangs after "200 Connection
  // Established", and ConnectFrontend.clients keeps the socket).
  it(
    'a socket that closes cleanly while its last bytes still wait in the stream for credit does not lose them',
    loopbackTest(async (h) => {
      const { server, agent } = await h.linked();
      const destinations: net.Socket[] = [];
      const remotes: net.Socket[] = [];
      agent.on('open', (stream) => {
        void h.socketPair().then(([remote, destination]) => {
          remotes.push(remote);
          destinations.push(destination);
          agent.accept(stream);
          splice(stream, destination, 'DESTINATION_ERROR', () => undefined);
        });
      });
      const stream = await server.open('dest', 80, OPEN);
      await until(() => remotes.length === 1, 5000, 'destination socket');
      // The server reads nothing yet: the destination's answer is a window and a bit, so its tail
      // waits in the agent's stream for credit while the destination socket ends and closes.
      const answer = pattern(SESSION_DEFAULTS.window + 32 * 1024);
      stream.end();
      remotes[0]!.end(answer);
      await within(once(destinations[0]!, 'close'), 5000, 'destination closed');
      const got = await within(readAll(stream), 5000, 'answer at the server');
      assert.equal(got.length, answer.length);
      assert.ok(got.equals(answer));
      assert.equal(await closed(stream), null, 'the stream ends cleanly, not with a reset');
      await closeLink(server, agent);
    }),
  );

  it('splicing a stream that has already closed tears the socket down and calls done', async function () {
    const link: StreamLink = {
      sendData: () => undefined,
      sendDataFrame: () => undefined,
      congested: false,
      sendWindow: () => undefined,
      sendFin: () => undefined,
      sendReset: () => undefined,
      whenWritable: (callback) => callback(),
      forget: () => undefined,
    };
    const tunnel = new TunnelStream(link, 1, 'sid', 65536, 65536);
    tunnel.receiveReset(new StreamResetError('DESTINATION_ERROR', 'destination reset'));
    await new Promise((resolve) => tunnel.once('close', resolve));
    const socket = new Duplex({ read() {}, write: (_chunk, _encoding, callback) => callback(), allowHalfOpen: true });
    let result: SpliceResult | undefined;
    splice(tunnel, socket, 'CLIENT_ERROR', (r) => (result = r));
    for (let i = 0; i < 10; i++) await nextTurn();
    assert.ok(socket.destroyed, 'the socket must not outlive a stream that is already gone');
    assert.ok(result, 'done() must be called');
  });
});
