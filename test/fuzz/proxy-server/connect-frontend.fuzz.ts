// Fuzzes how the CONNECT frontend (proxy-server/connect-frontend.ts) reads a request: the target
// authority, `<host>.<cluster>.tunnel` names and Proxy-Authorization. Whatever the client sends, it
// gets a cluster that is a DNS label and an address dial() accepts, or DialError BAD_TARGET (400).
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { formatHostPort, parseHostPort } from '../../../common/address.js';
import { isDnsLabel } from '../../../certs/names.js';
import { resolveConnectTarget } from '../../../proxy-server/connect-frontend.js';
import { DialError } from '../../../wire/errors.js';
import { authorityArb, hostPortArb } from '../arbitraries.js';
import { fuzzTarget, typedOrValue } from '../support.js';

const clusterArb = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?$/);

/** `<host>.<cluster>.tunnel:<port>` for hosts that are names or IPv4 addresses. */
const tunnelAuthorityArb = fc
  .tuple(hostPortArb.filter(({ host }) => !host.includes(':')), clusterArb)
  .map(([{ host, port }, cluster]) => `${host}.${cluster}.tunnel:${port}`);

const basic = (text: string): string => `Basic ${Buffer.from(text).toString('base64')}`;

const proxyAuthorizationArb: fc.Arbitrary<string | undefined> = fc.oneof<fc.Arbitrary<string | undefined>[]>(
  fc.constant(undefined),
  fc.tuple(clusterArb, fc.string({ maxLength: 8 })).map(([user, password]) => basic(`${user}:${password}`)),
  fc.string({ maxLength: 20, unit: 'binary' }).map(basic),
  fc.string({ maxLength: 30, unit: 'binary' }),
  fc.tuple(fc.constantFrom('Basic ', 'basic\t', 'Bearer ', 'Basic'), fc.string({ maxLength: 20 })).map(([scheme, rest]) => scheme + rest),
);

function checkResolved(authority: string, proxyAuthorization: string | undefined, defaultCluster: string | null): void {
  const result = typedOrValue(() => resolveConnectTarget(authority, proxyAuthorization, defaultCluster), DialError);
  if ('error' in result) {
    assert.equal((result.error as DialError).code, 'BAD_TARGET');
    assert.equal((result.error as DialError).httpStatus, 400);
    return;
  }
  const { cluster, address } = result.value;
  assert.ok(isDnsLabel(cluster), `cluster ${JSON.stringify(cluster)}`);
  const parsed = parseHostPort(address);
  assert.ok(parsed, `address ${JSON.stringify(address)} is what dial() accepts`);
  assert.equal(formatHostPort(parsed), address);
}

fuzzTarget('proxy-server/connect-frontend', {
  'any authority and Proxy-Authorization: a DNS-label cluster and a dialable address, or BAD_TARGET': {
    runs: 100_000,
    property: () =>
      fc.property(fc.oneof(authorityArb(), authorityArb(tunnelAuthorityArb)), proxyAuthorizationArb, fc.option(clusterArb, { nil: null }), (authority, auth, defaultCluster: string | null) => {
        checkResolved(authority, auth, defaultCluster);
      }),
  },
  '<host>.<cluster>.tunnel:<port> names that cluster and that host': {
    runs: 30_000,
    property: () =>
      fc.property(hostPortArb.filter(({ host }) => !host.includes(':')), clusterArb, ({ host, port }, cluster) => {
        assert.deepEqual(resolveConnectTarget(`${host}.${cluster}.tunnel:${port}`, undefined, null), { cluster, address: formatHostPort({ host: host.toLowerCase(), port }) });
      }),
  },
  'the proxy user name names the cluster and the authority is dialed unchanged': {
    runs: 30_000,
    property: () =>
      fc.property(hostPortArb, clusterArb, fc.string({ maxLength: 12 }), (target, cluster, password) => {
        assert.deepEqual(resolveConnectTarget(formatHostPort(target), basic(`${cluster}:${password}`), null), { cluster, address: formatHostPort(target) });
      }),
  },
});
