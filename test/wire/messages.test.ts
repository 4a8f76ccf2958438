import { strict as assert } from 'node:assert';
import { MAX_WINDOW } from '../../wire/frames.js';
import { ProtocolError } from '../../wire/errors.js';
import { clip, parseGoAway, parseHello, parseOpen, parseOpenFail, parseReplicas, parseReset } from '../../wire/messages.js';

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

function isProtocolError(pattern?: RegExp) {
  return (error: unknown): boolean => error instanceof ProtocolError && (!pattern || pattern.test(error.message));
}

const NOT_OBJECTS: Array<[string, Buffer]> = [
  ['not JSON', Buffer.from('{"version":')],
  ['empty', Buffer.alloc(0)],
  ['binary', Buffer.from([0xff, 0xfe, 0x00])],
  ['null', json(null)],
  ['array', json([1, 2])],
  ['string', json('text')],
  ['number', json(1)],
];

describe('wire: messages', function () {
  describe('parseHello', function () {
    const good = { version: 1, instance: 'proxy-0', window: 65536 };

    it('accepts a valid HELLO and keeps only the known fields', function () {
      assert.deepEqual(parseHello(json({ ...good, extra: 'ignored' })), good);
      assert.deepEqual(parseHello(json({ version: 0, instance: '', window: 1024 })), { version: 0, instance: '', window: 1024 });
      assert.deepEqual(parseHello(json({ version: 0xffff, instance: 'x'.repeat(253), window: MAX_WINDOW })), {
        version: 0xffff,
        instance: 'x'.repeat(253),
        window: MAX_WINDOW,
      });
    });

    it('refuses payloads that are not JSON objects', function () {
      for (const [what, payload] of NOT_OBJECTS) assert.throws(() => parseHello(payload), isProtocolError(/HELLO/), what);
    });

    it('keeps optional features (an older peer sends none; unknown names are kept for the caller to ignore)', function () {
      assert.deepEqual(parseHello(json({ ...good, features: ['replicas', 'future'] })), { ...good, features: ['replicas', 'future'] });
      assert.equal('features' in parseHello(json(good)), false);
      for (const features of ['replicas', [1], ['x'.repeat(65)], Array(65).fill('a'), null]) {
        assert.throws(() => parseHello(json({ ...good, features })), isProtocolError(/HELLO\.features/), JSON.stringify(features));
      }
    });

    it('refuses bad fields', function () {
      const bad: Array<[string, Record<string, unknown>, RegExp]> = [
        ['missing version', { instance: 'a', window: 65536 }, /HELLO\.version/],
        ['string version', { ...good, version: '1' }, /HELLO\.version/],
        ['fractional version', { ...good, version: 1.5 }, /HELLO\.version/],
        ['negative version', { ...good, version: -1 }, /HELLO\.version/],
        ['version too large', { ...good, version: 0x10000 }, /HELLO\.version/],
        ['missing instance', { version: 1, window: 65536 }, /HELLO\.instance/],
        ['numeric instance', { ...good, instance: 5 }, /HELLO\.instance/],
        ['instance too long', { ...good, instance: 'x'.repeat(254) }, /HELLO\.instance/],
        ['window too small', { ...good, window: 1023 }, /HELLO\.window/],
        ['window too large', { ...good, window: MAX_WINDOW + 1 }, /HELLO\.window/],
        ['window not a number', { ...good, window: '65536' }, /HELLO\.window/],
        ['window NaN-ish', { ...good, window: null }, /HELLO\.window/],
      ];
      for (const [what, value, pattern] of bad) assert.throws(() => parseHello(json(value)), isProtocolError(pattern), what);
    });
  });

  describe('parseOpen', function () {
    const good = { host: 'kubernetes.default.svc', port: 443, sid: 'abc123', timeoutMs: 10_000 };

    it('accepts a valid OPEN', function () {
      assert.deepEqual(parseOpen(json(good)), good);
      assert.deepEqual(parseOpen(json({ host: '::1', port: 1, sid: '', timeoutMs: 1 })), { host: '::1', port: 1, sid: '', timeoutMs: 1 });
      assert.deepEqual(parseOpen(json({ ...good, port: 65535, timeoutMs: 3_600_000, sid: 's'.repeat(64) })), {
        ...good,
        port: 65535,
        timeoutMs: 3_600_000,
        sid: 's'.repeat(64),
      });
    });

    it('refuses payloads that are not JSON objects', function () {
      for (const [what, payload] of NOT_OBJECTS) assert.throws(() => parseOpen(payload), isProtocolError(/OPEN/), what);
    });

    it('refuses bad fields', function () {
      const bad: Array<[string, Record<string, unknown>, RegExp]> = [
        ['port 0', { ...good, port: 0 }, /OPEN\.port/],
        ['port 65536', { ...good, port: 65536 }, /OPEN\.port/],
        ['port as string', { ...good, port: '443' }, /OPEN\.port/],
        ['fractional port', { ...good, port: 443.5 }, /OPEN\.port/],
        ['host too long', { ...good, host: 'h'.repeat(254) }, /OPEN\.host/],
        ['host missing', { port: 443, sid: 'x', timeoutMs: 1 }, /OPEN\.host/],
        ['sid too long', { ...good, sid: 's'.repeat(65) }, /OPEN\.sid/],
        ['sid numeric', { ...good, sid: 1 }, /OPEN\.sid/],
        ['timeout 0', { ...good, timeoutMs: 0 }, /OPEN\.timeoutMs/],
        ['timeout over an hour', { ...good, timeoutMs: 3_600_001 }, /OPEN\.timeoutMs/],
      ];
      for (const [what, value, pattern] of bad) assert.throws(() => parseOpen(json(value)), isProtocolError(pattern), what);
    });
  });

  describe('parseOpenFail', function () {
    it('accepts known dial error codes', function () {
      for (const code of ['CONNECTION_REFUSED', 'POLICY_DENIED', 'DIAL_TIMEOUT', 'NAME_NOT_RESOLVED', 'AGENT_DRAINING', 'STREAM_LIMIT']) {
        assert.deepEqual(parseOpenFail(json({ code, message: 'm' })), { code, message: 'm' });
      }
    });

    it('maps unknown or missing codes to DIAL_FAILED', function () {
      for (const code of ['NOPE', 'connection_refused', '', 42, null, undefined, 'toString', '__proto__', 'constructor']) {
        assert.deepEqual(parseOpenFail(json({ code, message: 'm' })), { code: 'DIAL_FAILED', message: 'm' }, String(code));
      }
    });

    it('requires a message of at most 1024 characters', function () {
      assert.equal(parseOpenFail(json({ code: 'DIAL_FAILED', message: 'x'.repeat(1024) })).message.length, 1024);
      assert.throws(() => parseOpenFail(json({ code: 'DIAL_FAILED', message: 'x'.repeat(1025) })), isProtocolError(/OPEN_FAIL\.message/));
      assert.throws(() => parseOpenFail(json({ code: 'DIAL_FAILED' })), isProtocolError(/OPEN_FAIL\.message/));
      for (const [what, payload] of NOT_OBJECTS) assert.throws(() => parseOpenFail(payload), isProtocolError(/OPEN_FAIL/), what);
    });
  });

  describe('parseReset', function () {
    it('accepts known reset codes', function () {
      for (const code of ['CANCEL', 'FLOW_CONTROL', 'PROTOCOL', 'DESTINATION_ERROR', 'CLIENT_ERROR', 'LINK_LOST', 'SHUTDOWN']) {
        assert.deepEqual(parseReset(json({ code, message: 'why' })), { code, message: 'why' });
      }
    });

    it('maps unknown codes to CANCEL', function () {
      for (const code of ['DIAL_FAILED', 'cancel', 7, null, 'hasOwnProperty']) {
        assert.deepEqual(parseReset(json({ code, message: '' })), { code: 'CANCEL', message: '' }, String(code));
      }
    });

    it('refuses a missing or oversized message', function () {
      assert.throws(() => parseReset(json({ code: 'CANCEL' })), isProtocolError(/RESET\.message/));
      assert.throws(() => parseReset(json({ code: 'CANCEL', message: 'x'.repeat(1025) })), isProtocolError(/RESET\.message/));
      for (const [what, payload] of NOT_OBJECTS) assert.throws(() => parseReset(payload), isProtocolError(/RESET/), what);
    });
  });

  describe('parseGoAway', function () {
    it('accepts a reason', function () {
      assert.deepEqual(parseGoAway(json({ reason: 'restarting' })), { reason: 'restarting' });
      assert.deepEqual(parseGoAway(json({ reason: '' })), { reason: '' });
    });

    it('keeps a known refusal code and drops an unknown one', function () {
      assert.deepEqual(parseGoAway(json({ reason: 'revoked', code: 'CERTIFICATE_REVOKED' })), { reason: 'revoked', code: 'CERTIFICATE_REVOKED' });
      assert.deepEqual(parseGoAway(json({ reason: 'later', code: 'SOMETHING_NEWER' })), { reason: 'later' });
      assert.deepEqual(parseGoAway(json({ reason: 'x', code: 7 })), { reason: 'x' });
    });

    it('refuses a missing, non-string or oversized reason', function () {
      assert.throws(() => parseGoAway(json({})), isProtocolError(/GOAWAY\.reason/));
      assert.throws(() => parseGoAway(json({ reason: 1 })), isProtocolError(/GOAWAY\.reason/));
      assert.throws(() => parseGoAway(json({ reason: 'r'.repeat(1025) })), isProtocolError(/GOAWAY\.reason/));
      for (const [what, payload] of NOT_OBJECTS) assert.throws(() => parseGoAway(payload), isProtocolError(/GOAWAY/), what);
    });
  });

  describe('parseReplicas', function () {
    it('accepts a replica list (empty included) and keeps only id and address', function () {
      const replicas = [
        { id: 'hub-0', address: '10.0.0.1:8443' },
        { id: 'hub-1', address: '[::1]:8443' },
      ];
      assert.deepEqual(parseReplicas(json({ replicas: replicas.map((r) => ({ ...r, extra: 1 })) })), { replicas });
      assert.deepEqual(parseReplicas(json({ replicas: [] })), { replicas: [] });
    });

    it('refuses payloads that are not JSON objects and bad entries', function () {
      for (const [what, payload] of NOT_OBJECTS) assert.throws(() => parseReplicas(payload), isProtocolError(/REPLICAS/), what);
      const bad: unknown[] = [
        {},
        { replicas: 'hub-0' },
        { replicas: [null] },
        { replicas: [['hub-0', 'a:1']] },
        { replicas: [{ id: 'hub-0' }] },
        { replicas: [{ id: '', address: 'a:1' }] },
        { replicas: [{ id: 'hub-0', address: 5 }] },
        { replicas: Array(65).fill({ id: 'a', address: 'a:1' }) },
      ];
      for (const value of bad) assert.throws(() => parseReplicas(json(value)), isProtocolError(/REPLICAS/), JSON.stringify(value).slice(0, 80));
    });
  });

  describe('clip', function () {
    it('leaves messages of up to 1024 characters alone', function () {
      assert.equal(clip(''), '');
      assert.equal(clip('short'), 'short');
      const exact = 'y'.repeat(1024);
      assert.equal(clip(exact), exact);
    });

    it('truncates longer messages to 1024 characters ending in an ellipsis', function () {
      const clipped = clip('z'.repeat(5000));
      assert.equal(clipped.length, 1024);
      assert.ok(clipped.endsWith('…'));
      assert.equal(clipped.slice(0, -1), 'z'.repeat(1023));
    });

    it('produces text the parsers accept', function () {
      const long = 'e'.repeat(4096);
      assert.equal(parseReset(json({ code: 'CANCEL', message: clip(long) })).message, clip(long));
      assert.equal(parseGoAway(json({ reason: clip(long) })).reason, clip(long));
      assert.equal(parseOpenFail(json({ code: 'DIAL_FAILED', message: clip(long) })).message, clip(long));
    });
  });
});
