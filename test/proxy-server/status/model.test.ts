import { strict as assert } from 'node:assert';
import { Policy, type Binding, type Role } from '../../../federation/apiserver/rbac.js';
import { accessFor } from '../../../proxy-server/status/access.js';
import {
  clusterHealthOf,
  clusterViews,
  federatedObjectOf,
  historyFor,
  RecentFailures,
  RingBuffer,
  sampleOf,
  viewerUpdate,
  viewFor,
  type Access,
  type AgentView,
  type HubState,
  type LinkCounters,
} from '../../../proxy-server/status/model.js';

function agent(linkId: number, extra: Partial<AgentView> = {}): AgentView {
  return {
    replica: 'hub-0', linkId, instance: `agent-${linkId}`, tenant: 't', carrier: 'tls', remoteAddress: '127.0.0.1', connectedAt: '2026-12-02T08:00:00.000Z',
    streams: 0, draining: false, rttMs: 1.5, bytesIn: 100, bytesOut: 200, ...extra,
  };
}

function state(): HubState {
  return {
    replicas: [{ instance: 'hub-0', self: true, startedAt: '2026-12-02T08:00:00.000Z' }],
    lease: { mode: 'lease', holder: 'hub-0', note: 'lease of 6s' },
    clusters: clusterViews(
      [{ cluster: 'east', agent: agent(1) }, { cluster: 'west', agent: agent(2) }],
      new Map([['typo', [{ at: 'now', code: 'UNKNOWN_CLUSTER', message: 'never seen', replica: 'hub-0' }]]]),
    ),
    federation: {
      enabled: true,
      clusters: [
        { name: 'east', ready: 'True', offline: 'False', reason: 'ClusterReady', message: '', lastProbeTime: '' },
        { name: 'west', ready: 'Unknown', offline: 'True', reason: 'ClusterNotReachable', message: '', lastProbeTime: '' },
      ],
      objects: [
        { kind: 'FederatedConfigMap', group: 'types.kubefed.io', plural: 'federatedconfigmaps', namespace: 'shop', name: 'a', propagation: 'False', reason: 'CheckClusters', clusters: [{ cluster: 'east', status: '', message: '' }, { cluster: 'west', status: 'ClusterNotReady', message: '' }] },
        { kind: 'FederatedConfigMap', group: 'types.kubefed.io', plural: 'federatedconfigmaps', namespace: 'bank', name: 'b', propagation: 'True', reason: '', clusters: [{ cluster: 'east', status: '', message: '' }] },
      ],
      truncated: false,
    },
  };
}

const eastOnly: Access = { mayReach: (c) => c === 'east', mayList: (_g, _p, ns) => ns === 'shop' };
const everything: Access = { mayReach: () => true, mayList: () => true };

describe('proxy-server/status: model', function () {
  describe('viewFor (what one user may see)', function () {
    it('keeps only reachable clusters: agents, errors, health and per-cluster propagation rows', function () {
      const view = viewFor(state(), eastOnly);
      assert.deepEqual(view.clusters.map((c) => c.name), ['east']);
      assert.deepEqual(view.federation.clusters.map((c) => c.name), ['east']);
      assert.deepEqual(view.federation.objects.map((o) => [o.name, o.clusters.map((c) => c.cluster)]), [['a', ['east']]], 'objects of listable namespaces, rows of reachable clusters');
      assert.deepEqual(view.replicas, state().replicas, 'replicas and the lease are the hub\'s own facts');
      assert.deepEqual(view.lease, state().lease);
    });

    it('hides a failing cluster name (it may be another user\'s typo or secret) unless reachable', function () {
      assert.ok(!viewFor(state(), eastOnly).clusters.some((c) => c.name === 'typo'));
      const all = viewFor(state(), everything);
      assert.deepEqual(all.clusters.map((c) => c.name), ['east', 'typo', 'west']);
      assert.deepEqual(all.clusters.find((c) => c.name === 'typo')!.agents, []);
    });

    it('asks RBAC once per cluster, however many places name it', function () {
      const asked: string[] = [];
      viewFor(state(), { mayReach: (c) => (asked.push(c), true), mayList: () => true });
      assert.deepEqual(asked.sort(), ['east', 'typo', 'west']);
    });

    it('filters the history by cluster too', function () {
      const samples = [{ t: 1, clusters: { east: { rttMs: 1, inBps: 0, outBps: 0 }, west: { rttMs: 2, inBps: 5, outBps: 5 } } }];
      assert.deepEqual(historyFor(samples, eastOnly), [{ t: 1, clusters: { east: { rttMs: 1, inBps: 0, outBps: 0 } } }]);
    });
  });

  describe('viewerUpdate (deltas)', function () {
    it('sends the state only when this viewer\'s view of it changed, the sample always', function () {
      const sample = { t: 5, clusters: { east: { rttMs: 1, inBps: 1, outBps: 2 }, west: { rttMs: 1, inBps: 1, outBps: 2 } } };
      const first = viewerUpdate('', state(), sample, eastOnly);
      assert.equal(first.changed, true);
      assert.deepEqual(Object.keys(first.sample!.clusters), ['east']);
      const same = viewerUpdate(first.stateJson, state(), undefined, eastOnly);
      assert.equal(same.changed, false);
      assert.equal(same.sample, undefined);

      // A change on a cluster this viewer cannot see is no change for them.
      const westMoved = state();
      westMoved.clusters.find((c) => c.name === 'west')!.agents[0]!.streams = 7;
      assert.equal(viewerUpdate(first.stateJson, westMoved, undefined, eastOnly).changed, false);
      assert.equal(viewerUpdate(viewerUpdate('', state(), undefined, everything).stateJson, westMoved, undefined, everything).changed, true);

      const eastGone = state();
      eastGone.clusters = eastGone.clusters.filter((c) => c.name !== 'east');
      const update = viewerUpdate(first.stateJson, eastGone, undefined, eastOnly);
      assert.equal(update.changed, true);
      assert.deepEqual(JSON.parse(update.stateJson).clusters, []);
    });
  });

  describe('sampleOf (history points)', function () {
    const reading = (linkId: number, cluster: string, bytesIn: number, bytesOut: number, rttMs: number | null): LinkCounters => ({ linkId, cluster, bytesIn, bytesOut, rttMs });

    it('turns counters into per-cluster byte rates and the lowest RTT of its links', function () {
      const before = new Map([[1, reading(1, 'east', 1000, 5000, 3)], [2, reading(2, 'east', 0, 0, 9)]]);
      const now = [reading(1, 'east', 3000, 5000, 4), reading(2, 'east', 500, 1000, 2.5)];
      assert.deepEqual(sampleOf(42, before, now, 500), { t: 42, clusters: { east: { rttMs: 2.5, inBps: 5000, outBps: 2000 } } });
    });

    it('counts a new link from zero, never goes negative, and keeps a null RTT before the first PONG', function () {
      const before = new Map([[1, reading(1, 'east', 1000, 1000, null)]]);
      const now = [reading(1, 'east', 10, 10, null), reading(3, 'west', 2000, 0, null)];
      assert.deepEqual(sampleOf(1, before, now, 1000).clusters, { east: { rttMs: null, inBps: 0, outBps: 0 }, west: { rttMs: null, inBps: 2000, outBps: 0 } });
    });
  });

  describe('RingBuffer', function () {
    it('keeps the newest items, oldest first', function () {
      const ring = new RingBuffer<number>(3);
      assert.deepEqual(ring.toArray(), []);
      assert.equal(ring.last(), undefined);
      for (let i = 1; i <= 7; i++) ring.push(i);
      assert.deepEqual(ring.toArray(), [5, 6, 7]);
      assert.equal(ring.last(), 7);
      assert.equal(ring.size, 3);
    });

    it('refuses a capacity that is not a positive integer', function () {
      assert.throws(() => new RingBuffer(0), RangeError);
      assert.throws(() => new RingBuffer(1.5), RangeError);
    });
  });

  describe('RecentFailures', function () {
    it('keeps the newest N per cluster and forgets the cluster that failed longest ago', function () {
      const failures = new RecentFailures(2, 2);
      const f = (code: string) => ({ at: 't', code, message: '', replica: 'r' });
      failures.record('a', f('A1'));
      failures.record('a', f('A2'));
      failures.record('a', f('A3'));
      assert.deepEqual(failures.all.get('a')!.map((x) => x.code), ['A3', 'A2']);
      failures.record('b', f('B1'));
      failures.record('a', f('A4')); // a failed last: b is now the oldest
      failures.record('c', f('C1'));
      assert.deepEqual([...failures.all.keys()].sort(), ['a', 'c']);
    });
  });

  describe('federation objects', function () {
    it('reads health conditions and propagation status as the controller writes them', function () {
      assert.deepEqual(
        clusterHealthOf({
          metadata: { name: 'east' },
          status: { conditions: [{ type: 'Ready', status: 'False', reason: 'ClusterConfigMalformed', message: 'no secret', lastProbeTime: 'p' }, { type: 'ConfigMalformed', status: 'True' }] },
        }),
        { name: 'east', ready: 'False', offline: '', reason: 'ClusterConfigMalformed', message: 'no secret', lastProbeTime: 'p' },
      );
      const obj = federatedObjectOf(
        { kind: 'FederatedDeployment', group: 'types.kubefed.io', plural: 'federateddeployments' },
        { metadata: { name: 'web', namespace: 'shop' }, status: { conditions: [{ type: 'Propagation', status: 'False', reason: 'CheckClusters' }], clusters: [{ name: 'east' }, { name: 'west', status: 'ClusterNotReady', message: 'down' }] } },
      );
      assert.equal(obj.propagation, 'False');
      assert.deepEqual(obj.clusters, [{ cluster: 'east', status: '', message: '' }, { cluster: 'west', status: 'ClusterNotReady', message: 'down' }]);
    });

    it('shows an object the controller has not written yet, and ignores malformed status', function () {
      assert.deepEqual(clusterHealthOf({ metadata: { name: 'new' } }), { name: 'new', ready: '', offline: '', reason: '', message: '', lastProbeTime: '' });
      const obj = federatedObjectOf({ kind: 'K', group: 'g', plural: 'ks' }, { metadata: { name: 'x' }, status: { conditions: 'nope', clusters: [null, 7, { name: 3 }, { name: 'ok' }] } });
      assert.equal(obj.propagation, '');
      assert.equal(obj.namespace, '');
      assert.deepEqual(obj.clusters, [{ cluster: 'ok', status: '', message: '' }]);
    });
  });
});

describe('proxy-server/status: accessFor (RBAC)', function () {
  const roles: Role[] = [
    { name: 'proxy-east', rules: [{ verbs: ['proxy'], apiGroups: ['core.kubefed.io'], resources: ['clusters'], resourceNames: ['east'] }] },
    { name: 'list-fcm', namespace: 'shop', rules: [{ verbs: ['list'], apiGroups: ['types.kubefed.io'], resources: ['federatedconfigmaps'] }] },
  ];
  const bindings: Binding[] = [
    { name: 'pat-east', roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'proxy-east' }, subjects: [{ kind: 'User', name: 'pat' }] },
    { name: 'pat-fcm', namespace: 'shop', roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'list-fcm' }, subjects: [{ kind: 'User', name: 'pat' }] },
  ];
  const policy = new Policy(roles, bindings);

  it('lets a user see the clusters they may proxy and the objects they may list, where they may', function () {
    const pat = accessFor(policy, { user: 'pat', groups: [] });
    assert.equal(pat.mayReach('east'), true);
    assert.equal(pat.mayReach('west'), false);
    assert.equal(pat.mayList('types.kubefed.io', 'federatedconfigmaps', 'shop'), true);
    assert.equal(pat.mayList('types.kubefed.io', 'federatedconfigmaps', 'bank'), false);
    assert.equal(pat.mayList('types.kubefed.io', 'federateddeployments', 'shop'), false);
    assert.equal(pat.mayList('types.kubefed.io', 'federatedclusterroles', ''), false, 'a RoleBinding grants nothing cluster-scoped');
  });

  it('system:masters sees everything, also without the federation; others then see nothing', function () {
    const root = accessFor(null, { user: 'root', groups: ['system:masters'] });
    assert.equal(root.mayReach('anything'), true);
    assert.equal(root.mayList('g', 'p', 'ns'), true);
    const pat = accessFor(null, { user: 'pat', groups: [] });
    assert.equal(pat.mayReach('east'), false);
    assert.equal(pat.mayList('types.kubefed.io', 'federatedconfigmaps', 'shop'), false);
  });
});
