import { strict as assert } from 'node:assert';
import { forwardingPeer, isLive, liveReplicas, replicaAddresses, sameAddresses, type ReplicaRecord } from '../../../proxy-server/replicas/liveness.js';
import { parsePeerRequest } from '../../../proxy-server/replicas/peer-forwarding.js';
import { keeperTargets } from '../../../cluster-agent/links.js';

function record(id: string, heartbeatMs: number, clusters: string[] = []): ReplicaRecord {
  return { id, address: `10.0.0.${id.length}:8091`, heartbeatMs, clusters };
}

describe('proxy-server/replicas: liveness decisions', function () {
  it('a replica is live while its heartbeat is younger than the TTL, on the store clock', function () {
    assert.equal(isLive(record('a', 1000), 1000, 500), true);
    assert.equal(isLive(record('a', 1000), 1499, 500), true);
    assert.equal(isLive(record('a', 1000), 1500, 500), false);
    // A heartbeat "from the future" (store clock read before the write landed) is live.
    assert.equal(isLive(record('a', 2000), 1000, 500), true);
  });

  it('lists live replicas ordered by id, so every reader announces the same list', function () {
    const rows = [record('c', 900), record('a', 950), record('gone', 100), record('b', 999)];
    assert.deepEqual(liveReplicas(rows, 1000, 500).map((r) => r.id), ['a', 'b', 'c']);
    assert.deepEqual(replicaAddresses(liveReplicas(rows, 1000, 500)), [
      { id: 'a', address: '10.0.0.1:8091' },
      { id: 'b', address: '10.0.0.1:8091' },
      { id: 'c', address: '10.0.0.1:8091' },
    ]);
  });

  it('tells changed announcements from equal ones', function () {
    const one = [{ id: 'a', address: 'x:1' }];
    assert.equal(sameAddresses(one, [{ id: 'a', address: 'x:1' }]), true);
    assert.equal(sameAddresses(one, [{ id: 'a', address: 'x:2' }]), false);
    assert.equal(sameAddresses(one, [...one, { id: 'b', address: 'y:1' }]), false);
    assert.equal(sameAddresses([], []), true);
  });

  it('forwards to a live peer that reported the cluster, never to itself; the freshest heartbeat first', function () {
    const live = [record('self', 1000, ['alpha']), record('p1', 900, ['alpha']), record('p2', 950, ['alpha', 'beta']), record('p3', 990, ['gamma'])];
    assert.equal(forwardingPeer('alpha', live, 'self')?.id, 'p2');
    assert.equal(forwardingPeer('beta', live, 'self')?.id, 'p2');
    assert.equal(forwardingPeer('gamma', live, 'p3'), null, 'only the replica itself has it');
    assert.equal(forwardingPeer('delta', live, 'self'), null);
    assert.equal(forwardingPeer('alpha', [record('b', 5, ['alpha']), record('a', 5, ['alpha'])], 'self')?.id, 'a', 'ties go by id');
  });
});

describe('cluster-agent/links: keeper targets', function () {
  const announced = [
    { id: 'hub-a', address: 'a:1' },
    { id: 'hub-b', address: 'b:1' },
    { id: 'hub-c', address: 'c:1' },
  ];
  it('every announced replica except the one the main link is on', function () {
    assert.deepEqual([...keeperTargets(announced, 'hub-b')], [['hub-a', 'a:1'], ['hub-c', 'c:1']]);
    assert.deepEqual([...keeperTargets(announced, null).keys()], ['hub-a', 'hub-b', 'hub-c'], 'main link down: keepers for all');
    assert.deepEqual([...keeperTargets(announced, 'hub-z').keys()], ['hub-a', 'hub-b', 'hub-c'], 'main link on a replica not (yet) announced');
    assert.deepEqual([...keeperTargets([], 'hub-a')], []);
  });
});

describe('proxy-server/replicas: peer forwarding request', function () {
  const good = { cluster: 'alpha', address: '10.96.0.1:443', sid: 'abc', timeoutMs: 5000, requester: 'root' };
  it('accepts a well-formed request line and keeps only its fields', function () {
    assert.deepEqual(parsePeerRequest(JSON.stringify({ ...good, extra: true })), good);
  });
  it('refuses anything else', function () {
    for (const bad of ['', 'not json', 'null', '[]', JSON.stringify({ ...good, cluster: '' }), JSON.stringify({ ...good, timeoutMs: 0 }), JSON.stringify({ ...good, timeoutMs: 1.5 }), JSON.stringify({ ...good, sid: 'x'.repeat(65) }), JSON.stringify({ ...good, address: 5 })]) {
      assert.equal(parsePeerRequest(bad), null, bad);
    }
  });
});
