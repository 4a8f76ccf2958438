// The federation controller's lease across real hub replicas (proxy-server processes on one MySQL
// database): exactly one leads; SIGKILL of the leader hands the lease to another within a lease
// duration and a step; SIGTERM of a leader releases it, and another leads without waiting out the
// duration; the status page of every replica names the holder; the leader gauge says the same.
import { strict as assert } from 'node:assert';
import { performance } from 'node:perf_hooks';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';
import { mysqlUnreachable } from '../support/mysql.js';
import { scratchDatabase, startReplica, type ReplicaProcess } from '../support/ha.js';
import { statusRequest } from '../support/status-client.js';

/** Short, so the test is quick: takeover after 1.2 s of silence, a step every 300 ms. */
const LEASE_MS = 1_200;
const STEP_MS = LEASE_MS / 4;

async function leaderGauge(r: ReplicaProcess): Promise<number> {
  const m = /^fedtunnel_federation_controller_leader (\d+)$/m.exec(await r.metrics());
  assert.ok(m, 'leader gauge exported');
  return Number(m[1]);
}

async function statusHolder(r: ReplicaProcess): Promise<string | null> {
  const res = await statusRequest(r.connectPort, '/status/snapshot');
  assert.equal(res.status, 200, res.body);
  return (JSON.parse(res.body) as { lease: { holder: string | null } }).lease.holder;
}

describe('HA: the controller lease across replicas', function () {
  this.timeout(120_000);
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let db: Awaited<ReturnType<typeof scratchDatabase>> | null = null;
  const replicas: ReplicaProcess[] = [];

  before(async function () {
    const unreachable = await mysqlUnreachable();
    if (unreachable) {
      if (process.env.CI) throw new Error(`MySQL is required under CI: ${unreachable}`);
      this.skip();
    }
    baseline = await resourceBaseline();
    db = await scratchDatabase();
  });

  after(async function () {
    await Promise.all(replicas.map((r) => r.kill('SIGKILL')));
    await db?.drop();
    if (baseline) await assertNoLeakedResources(baseline);
  });

  it('one leader; SIGKILL → another leads within the lease duration; SIGTERM → released and taken at once', async function () {
    const extraArgs = ['--controller-lease-duration', String(LEASE_MS)];
    // The first creates the schema and the lease; the others join.
    replicas.push(await startReplica({ instance: 'hub-a', storeUrl: db!.url, extraArgs }));
    await replicas[0]!.acquiredLease();
    replicas.push(await startReplica({ instance: 'hub-b', storeUrl: db!.url, extraArgs }), await startReplica({ instance: 'hub-c', storeUrl: db!.url, extraArgs }));
    const [a, b, c] = replicas as [ReplicaProcess, ReplicaProcess, ReplicaProcess];
    // hub-a keeps it: the others see a live lease (several renewals pass while they start).
    assert.deepEqual(await Promise.all(replicas.map(leaderGauge)), [1, 0, 0]);
    assert.deepEqual(await Promise.all(replicas.map(statusHolder)), ['hub-a', 'hub-a', 'hub-a']);
    assert.ok(a.lines.some((l) => l.msg === 'federation controller started'), 'the leader runs the controller');
    for (const r of [b, c]) assert.ok(!r.lines.some((l) => l.msg === 'federation controller started'), `${r.instance} runs no controller`);

    // SIGKILL: nothing is released; a follower takes over after the duration of silence.
    const marks = [b.mark, c.mark];
    const killedAt = performance.now();
    await a.kill('SIGKILL');
    const next = await Promise.race([b.acquiredLease(marks[0]).then(() => b), c.acquiredLease(marks[1]).then(() => c)]);
    const failoverMs = performance.now() - killedAt;
    assert.ok(failoverMs < LEASE_MS + 2 * STEP_MS + 1_000, `failover took ${failoverMs.toFixed(0)} ms (lease ${LEASE_MS} ms)`);
    assert.ok(failoverMs >= LEASE_MS - STEP_MS, `taken over after ${failoverMs.toFixed(0)} ms: before the lease could have expired`);
    const other = next === b ? c : b;
    await next.waitForLog((l) => l.msg === 'federation controller started', { since: next === b ? marks[0] : marks[1] });
    assert.deepEqual(await Promise.all([leaderGauge(next), leaderGauge(other)]), [1, 0]);
    assert.equal(await statusHolder(other), next.instance);
    assert.match(await next.metrics(), /fedtunnel_federation_controller_lease_transitions_total\{change="takeover"\} 1/);

    // SIGTERM: the leader stops its controller, releases, and the last replica leads well within a duration.
    const since = other.mark;
    const termAt = performance.now();
    const stopped = next.kill('SIGTERM');
    await other.acquiredLease(since);
    const handoverMs = performance.now() - termAt;
    assert.equal((await stopped).code, 0);
    assert.ok(next.lines.some((l) => l.msg === 'controller lease released'), `released on SIGTERM: ${next.lines.slice(-8).map((l) => JSON.stringify(l)).join('\n')}`);
    assert.ok(handoverMs < LEASE_MS, `handover after a release took ${handoverMs.toFixed(0)} ms, not less than the lease duration ${LEASE_MS} ms`);
    assert.match(await other.metrics(), /fedtunnel_federation_controller_lease_transitions_total\{change="acquired"\} 1/);
    assert.equal(await statusHolder(other), other.instance);
    console.log(`      failover after SIGKILL ${failoverMs.toFixed(0)} ms, handover after SIGTERM ${handoverMs.toFixed(0)} ms (lease ${LEASE_MS} ms)`);
  });
});
