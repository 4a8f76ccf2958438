// Fuzzes the control-message codec (wire/messages.ts): every valid message survives encode → parse
// unchanged; random JSON, mutated messages and random bytes give a message within the documented
// bounds or a ProtocolError, nothing else.
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { MAX_WINDOW } from '../../../wire/frames.js';
import { ProtocolError, isDialErrorCode, isResetCode, type DialErrorCode, type ResetCode } from '../../../wire/errors.js';
import { clip, parseGoAway, parseHello, parseOpen, parseOpenFail, parseReplicas, parseReset } from '../../../wire/messages.js';
import { fuzzTarget, jsonArb, typedOrValue } from '../support.js';

const DIAL_CODES: DialErrorCode[] = ['BAD_TARGET', 'UNKNOWN_CLUSTER', 'NO_AGENT', 'AGENT_DRAINING', 'STREAM_LIMIT', 'TOO_MANY_PENDING', 'POLICY_DENIED', 'NAME_NOT_RESOLVED', 'CONNECTION_REFUSED', 'HOST_UNREACHABLE', 'DIAL_TIMEOUT', 'LINK_LOST', 'CANCELLED', 'FORBIDDEN', 'DIAL_FAILED'];
const RESET_CODES: ResetCode[] = ['CANCEL', 'FLOW_CONTROL', 'PROTOCOL', 'DESTINATION_ERROR', 'CLIENT_ERROR', 'LINK_LOST', 'SHUTDOWN'];

const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));
const textArb = (max: number) => fc.string({ maxLength: max, unit: 'binary' }).filter((s) => s.length <= max);

/** Each parser with a validator of what it returned. */
const PARSERS: Array<[string, (payload: Buffer) => unknown, (m: never) => void]> = [
  ['HELLO', parseHello, (m: { version: number; instance: string; window: number }) => {
    assert.ok(Number.isInteger(m.version) && m.version >= 0 && m.version <= 0xffff);
    assert.ok(typeof m.instance === 'string' && m.instance.length <= 253);
    assert.ok(Number.isInteger(m.window) && m.window >= 1024 && m.window <= MAX_WINDOW);
  }],
  ['OPEN', parseOpen, (m: { host: string; port: number; sid: string; timeoutMs: number }) => {
    assert.ok(typeof m.host === 'string' && m.host.length <= 253);
    assert.ok(Number.isInteger(m.port) && m.port >= 1 && m.port <= 65535);
    assert.ok(typeof m.sid === 'string' && m.sid.length <= 64);
    assert.ok(Number.isInteger(m.timeoutMs) && m.timeoutMs >= 1 && m.timeoutMs <= 3_600_000);
  }],
  ['OPEN_FAIL', parseOpenFail, (m: { code: string; message: string }) => assert.ok(isDialErrorCode(m.code) && typeof m.message === 'string' && m.message.length <= 1024)],
  ['RESET', parseReset, (m: { code: string; message: string }) => assert.ok(isResetCode(m.code) && typeof m.message === 'string' && m.message.length <= 1024)],
  ['GOAWAY', parseGoAway, (m: { reason: string }) => assert.ok(typeof m.reason === 'string' && m.reason.length <= 1024)],
  ['REPLICAS', parseReplicas, (m: { replicas: Array<{ id: string; address: string }> }) => {
    assert.ok(Array.isArray(m.replicas) && m.replicas.length <= 64);
    for (const r of m.replicas) assert.ok(typeof r.id === 'string' && r.id.length >= 1 && r.id.length <= 253 && typeof r.address === 'string' && r.address.length >= 1 && r.address.length <= 261);
  }],
];

function parseAll(payload: Buffer): void {
  for (const [, parse, check] of PARSERS) {
    const result = typedOrValue(() => parse(payload), ProtocolError);
    if ('value' in result) check(result.value as never);
  }
}

const FIELDS = ['version', 'instance', 'window', 'host', 'port', 'sid', 'timeoutMs', 'code', 'message', 'reason'];
const tricky = fc.constantFrom(-1, 0, 1, 1023, 1024, 65535, 65536, MAX_WINDOW, MAX_WINDOW + 1, 3_600_001, 1.5, 1e308, -0, ...DIAL_CODES, ...RESET_CODES, 'x'.repeat(1025));

const validMessageArb = fc.oneof(
  fc.record({ version: fc.integer({ min: 0, max: 0xffff }), instance: textArb(253), window: fc.integer({ min: 1024, max: MAX_WINDOW }) }).map((m) => ['HELLO', parseHello, m] as const),
  fc.record({ host: textArb(253), port: fc.integer({ min: 1, max: 65535 }), sid: textArb(64), timeoutMs: fc.integer({ min: 1, max: 3_600_000 }) }).map((m) => ['OPEN', parseOpen, m] as const),
  fc.record({ code: fc.constantFrom(...DIAL_CODES), message: fc.string({ maxLength: 2000 }).map(clip) }).map((m) => ['OPEN_FAIL', parseOpenFail, m] as const),
  fc.record({ code: fc.constantFrom(...RESET_CODES), message: fc.string({ maxLength: 2000 }).map(clip) }).map((m) => ['RESET', parseReset, m] as const),
  fc.record({ reason: fc.string({ maxLength: 2000 }).map(clip) }).map((m) => ['GOAWAY', parseGoAway, m] as const),
  fc
    .record({ replicas: fc.array(fc.record({ id: textArb(253).filter((s) => s.length > 0), address: textArb(261).filter((s) => s.length > 0) }), { maxLength: 64 }) })
    .map((m) => ['REPLICAS', parseReplicas, m] as const),
);

fuzzTarget('wire/messages', {
  'every valid message round-trips through its parser': {
    runs: 60_000,
    property: () =>
      fc.property(validMessageArb, ([, parse, message]) => {
        assert.deepEqual(parse(json(message)), message);
      }),
  },
  'random JSON: a bounded message or ProtocolError': {
    runs: 80_000,
    property: () =>
      fc.property(jsonArb(FIELDS, [tricky], 3), (value) => {
        parseAll(json(value));
      }),
  },
  'mutated valid messages and random bytes: a bounded message or ProtocolError': {
    runs: 60_000,
    property: () =>
      fc.property(validMessageArb, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.uint8Array({ maxLength: 64 }), ([, , message], edits, noise) => {
        const bytes = Buffer.from(json(message));
        for (const [at, byte] of edits) if (bytes.length > 0) bytes[at % bytes.length] = byte;
        parseAll(bytes);
        parseAll(Buffer.from(noise));
      }),
  },
});
