// Unit tests of member mode's pod streaming codecs and decisions: the SPDY/3.1 framer (property
// tests: encode → parse is the identity, any bytes give frames or a SpdyProtocolError, never
// anything else), header blocks and their zlib compression with the SPDY/3 dictionary, the
// WebSocket channel messages, protocol negotiation, exec statuses, pod status and log tails.
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { HeaderCompressor, HeaderDecompressor } from '../../../federation/apiserver/pods/header-compression.js';
import { exitedStatus, runningStatus } from '../../../federation/apiserver/pods/kubelet.js';
import { execStatus, startFailedStatus } from '../../../federation/apiserver/pods/exec.js';
import { tailLines, OutputLog } from '../../../federation/apiserver/pods/output-log.js';
import { parsePortHeader } from '../../../federation/apiserver/pods/portforward.js';
import { chooseContainer, exitCode, podContainers, podEnvironment } from '../../../federation/apiserver/pods/runtime.js';
import { SPDY3_DICTIONARY } from '../../../federation/apiserver/pods/spdy-dictionary.js';
import { decodeHeaderBlock, encodeFrame, encodeHeaderBlock, SpdyParser, SpdyProtocolError, type Frame } from '../../../federation/apiserver/pods/spdy.js';
import { negotiate, offeredProtocols, podStreamKind } from '../../../federation/apiserver/pods/streaming.js';
import { decodeChannelMessage, encodeChannelMessage } from '../../../federation/apiserver/pods/ws-channels.js';
import type { KubeObject } from '../../../federation/apiserver/storage.js';

const u31 = fc.integer({ min: 0, max: 0x7fffffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));

const frameArb: fc.Arbitrary<Frame> = fc.oneof(
  fc.record({ type: fc.constant('data' as const), streamId: u31, fin: fc.boolean(), data: bytes(300) }),
  fc.record({
    type: fc.constant('syn_stream' as const),
    streamId: u31,
    associatedId: u31,
    priority: fc.integer({ min: 0, max: 7 }),
    slot: fc.integer({ min: 0, max: 255 }),
    fin: fc.boolean(),
    unidirectional: fc.boolean(),
    headerBlock: bytes(100),
  }),
  fc.record({ type: fc.constant('syn_reply' as const), streamId: u31, fin: fc.boolean(), headerBlock: bytes(100) }),
  fc.record({ type: fc.constant('rst_stream' as const), streamId: u31, status: u32 }),
  fc.record({
    type: fc.constant('settings' as const),
    clear: fc.boolean(),
    entries: fc.array(fc.record({ flags: fc.integer({ min: 0, max: 255 }), id: fc.integer({ min: 0, max: 0xffffff }), value: u32 }), { maxLength: 5 }),
  }),
  fc.record({ type: fc.constant('ping' as const), id: u32 }),
  fc.record({ type: fc.constant('goaway' as const), lastGoodStreamId: u31, status: u32 }),
  fc.record({ type: fc.constant('headers' as const), streamId: u31, fin: fc.boolean(), headerBlock: bytes(100) }),
  fc.record({ type: fc.constant('window_update' as const), streamId: u31, delta: u31 }),
);

/** Splits bytes at random points: the parser must not care how the transport chunks them. */
function chunked(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let at = 0;
  for (const p of points) {
    out.push(buf.subarray(at, p));
    at = p;
  }
  out.push(buf.subarray(at));
  return out;
}

describe('pods: SPDY/3.1 framer', function () {
  it('encode → parse is the identity, however the bytes are chunked', function () {
    fc.assert(
      fc.property(fc.array(frameArb, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 10 }), (frames, cuts) => {
        const wire = Buffer.concat(frames.map(encodeFrame));
        const parser = new SpdyParser();
        const parsed = chunked(wire, cuts).flatMap((c) => parser.push(c));
        assert.deepEqual(parsed, frames);
      }),
      { numRuns: 300 },
    );
  });

  it('random bytes give frames or a SpdyProtocolError, never another exception', function () {
    fc.assert(
      fc.property(bytes(400), fc.array(fc.nat(), { maxLength: 6 }), (junk, cuts) => {
        const parser = new SpdyParser(1024);
        try {
          for (const c of chunked(junk, cuts)) parser.push(c);
        } catch (err) {
          assert.ok(err instanceof SpdyProtocolError, `untyped error: ${String(err)}`);
          // A failed parser stays failed.
          assert.throws(() => parser.push(Buffer.alloc(0)), SpdyProtocolError);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('refuses another SPDY version, oversized control frames and malformed fixed-size frames', function () {
    const v2 = encodeFrame({ type: 'ping', id: 1 });
    v2.writeUInt16BE(0x8002, 0);
    assert.throws(() => new SpdyParser().push(v2), (e: SpdyProtocolError) => e.code === 'UNSUPPORTED_VERSION');
    const big = encodeFrame({ type: 'headers', streamId: 1, fin: false, headerBlock: Buffer.alloc(2000) });
    assert.throws(() => new SpdyParser(1024).push(big), (e: SpdyProtocolError) => e.code === 'FRAME_TOO_LARGE');
    const ping = encodeFrame({ type: 'ping', id: 7 });
    const longPing = Buffer.concat([ping.subarray(0, 7), Buffer.of(5), ping.subarray(8), Buffer.of(0)]);
    assert.throws(() => new SpdyParser().push(longPing), (e: SpdyProtocolError) => e.code === 'INVALID_FRAME');
  });

  it('ignores control frames of unknown type (SPDY/3 §2.2.1) and keeps parsing', function () {
    const unknown = Buffer.from([0x80, 0x03, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x02, 0xab, 0xcd]);
    const frames = new SpdyParser().push(Buffer.concat([unknown, encodeFrame({ type: 'ping', id: 3 })]));
    assert.deepEqual(frames, [{ type: 'ping', id: 3 }]);
  });

  it('waits for a whole frame before returning it', function () {
    const wire = encodeFrame({ type: 'data', streamId: 5, fin: true, data: Buffer.from('hello') });
    const parser = new SpdyParser();
    assert.deepEqual(parser.push(wire.subarray(0, 9)), []);
    assert.deepEqual(parser.push(wire.subarray(9)), [{ type: 'data', streamId: 5, fin: true, data: Buffer.from('hello') }]);
  });
});

describe('pods: SPDY header blocks and compression', function () {
  it('the SPDY/3 dictionary is the published one (length and Adler-32)', function () {
    assert.equal(SPDY3_DICTIONARY.length, 1423);
    let a = 1;
    let b = 0;
    for (const x of SPDY3_DICTIONARY) {
      a = (a + x) % 65521;
      b = (b + a) % 65521;
    }
    assert.equal((((b << 16) | a) >>> 0).toString(16), 'e3c6a7c2');
  });

  it('header blocks round-trip, multi-valued headers NUL-joined, names lower-cased', function () {
    const block = encodeHeaderBlock(new Map([['StreamType', ['error']], ['x', ['a', 'b']]]));
    assert.deepEqual(decodeHeaderBlock(block), new Map([['streamtype', ['error']], ['x', ['a', 'b']]]));
  });

  it('malformed header blocks are SpdyProtocolErrors', function () {
    fc.assert(
      fc.property(bytes(64), (junk) => {
        try {
          decodeHeaderBlock(junk);
        } catch (err) {
          assert.ok(err instanceof SpdyProtocolError);
        }
      }),
    );
    assert.throws(() => decodeHeaderBlock(Buffer.from([0, 0, 0, 1, 0, 0, 0, 9, 0x61])), (e: SpdyProtocolError) => e.code === 'INVALID_HEADER_BLOCK');
  });

  it('one compression context per direction: many blocks in sequence inflate to what was deflated', function () {
    fc.assert(
      fc.property(fc.array(fc.array(fc.tuple(fc.stringMatching(/^[a-z][a-z-]{0,15}$/), fc.string({ maxLength: 40 })), { maxLength: 5 }), { minLength: 1, maxLength: 6 }), (blocks) => {
        const c = new HeaderCompressor();
        const d = new HeaderDecompressor();
        for (const pairs of blocks) {
          const headers = new Map<string, string[]>();
          for (const [k, v] of pairs) headers.set(k, [v]);
          const raw = encodeHeaderBlock(headers);
          assert.deepEqual(d.decompress(c.compress(raw)), raw);
        }
      }),
      { numRuns: 100 },
    );
  });

  it('the compressed stream announces the SPDY/3 dictionary, so Go zlib (kubectl) can read it', function () {
    const first = new HeaderCompressor().compress(encodeHeaderBlock(new Map([['streamtype', ['data']]])));
    assert.equal(first[1]! & 0x20, 0x20, 'FDICT flag set');
    assert.equal(first.readUInt32BE(2).toString(16), 'e3c6a7c2');
  });

  it('garbage in a header block is a COMPRESSION error, not a crash', function () {
    assert.throws(() => new HeaderDecompressor().decompress(Buffer.from('not zlib at all')), (e: SpdyProtocolError) => e.code === 'COMPRESSION');
  });
});

describe('pods: WebSocket channel messages', function () {
  it('data messages carry their channel; v5 has the close signal, v4 does not', function () {
    assert.deepEqual(decodeChannelMessage(encodeChannelMessage(0, Buffer.from('in')), true), { kind: 'data', channel: 0, data: Buffer.from('in') });
    assert.deepEqual(decodeChannelMessage(Buffer.of(255, 0), true), { kind: 'close', channel: 0 });
    assert.deepEqual(decodeChannelMessage(Buffer.of(255, 0), false), { kind: 'data', channel: 255, data: Buffer.of(0) });
    assert.equal(decodeChannelMessage(Buffer.alloc(0), true).kind, 'invalid');
    assert.equal(decodeChannelMessage(Buffer.of(255, 0, 1), true).kind, 'invalid');
  });
});

describe('pods: protocol negotiation and routes', function () {
  it('takes the first protocol of the client that the server speaks, from repeated or comma-joined headers', function () {
    assert.deepEqual(offeredProtocols(['v4.channel.k8s.io', 'v3.channel.k8s.io, channel.k8s.io']), ['v4.channel.k8s.io', 'v3.channel.k8s.io', 'channel.k8s.io']);
    assert.equal(negotiate(offeredProtocols('v5.channel.k8s.io, v4.channel.k8s.io'), ['v4.channel.k8s.io', 'v5.channel.k8s.io']), 'v5.channel.k8s.io');
    assert.equal(negotiate(offeredProtocols('v3.channel.k8s.io,channel.k8s.io'), ['v5.channel.k8s.io', 'v4.channel.k8s.io']), null);
    assert.equal(negotiate([], ['portforward.k8s.io']), null);
  });

  it('routes only named, namespaced core pods subresources', function () {
    const base = { kind: 'resource' as const, group: '', version: 'v1', plural: 'pods', namespace: 'default', name: 'p', watchPath: false };
    assert.equal(podStreamKind({ ...base, subresource: 'exec' }), 'exec');
    assert.equal(podStreamKind({ ...base, subresource: 'portforward' }), 'portforward');
    assert.equal(podStreamKind({ ...base, subresource: 'log' }), 'log');
    assert.equal(podStreamKind({ ...base, subresource: 'status' }), null);
    assert.equal(podStreamKind({ ...base, subresource: 'exec', group: 'apps' }), null);
    assert.equal(podStreamKind({ ...base, subresource: 'exec', namespace: undefined }), null);
  });

  it('port headers are TCP ports', function () {
    assert.equal(parsePortHeader('8080'), 8080);
    for (const bad of [undefined, '', '0', '65536', '-1', '80a', '123456']) assert.equal(parsePortHeader(bad), null, String(bad));
  });
});

describe('pods: exec results', function () {
  it('success, and a non-zero exit as NonZeroExitCode with an ExitCode cause (what kubectl turns into its exit code)', function () {
    assert.deepEqual(execStatus(0, ['true']), { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success' });
    const s = execStatus(3, ['sh', '-c', 'exit 3']);
    assert.equal(s.status, 'Failure');
    assert.equal(s.reason, 'NonZeroExitCode');
    assert.deepEqual(s.details, { causes: [{ reason: 'ExitCode', message: '3' }] });
  });

  it('a command that does not start is an internal error naming it', function () {
    const s = startFailedStatus(['nope'], Object.assign(new Error('spawn nope ENOENT'), { code: 'ENOENT' }));
    assert.equal(s.reason, 'InternalError');
    assert.match(s.message!, /"nope": executable file not found in \$PATH/);
  });

  it('exit codes as a container runtime reports them', function () {
    assert.equal(exitCode(0, null), 0);
    assert.equal(exitCode(7, null), 7);
    assert.equal(exitCode(null, 'SIGKILL'), 137);
    assert.equal(exitCode(null, 'SIGTERM'), 143);
  });
});

describe('pods: specs, status and logs', function () {
  const pod: KubeObject = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'default', uid: 'u1', annotations: { 'kubectl.kubernetes.io/default-container': 'b' } },
    spec: { containers: [{ name: 'a', image: 'img', command: ['sh'], args: ['-c', 'x'], env: [{ name: 'K', value: 'v' }] }, { name: 'b', image: 'i2' }] },
  };

  it('containers: command + args, env; the default container from the annotation, then the first', function () {
    assert.deepEqual(podContainers(pod), [
      { name: 'a', command: ['sh', '-c', 'x'], env: [{ name: 'K', value: 'v' }] },
      { name: 'b', command: [], env: [] },
    ]);
    assert.deepEqual(chooseContainer(pod, null), { name: 'b' });
    assert.deepEqual(chooseContainer(pod, 'a'), { name: 'a' });
    assert.deepEqual(chooseContainer(pod, 'zz'), { error: 'container zz is not valid for pod p' });
    assert.deepEqual(chooseContainer({ ...pod, metadata: { name: 'p' } }, null), { name: 'a' });
  });

  it('the environment holds only what the pod gives, nothing of the server', function () {
    const env = podEnvironment(pod, '/tmp/x', podContainers(pod)[0], false);
    assert.deepEqual(Object.keys(env).sort(), ['HOME', 'HOSTNAME', 'K', 'PATH', 'POD_NAMESPACE']);
    assert.equal(env.HOME, '/tmp/x');
  });

  it('a started pod is Running and ready on loopback; it ends when every container has exited', function () {
    const running = runningStatus(pod, '2026-01-01T00:00:00Z');
    assert.equal(running.phase, 'Running');
    assert.equal(running.podIP, '127.0.0.1');
    const one = exitedStatus(running, 'a', 0, '2026-01-01T00:01:00Z');
    assert.equal(one.phase, 'Running');
    const both = exitedStatus(one, 'b', 2, '2026-01-01T00:01:00Z');
    assert.equal(both.phase, 'Failed');
    assert.equal(exitedStatus(exitedStatus(running, 'a', 0, 't'), 'b', 0, 't').phase, 'Succeeded');
  });

  it('tailLines keeps the last n lines', function () {
    const log = Buffer.from('a\nb\nc\n');
    assert.equal(tailLines(log, 2).toString(), 'b\nc\n');
    assert.equal(tailLines(log, 5).toString(), 'a\nb\nc\n');
    assert.equal(tailLines(log, 0).toString(), '');
    assert.equal(tailLines(Buffer.from('a\nb'), 1).toString(), 'b');
  });

  it('the output log keeps its last bytes and tells followers', function () {
    const log = new OutputLog(5);
    const seen: string[] = [];
    log.on('data', (c) => seen.push(c.toString()));
    log.append(Buffer.from('abc'), 'stdout');
    log.append(Buffer.from('defg'), 'stderr');
    assert.equal(log.snapshot().toString(), 'cdefg');
    assert.deepEqual(seen, ['abc', 'defg']);
  });
});
