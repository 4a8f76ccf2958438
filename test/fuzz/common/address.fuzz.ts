// Fuzzes host:port parsing (common/address.ts), used by every listen flag, dial target and CONNECT
// request line: any string gives null or a HostPort that is valid and formats back to itself, and
// every valid HostPort survives format → parse.
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { formatHostPort, isValidHost, parseHostPort } from '../../../common/address.js';
import { authorityArb, hostPortArb } from '../arbitraries.js';
import { fuzzTarget } from '../support.js';

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
