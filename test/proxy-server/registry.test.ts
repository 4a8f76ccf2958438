import { strict as assert } from 'node:assert';
import { AgentRegistry, type AgentLink } from '../../proxy-server/registry.js';
import { DialError } from '../../wire/errors.js';
import type { MuxSession } from '../../wire/session.js';

/** The session fields the registry reads. */
interface FakeSession {
  isClosed: boolean;
  streamCount: number;
  remoteDraining: boolean;
  localDraining: boolean;
  rttMs: number;
}

let nextLinkId = 1;

function link(cluster: string, session: Partial<FakeSession> = {}, tenant = 'acme'): AgentLink & { fake: FakeSession } {
  const fake: FakeSession = { isClosed: false, streamCount: 0, remoteDraining: false, localDraining: false, rttMs: Number.NaN, ...session };
  return {
    linkId: nextLinkId++,
    identity: { cluster, tenant },
    instance: `agent-${cluster}`,
    carrier: 'tls',
    remoteAddress: '10.0.0.1',
    connectedAt: new Date('2026-01-01T00:00:00Z'),
    session: fake as unknown as MuxSession,
    fake,
  };
}

function dialCode(call: () => unknown): string {
  try {
    call();
  } catch (error) {
    assert.ok(error instanceof DialError, String(error));
    return error.code;
  }
  assert.fail('expected a DialError');
}

describe('proxy-server: AgentRegistry', function () {
  it('within the rejoin window after start an unknown cluster is NO_AGENT (agents reconnecting), then UNKNOWN_CLUSTER', function () {
    let now = 1000;
    const registry = new AgentRegistry(100, 30_000, () => now);
    assert.equal(dialCode(() => registry.pick('prod')), 'NO_AGENT');
    now += 29_999;
    assert.throws(() => registry.pick('prod'), /has registered since the hub started 30 s ago; agents may still be reconnecting/);
    now += 1;
    assert.equal(dialCode(() => registry.pick('prod')), 'UNKNOWN_CLUSTER');
  });

  it('UNKNOWN_CLUSTER for a cluster never seen, NO_AGENT once its last link is gone', function () {
    const registry = new AgentRegistry(100);
    assert.equal(dialCode(() => registry.pick('prod')), 'UNKNOWN_CLUSTER');
    const a = link('prod');
    registry.add(a);
    assert.equal(registry.pick('prod'), a);
    registry.remove(a);
    assert.equal(dialCode(() => registry.pick('prod')), 'NO_AGENT');
    assert.equal(dialCode(() => registry.pick('other')), 'UNKNOWN_CLUSTER');
    assert.equal(registry.linkCount, 0);
  });

  it('picks the link with the fewest streams', function () {
    const registry = new AgentRegistry(100);
    const busy = link('prod', { streamCount: 10 });
    const idle = link('prod', { streamCount: 2 });
    const middle = link('prod', { streamCount: 5 });
    for (const l of [busy, idle, middle]) registry.add(l);
    assert.equal(registry.pick('prod'), idle);
    idle.fake.streamCount = 20;
    assert.equal(registry.pick('prod'), middle);
  });

  it('keeps clusters apart', function () {
    const registry = new AgentRegistry(100);
    const prod = link('prod', { streamCount: 50 });
    const dev = link('dev');
    registry.add(prod);
    registry.add(dev);
    assert.equal(registry.pick('prod'), prod);
    assert.equal(registry.pick('dev'), dev);
  });

  it('skips draining links, either direction', function () {
    const registry = new AgentRegistry(100);
    const remote = link('prod', { remoteDraining: true });
    const local = link('prod', { localDraining: true });
    const busy = link('prod', { streamCount: 99 });
    for (const l of [remote, local, busy]) registry.add(l);
    assert.equal(registry.pick('prod'), busy);
  });

  it('AGENT_DRAINING when every link drains', function () {
    const registry = new AgentRegistry(100);
    registry.add(link('prod', { remoteDraining: true }));
    registry.add(link('prod', { localDraining: true }));
    assert.equal(dialCode(() => registry.pick('prod')), 'AGENT_DRAINING');
  });

  it('skips links at the stream limit; STREAM_LIMIT when all are full', function () {
    const registry = new AgentRegistry(10);
    const full = link('prod', { streamCount: 10 });
    const almost = link('prod', { streamCount: 9 });
    registry.add(full);
    registry.add(almost);
    assert.equal(registry.pick('prod'), almost);
    almost.fake.streamCount = 10;
    const error = (() => {
      try {
        registry.pick('prod');
      } catch (e) {
        return e as DialError;
      }
      assert.fail('expected STREAM_LIMIT');
    })();
    assert.equal(error.code, 'STREAM_LIMIT');
    assert.match(error.message, /limit of 10 streams/);
  });

  it('STREAM_LIMIT, not AGENT_DRAINING, when some links drain and the rest are full', function () {
    const registry = new AgentRegistry(1);
    registry.add(link('prod', { remoteDraining: true }));
    registry.add(link('prod', { streamCount: 1 }));
    assert.equal(dialCode(() => registry.pick('prod')), 'STREAM_LIMIT');
  });

  it('skips closed links', function () {
    const registry = new AgentRegistry(100);
    const closed = link('prod', { isClosed: true });
    const open = link('prod', { streamCount: 50 });
    registry.add(closed);
    registry.add(open);
    assert.equal(registry.pick('prod'), open);
  });

  // Only closed links left (registered, not yet removed by their close handler): the agent is
  // gone, so this should read as NO_AGENT rather than a stream limit that does not exist.
  it('NO_AGENT when every registered link of the cluster is closed', function () {
    const registry = new AgentRegistry(100);
    registry.add(link('prod', { isClosed: true }));
    assert.equal(dialCode(() => registry.pick('prod')), 'NO_AGENT');
  });

  it('remove() is idempotent and only removes the given link', function () {
    const registry = new AgentRegistry(100);
    const a = link('prod');
    const b = link('prod', { streamCount: 3 });
    registry.add(a);
    registry.add(b);
    registry.remove(a);
    registry.remove(a);
    registry.remove(link('prod'));
    assert.equal(registry.linkCount, 1);
    assert.equal(registry.pick('prod'), b);
    assert.deepEqual(registry.links(), [b]);
  });

  it('summarises links for the debug endpoint', function () {
    const registry = new AgentRegistry(100);
    const a = link('prod', { streamCount: 3, rttMs: 1.5 });
    const b = link('dev', { remoteDraining: true }, 'other');
    registry.add(a);
    registry.add(b);
    assert.deepEqual(registry.summary(), [
      {
        linkId: a.linkId,
        cluster: 'prod',
        tenant: 'acme',
        instance: 'agent-prod',
        carrier: 'tls',
        remoteAddress: '10.0.0.1',
        connectedAt: '2026-01-01T00:00:00.000Z',
        streams: 3,
        draining: false,
        rttMs: 1.5,
      },
      {
        linkId: b.linkId,
        cluster: 'dev',
        tenant: 'other',
        instance: 'agent-dev',
        carrier: 'tls',
        remoteAddress: '10.0.0.1',
        connectedAt: '2026-01-01T00:00:00.000Z',
        streams: 0,
        draining: true,
        rttMs: null,
      },
    ]);
  });
  it('tells listeners when a cluster gets its first link and loses its last', function () {
    const registry = new AgentRegistry(10);
    const seen: string[] = [];
    const unsubscribe = registry.onChange((cluster, connected) => seen.push(`${cluster}:${connected}`));
    const a = link('east');
    const b = link('east');
    registry.add(a);
    registry.add(b);
    assert.equal(registry.isConnected('east'), true);
    registry.remove(a);
    assert.deepEqual(seen, ['east:true'], 'a second link coming or going is not a change');
    registry.remove(b);
    assert.equal(registry.isConnected('east'), false);
    assert.deepEqual(seen, ['east:true', 'east:false']);
    unsubscribe();
    registry.add(link('east'));
    assert.equal(seen.length, 2, 'no calls after unsubscribe');
  });

  it("knows the tenant of each cluster's latest agent certificate, also after it disconnected", function () {
    const registry = new AgentRegistry(10);
    assert.equal(registry.agentTenantOf('north'), undefined);
    const first = link('north', {}, 'payments');
    registry.add(first);
    registry.add(link('east', {}, 'retail'));
    assert.equal(registry.agentTenantOf('north'), 'payments');
    assert.equal(registry.agentTenantOf('east'), 'retail');
    registry.remove(first);
    assert.equal(registry.agentTenantOf('north'), 'payments', 'a disconnected cluster keeps its tenant');
    registry.add(link('north', {}, 'retail'));
    assert.equal(registry.agentTenantOf('north'), 'retail', 'a reissued certificate moves it');
  });
});
