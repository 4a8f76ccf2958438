// Fuzzes host:port parsing (common/address.ts), used by every listen flag, dial target and CONNECT
// request line: any string gives null or a HostPort that is valid and formats back to itself, and
// every valid HostPort survives format → parse.
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { formatHostPort, isValidHost, parseHostPort, type HostPort } from '../../../common/address.js';
import { fuzzTarget } from '../support.js';

export const hostArb = fc.oneof(fc.domain().filter(isValidHost), fc.ipV4(), fc.ipV6(), fc.constantFrom('localhost', '0.0.0.0', '::', '::1', '::ffff:127.0.0.1'));
export const hostPortArb: fc.Arbitrary<HostPort> = fc.record({ host: hostArb, port: fc.integer({ min: 1, max: 65535 }) });

/** Valid authorities with a few characters replaced, inserted or deleted, or random text. */
export function authorityArb(valid: fc.Arbitrary<string> = hostPortArb.map(formatHostPort)): fc.Arbitrary<string> {
  const alphabet = fc.constantFrom(...':[]./-%@\0 \r\n\tAZaz09\u00e9\u0130\u212a'.split(''), '65536', '00080', '-1', '1e3', '0x50');
  const edit = fc.tuple(fc.constantFrom('replace', 'insert', 'delete'), fc.nat(), alphabet);
  return fc.oneof(
    { weight: 3, arbitrary: fc.tuple(valid, fc.array(edit, { maxLength: 3 })).map(([text, edits]) => edits.reduce((s, [kind, at, c]) => {
      const i = s.length === 0 ? 0 : at % s.length;
      return kind === 'replace' ? s.slice(0, i) + c + s.slice(i + 1) : kind === 'insert' ? s.slice(0, i) + c + s.slice(i) : s.slice(0, i) + s.slice(i + 1);
    }, text)) },
    { weight: 1, arbitrary: fc.string({ maxLength: 40, unit: 'binary' }) },
    { weight: 1, arbitrary: fc.stringMatching(/^\[?[0-9a-fA-F:.]{0,20}\]?:[0-9]{0,6}$/) },
  );
}

fuzzTarget('common/address', {
  'any text: null or a valid HostPort that formats back to an equivalent authority': {
    runs: 80_000,
    property: () =>
      fc.property(authorityArb(), fc.boolean(), (text, allowPortZero) => {
        const parsed = parseHostPort(text, { allowPortZero });
        if (parsed === null) return;
        assert.ok(isValidHost(parsed.host), `host ${JSON.stringify(parsed.host)}`);
        assert.ok(Number.isInteger(parsed.port) && parsed.port >= (allowPortZero ? 0 : 1) && parsed.port <= 65535);
        assert.deepEqual(parseHostPort(formatHostPort(parsed), { allowPortZero }), parsed);
      }),
  },
  'every valid HostPort survives format → parse': {
    runs: 40_000,
    property: () =>
      fc.property(hostPortArb, (hostPort) => {
        assert.deepEqual(parseHostPort(formatHostPort(hostPort)), hostPort);
      }),
  },
});
