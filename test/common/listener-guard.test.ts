// The listener guard on real sockets over loopback: each deadline closes a bad socket soon after
// its value (bounds are generous: "before 3× the limit", and never before the limit), the
// answers are 408/431/400, the caps count per listener and per address (not on Unix sockets),
// and nothing long-lived that is legitimately open (a long response, a CONNECT tunnel) is cut.
import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { Registry } from 'prom-client';
import { ListenerGuard, type ListenerLimits } from '../../common/listener-guard.js';
import { httpClientErrorRefusal, tlsErrorReason, verifyErrorReason } from '../../common/listener-refusals.js';
import { testPki } from '../support/pki.js';
import { scratchDir } from '../support/paths.js';
import { expiredClientCert, foreignClientCert, notYetValidClientCert } from '../support/bad-certs.js';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';

const LIMIT = 300;
const LIMITS: ListenerLimits = { handshakeTimeoutMs: LIMIT, headerTimeoutMs: LIMIT, idleTimeoutMs: 2 * LIMIT, maxUnauthenticated: 50, maxUnauthenticatedPerAddress: 50 };

describe('common: listener refusal reasons (pure)', function () {
  it('maps TLS handshake errors to reasons; a client that just left is not a refusal', function () {
    const cases: Array<[string, string | null]> = [
      ['ERR_SSL_WRONG_VERSION_NUMBER', 'not_tls'],
      ['ERR_SSL_HTTP_REQUEST', 'not_tls'],
      ['ERR_SSL_PACKET_LENGTH_TOO_LONG', 'not_tls'],
      ['ERR_SSL_NO_APPLICATION_PROTOCOL', 'bad_alpn'],
      ['ERR_SSL_UNSUPPORTED_PROTOCOL', 'tls_version'],
      ['ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', 'client_rejected_server_certificate'],
      ['ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', 'client_rejected_server_certificate'],
      ['ERR_SSL_NO_SHARED_CIPHER', 'no_shared_cipher'],
      ['ERR_TLS_HANDSHAKE_TIMEOUT', 'handshake_timeout'],
      ['CERT_HAS_EXPIRED', 'certificate_expired'],
      ['ECONNRESET', null],
      ['EPIPE', null],
      ['ERR_SOMETHING_NEW', 'tls_error'],
    ];
    for (const [code, reason] of cases) assert.equal(tlsErrorReason({ code }), reason, code);
    assert.equal(tlsErrorReason({ message: 'socket hang up' }), null);
  });

  it('maps certificate verification codes to reasons', function () {
    assert.equal(verifyErrorReason('CERT_HAS_EXPIRED'), 'certificate_expired');
    assert.equal(verifyErrorReason('CERT_NOT_YET_VALID'), 'certificate_not_yet_valid');
    for (const code of ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY']) {
      assert.equal(verifyErrorReason(code), 'unknown_ca', code);
    }
    assert.equal(verifyErrorReason('INVALID_PURPOSE'), 'wrong_certificate_purpose');
    assert.equal(verifyErrorReason(Object.assign(new Error('x'), { code: 'CERT_HAS_EXPIRED' })), 'certificate_expired');
    assert.equal(verifyErrorReason('CERT_SIGNATURE_FAILURE'), 'bad_certificate');
    assert.equal(verifyErrorReason(null), 'bad_certificate');
  });

  it('answers parser errors with 431, 408 or 400, and nothing when the client is gone', function () {
    assert.deepEqual(httpClientErrorRefusal({ code: 'HPE_HEADER_OVERFLOW' }), { status: 431, reason: 'headers_too_large' });
    assert.deepEqual(httpClientErrorRefusal({ code: 'ERR_HTTP_REQUEST_TIMEOUT' }), { status: 408, reason: 'header_timeout' });
    assert.deepEqual(httpClientErrorRefusal({ code: 'HPE_INVALID_METHOD' }), { status: 400, reason: 'bad_request' });
    assert.deepEqual(httpClientErrorRefusal({ code: 'HPE_INVALID_CONSTANT' }), { status: 400, reason: 'bad_request' });
    assert.equal(httpClientErrorRefusal({ code: 'ECONNRESET' }), null);
    assert.equal(httpClientErrorRefusal({ code: 'HPE_INVALID_EOF_STATE' }), null, 'closed mid-head: gone, not refused');
  });
});

/** Log lines of the guard, kept in memory. */
function memoryLog(): { log: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const text of chunk.toString().split('\n')) if (text) lines.push(JSON.parse(text) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level: 'debug' }, sink) as Logger, lines };
}

async function refusals(registry: Registry, listener: string, reason: string): Promise<number> {
  const metric = await registry.getSingleMetric('fedtunnel_listener_refusals_total')!.get();
  return metric.values.find((v) => v.labels.listener === listener && v.labels.reason === reason)?.value ?? 0;
}

/** Resolves with the time from `start` until the socket closed, and everything it received. */
function closed(socket: net.Socket, start = Date.now()): Promise<{ ms: number; data: string }> {
  let data = '';
  socket.on('data', (chunk: Buffer) => (data += chunk.toString('latin1')));
  socket.on('error', () => undefined);
  return new Promise((resolve) => socket.once('close', () => resolve({ ms: Date.now() - start, data })));
}

function assertWithinDeadline(ms: number, limit: number, what: string): void {
  assert.ok(ms >= limit * 0.9, `${what}: closed after ${ms} ms, before its ${limit} ms limit`);
  assert.ok(ms < 3 * limit, `${what}: closed after ${ms} ms, not within 3× its ${limit} ms limit`);
}

function listen(server: net.Server, where: { port: number; host: string } | { path: string } = { port: 0, host: '127.0.0.1' }): Promise<void> {
  return new Promise((resolve) => server.listen(where, () => resolve()));
}

function close(server: net.Server & { closeAllConnections?: () => void }): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections?.();
  });
}

const port = (server: net.Server): number => (server.address() as net.AddressInfo).port;

describe('common: ListenerGuard (loopback sockets)', function () {
  this.timeout(20_000);
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  const pki = testPki();
  const ca = fs.readFileSync(pki.ca.cert);
  const alice = { cert: fs.readFileSync(pki.users.alice!.cert), key: fs.readFileSync(pki.users.alice!.key) };

  before(async function () {
    baseline = await resourceBaseline();
  });

  after(async function () {
    await assertNoLeakedResources(baseline);
  });

  describe('an HTTPS listener that requires client certificates', function () {
    let server: https.Server;
    let guard: ListenerGuard;
    let registry: Registry;
    let lines: Array<Record<string, unknown>>;
    let handled = 0;

    before(async function () {
      registry = new Registry();
      const memory = memoryLog();
      lines = memory.lines;
      server = https.createServer({ ca, cert: fs.readFileSync(pki.server.cert), key: fs.readFileSync(pki.server.key), requestCert: true, rejectUnauthorized: false }, (req, res) => {
        handled++;
        if (req.url === '/long') {
          // A response much longer than the idle timeout, like a watch.
          let n = 0;
          res.writeHead(200);
          const timer = setInterval(() => {
            res.write(`event ${n}\n`);
            if (++n === 12) {
              clearInterval(timer);
              res.end();
            }
          }, LIMIT / 2);
          res.once('close', () => clearInterval(timer));
          return;
        }
        res.end('ok');
      });
      guard = new ListenerGuard({ listener: 'test_tls', limits: LIMITS, registry, log: memory.log, clientCertificate: 'required' });
      guard.protect(server);
      await listen(server);
    });

    after(async function () {
      guard.closeUnauthenticated();
      await close(server);
    });

    function tlsClient(identity: { cert: string | Buffer; key: string | Buffer } | null = alice): Promise<tls.TLSSocket> {
      const socket = tls.connect({ host: '127.0.0.1', port: port(server), ca, servername: 'localhost', ...(identity ?? {}) });
      return once(socket, 'secureConnect').then(() => socket);
    }

    it('closes a client that sends nothing at the handshake deadline, and logs and counts it', async function () {
      const socket = net.connect(port(server), '127.0.0.1');
      await once(socket, 'connect');
      const { ms, data } = await closed(socket);
      assertWithinDeadline(ms, LIMIT, 'silent TCP client');
      assert.equal(data, '');
      assert.equal(await refusals(registry, 'test_tls', 'handshake_timeout'), 1);
      const line = lines.find((l) => l.reason === 'handshake_timeout');
      assert.equal(line?.level, 40, 'logged at warn');
      assert.equal(line?.listener, 'test_tls');
    });

    it('closes a partial ClientHello at the handshake deadline even while it keeps dripping bytes', async function () {
      const socket = net.connect(port(server), '127.0.0.1');
      await once(socket, 'connect');
      const start = Date.now();
      const result = closed(socket, start);
      // A TLS record header announcing 512 bytes, then one byte every 50 ms (Node's own
      // handshakeTimeout is an idle timer that this keeps resetting).
      socket.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]));
      const drip = setInterval(() => socket.write(Buffer.from([0x01])), 50);
      const { ms } = await result;
      clearInterval(drip);
      assertWithinDeadline(ms, LIMIT, 'dripping ClientHello');
    });

    it('answers a partial request head with 408 at the header deadline', async function () {
      const socket = await tlsClient();
      const start = Date.now();
      const result = closed(socket, start);
      socket.write('GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ');
      const drip = setInterval(() => socket.write('a'), 50);
      const { ms, data } = await result;
      clearInterval(drip);
      assertWithinDeadline(ms, LIMIT, 'slow request head');
      assert.match(data, /^HTTP\/1.1 408 Request Timeout\r\n/);
      assert.match(data, /header_timeout/);
    });

    it('closes a verified client that sends no request at the header deadline', async function () {
      const socket = await tlsClient();
      const { ms, data } = await closed(socket);
      assertWithinDeadline(ms, LIMIT, 'silent TLS client');
      assert.equal(data, '');
    });

    it('answers oversized headers with 431 and garbage with 400', async function () {
      const big = await tlsClient();
      const bigResult = closed(big);
      big.write(`GET / HTTP/1.1\r\nHost: x\r\nX-Fill: ${'a'.repeat(64 * 1024)}\r\n\r\n`);
      assert.match((await bigResult).data, /^HTTP\/1.1 431 /);
      const garbage = await tlsClient();
      const garbageResult = closed(garbage);
      garbage.write('\x00\x01\x02 not http at all\r\n\r\n');
      assert.match((await garbageResult).data, /^HTTP\/1.1 400 /);
      assert.equal(await refusals(registry, 'test_tls', 'headers_too_large'), 1);
      assert.equal(await refusals(registry, 'test_tls', 'bad_request'), 1);
    });

    it('refuses expired, not yet valid, foreign and missing client certificates with their reason; none reaches the handler', async function () {
      const before = handled;
      for (const [identity, reason] of [
        [expiredClientCert(), 'certificate_expired'],
        [notYetValidClientCert(), 'certificate_not_yet_valid'],
        [foreignClientCert(), 'unknown_ca'],
        [null, 'no_certificate'],
      ] as const) {
        const socket = tls.connect({ host: '127.0.0.1', port: port(server), ca, servername: 'localhost', ...(identity ?? {}) });
        const result = closed(socket);
        // TLS 1.3: the client's handshake completes before the server judges its certificate.
        socket.once('secureConnect', () => socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
        const { data } = await result;
        assert.equal(data, '', `${reason}: no HTTP answer`);
        assert.equal(await refusals(registry, 'test_tls', reason), 1, reason);
        const line = lines.find((l) => l.reason === reason);
        assert.equal(line?.level, 40, `${reason} logged at warn`);
        assert.doesNotMatch(JSON.stringify(line), /BEGIN|PRIVATE/, 'no key or certificate material in the log');
      }
      assert.equal(handled, before, 'no refused client reached the request handler');
    });

    it('closes an idle keep-alive connection at the idle deadline but not a long response', async function () {
      const socket = await tlsClient();
      socket.write('GET /long HTTP/1.1\r\nHost: x\r\n\r\n');
      let data = '';
      socket.on('data', (chunk: Buffer) => (data += chunk.toString()));
      // 12 events 150 ms apart: the response lasts 3× the idle timeout.
      while (!/event 11\n/.test(data)) await once(socket, 'data');
      const start = Date.now();
      const { ms } = await closed(socket, start);
      assertWithinDeadline(ms, LIMITS.idleTimeoutMs, 'idle keep-alive connection');
    });

    it('bounds the head of a later request on a keep-alive connection (408 within 2× the header deadline)', async function () {
      const socket = await tlsClient();
      socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      await once(socket, 'data');
      const start = Date.now();
      const result = closed(socket, start);
      socket.write('GET / HTTP/1.1\r\nHo');
      const { ms, data } = await result;
      assert.ok(ms < 4 * LIMIT, `closed after ${ms} ms (design bound: 2× the header deadline)`);
      assert.match(data, /HTTP\/1.1 408 /);
    });
  });

  describe('caps on unauthenticated connections', function () {
    let registry: Registry;
    let server: http.Server;
    let guard: ListenerGuard;

    beforeEach(async function () {
      registry = new Registry();
      server = http.createServer((_req, res) => res.end('ok'));
    });

    afterEach(async function () {
      guard.closeUnauthenticated();
      await close(server);
    });

    async function open(options: net.NetConnectOpts): Promise<net.Socket> {
      const socket = net.connect(options);
      socket.on('error', () => undefined);
      await once(socket, 'connect');
      return socket;
    }

    it('refuses connections beyond the listener cap at once and counts them; an answered request frees its place', async function () {
      guard = new ListenerGuard({ listener: 'capped', limits: { ...LIMITS, headerTimeoutMs: 10_000, maxUnauthenticated: 3 }, registry, log: memoryLog().log });
      guard.protect(server);
      await listen(server);
      const held = await Promise.all([1, 2, 3].map(() => open({ port: port(server), host: '127.0.0.1' })));
      // Only once the server has accepted them all is the fourth over the cap.
      while (guard.unauthenticatedCount < 3) await new Promise((resolve) => setImmediate(resolve));
      const over = await open({ port: port(server), host: '127.0.0.1' });
      const start = Date.now();
      const { ms, data } = await closed(over, start);
      assert.ok(ms < 1000, `refused after ${ms} ms`);
      assert.equal(data, '');
      assert.equal(await refusals(registry, 'capped', 'too_many_unauthenticated'), 1);
      // One of the held connections makes a request: it is authenticated, a new one fits.
      const answered = closed(held[0]!);
      held[0]!.end('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      assert.match((await answered).data, /^HTTP\/1.1 200 /);
      const fits = await open({ port: port(server), host: '127.0.0.1' });
      const fitsResult = closed(fits);
      fits.end('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      assert.match((await fitsResult).data, /^HTTP\/1.1 200 /);
      const gauge = await registry.getSingleMetric('fedtunnel_listener_unauthenticated_connections')!.get();
      assert.equal(gauge.values.find((v) => v.labels.listener === 'capped')?.value, 2);
      for (const socket of held) socket.destroy();
    });

    it('caps each source address, leaving other addresses their share', async function () {
      guard = new ListenerGuard({ listener: 'per_ip', limits: { ...LIMITS, headerTimeoutMs: 10_000, maxUnauthenticatedPerAddress: 2 }, registry, log: memoryLog().log });
      guard.protect(server);
      await listen(server, { port: 0, host: '0.0.0.0' });
      const held = [await open({ port: port(server), host: '127.0.0.1' }), await open({ port: port(server), host: '127.0.0.1' })];
      while (guard.unauthenticatedCount < 2) await new Promise((resolve) => setImmediate(resolve));
      const over = await open({ port: port(server), host: '127.0.0.1' });
      assert.equal((await closed(over)).data, '');
      assert.equal(await refusals(registry, 'per_ip', 'too_many_unauthenticated_per_address'), 1);
      // Another loopback address is another client.
      const other = await open({ port: port(server), host: '127.0.0.1', localAddress: '127.0.0.2' });
      const answer = closed(other);
      other.end('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      assert.match((await answer).data, /^HTTP\/1.1 200 /);
      for (const socket of held) socket.destroy();
    });

    it('applies no per-address cap on a Unix socket (its clients have no address)', async function () {
      guard = new ListenerGuard({ listener: 'uds', limits: { ...LIMITS, headerTimeoutMs: 10_000, maxUnauthenticatedPerAddress: 1, maxUnauthenticated: 10 }, registry, log: memoryLog().log });
      guard.protect(server);
      const socketPath = path.join(scratchDir('listener-guard'), 'guard.sock');
      fs.rmSync(socketPath, { force: true });
      await listen(server, { path: socketPath });
      const held = await Promise.all([1, 2, 3, 4].map(() => open({ path: socketPath })));
      while (guard.unauthenticatedCount < 4) await new Promise((resolve) => setImmediate(resolve));
      const answer = closed(held[3]!);
      held[3]!.end('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      assert.match((await answer).data, /^HTTP\/1.1 200 /);
      assert.equal(await refusals(registry, 'uds', 'too_many_unauthenticated_per_address'), 0);
      for (const socket of held) socket.destroy();
    });
  });

  describe('handed-over sockets and tunnels', function () {
    it('bounds the request head of TLS sockets handed to an HTTP server with emit("connection") (the agent listener)', async function () {
      const registry = new Registry();
      const { log } = memoryLog();
      const guard = new ListenerGuard({ listener: 'handover', limits: LIMITS, registry, log, clientCertificate: 'required' });
      const inner = http.createServer((_req, res) => res.end('ok'));
      const outer = tls.createServer({ ca, cert: fs.readFileSync(pki.server.cert), key: fs.readFileSync(pki.server.key), requestCert: true, rejectUnauthorized: false });
      outer.on('secureConnection', (socket) => inner.emit('connection', socket));
      guard.protect(outer);
      guard.protect(inner);
      await listen(outer);
      try {
        const socket = tls.connect({ host: '127.0.0.1', port: port(outer), ca, servername: 'localhost', ...alice });
        await once(socket, 'secureConnect');
        const start = Date.now();
        const result = closed(socket, start);
        socket.write('GET / HTTP/1.1\r\nHost');
        const { ms, data } = await result;
        assertWithinDeadline(ms, LIMIT, 'handed-over slow head');
        assert.match(data, /^HTTP\/1.1 408 /);
      } finally {
        guard.closeUnauthenticated();
        await close(outer);
      }
    });

    it('never cuts a CONNECT tunnel for being idle', async function () {
      const registry = new Registry();
      const server = http.createServer();
      server.on('connect', (_req, socket: net.Socket) => {
        socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        socket.pipe(socket); // an echo "tunnel"
      });
      const guard = new ListenerGuard({ listener: 'tunnel', limits: LIMITS, registry, log: memoryLog().log });
      guard.protect(server);
      await listen(server);
      try {
        const socket = net.connect(port(server), '127.0.0.1');
        await once(socket, 'connect');
        socket.write('CONNECT x:1 HTTP/1.1\r\nHost: x:1\r\n\r\n');
        await once(socket, 'data');
        let closedEarly = false;
        socket.once('close', () => (closedEarly = true));
        // Silent for 3× the idle and header deadlines, then still carrying bytes.
        await new Promise((resolve) => setTimeout(resolve, 3 * LIMITS.idleTimeoutMs));
        assert.equal(closedEarly, false, 'the tunnel was closed while idle');
        socket.write('still here');
        const [echo] = (await once(socket, 'data')) as [Buffer];
        assert.equal(echo.toString(), 'still here');
        socket.destroy();
        await once(socket, 'close');
      } finally {
        await close(server);
      }
    });
  });
});
