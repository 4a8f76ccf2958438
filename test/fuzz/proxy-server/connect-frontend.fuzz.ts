// Fuzzes how the CONNECT frontend (proxy-server/connect-frontend.ts) reads a request: the target
// authority, `<host>.<cluster>.tunnel` names and Proxy-Authorization. Whatever the client sends, it
// gets a cluster that is a DNS label and an address dial() accepts, or DialError BAD_TARGET (400).
// One property sends random request heads to a real frontend (Unix socket, real dialer with no
// agents): every client gets a well-formed status line or a closed connection, and the frontend
// keeps answering.
import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { createLogger } from '../../../common/log.js';
import { ConnectFrontend } from '../../../proxy-server/connect-frontend.js';
import { resolveConnectTarget } from '../../../proxy-server/targets.js';
import { Dialer } from '../../../proxy-server/dialer.js';
import { ServerMetrics } from '../../../proxy-server/metrics.js';
import { AgentRegistry } from '../../../proxy-server/registry.js';
import { assertNoLeakedResources, resourceBaseline } from '../../support/leaks.js';
import { formatHostPort, parseHostPort } from '../../../common/address.js';
import { isDnsLabel } from '../../../certs/names.js';
import { DialError } from '../../../wire/errors.js';
import { authorityArb, hostPortArb } from '../arbitraries.js';
import { fuzzTarget, typedOrValue } from '../support.js';
import { DEFAULT_LISTENER_LIMITS } from '../../../common/listener-guard.js';

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

/** Request heads: valid CONNECTs with parts mutated, other methods, broken framing, huge headers. */
const headArb: fc.Arbitrary<string> = fc
  .record({
    method: fc.constantFrom('CONNECT', 'GET', 'connect', 'POST', 'CONNECT CONNECT', ''),
    target: fc.oneof(authorityArb(), authorityArb(tunnelAuthorityArb), fc.constantFrom('*', '/', 'http://x/')),
    version: fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2', 'HTTP/1.1 x', ''),
    auth: proxyAuthorizationArb,
    headers: fc.array(fc.tuple(fc.constantFrom('Host', 'Content-Length', 'Transfer-Encoding', 'X', 'Bad Name', ''), fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('chunked', '-1', '5', 'x'.repeat(20_000)))), { maxLength: 3 }),
    eol: fc.constantFrom('\r\n', '\n', '\r'),
    complete: fc.boolean(),
    trailer: fc.uint8Array({ maxLength: 16 }),
  })
  .map(({ method, target, version, auth, headers, eol, complete, trailer }) => {
    const lines = [`${method} ${target} ${version}`, ...(auth === undefined ? [] : [`Proxy-Authorization: ${auth}`]), ...headers.map(([k, v]) => `${k}: ${v}`)];
    return lines.join(eol) + (complete ? eol + eol : '') + Buffer.from(trailer).toString('latin1');
  });

const live: { frontend?: ConnectFrontend; dir?: string; socket?: string; baseline?: Awaited<ReturnType<typeof resourceBaseline>> } = {};

/** Sends `head` (then ends the request side) and collects the answer until the frontend closes. */
function exchange(head: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const client = net.connect(live.socket!);
    const chunks: Buffer[] = [];
    client.on('data', (c: Buffer) => chunks.push(c));
    client.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' || error.code === 'EPIPE' ? undefined : reject(error)));
    client.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    client.end(head, 'latin1');
  });
}

fuzzTarget('proxy-server/connect-frontend', {
  'a real frontend answers any request head with a status line or a close, and keeps serving': {
    runs: 1_000,
    property: () =>
      fc.asyncProperty(headArb, async (head) => {
        const answer = await exchange(head);
        if (answer !== '') assert.match(answer, /^HTTP\/1\.1 (400|403|404|405|431|502|503) /, `answer to ${JSON.stringify(head.slice(0, 200))}`);
        const probe = await exchange('CONNECT 10.0.0.1:443 HTTP/1.1\r\nProxy-Authorization: Basic ZWFzdDo=\r\n\r\n');
        assert.match(probe, /^HTTP\/1\.1 404 [^]*Tunnel-Error: UNKNOWN_CLUSTER/);
      }),
  },
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
}, {
  async before() {
    live.baseline = await resourceBaseline();
    live.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fuzz-connect-'));
    live.socket = path.join(live.dir, 'connect.sock');
    const log = createLogger('fuzz', 'silent');
    const agents = new AgentRegistry(10);
    const metrics = new ServerMetrics(agents);
    const dialer = new Dialer(agents, metrics, log, { dialTimeoutMs: 1000, maxPendingDials: 10 });
    live.frontend = new ConnectFrontend(dialer.dial, metrics, log, { maxHeaderBytes: 16 * 1024, limits: DEFAULT_LISTENER_LIMITS, udsDefaultCluster: null, mayReach: () => ({ allowed: false, reason: '' }) }); // the Unix socket does not ask RBAC
    await live.frontend.listenUnix(live.socket);
  },
  async after() {
    await live.frontend?.close();
    fs.rmSync(live.dir!, { recursive: true, force: true });
    await assertNoLeakedResources(live.baseline!);
  },
});
