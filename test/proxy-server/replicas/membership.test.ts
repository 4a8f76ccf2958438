// ReplicaMembership over a real SQLite membership file shared by several instances (as replicas
// on one host share it): heartbeats, the live set and its change events, TTL expiry, leaving,
// and the clusters seen by any replica.
import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { Registry } from 'prom-client';
import { ReplicaMembership } from '../../../proxy-server/replicas/membership.js';
import { openMembershipStore } from '../../../proxy-server/replicas/membership-store.js';
import type { ReplicaAddress } from '../../../wire/messages.js';
import { scratchDir } from '../../support/paths.js';

const log = pino({ level: 'silent' });

describe('proxy-server/replicas: membership over a shared SQLite file', function () {
  this.timeout(20_000);
  const file = path.join(scratchDir('membership'), 'members.db');
  const running: ReplicaMembership[] = [];

  beforeEach(function () {
    for (const suffix of ['', '-wal', '-shm']) fs.rmSync(file + suffix, { force: true });
  });

  afterEach(async function () {
    for (const m of running.splice(0)) await m.stop();
  });

  async function member(id: string, clusters: string[] = [], heartbeatMs = 50, ttlMs = 300): Promise<ReplicaMembership> {
    const m = new ReplicaMembership(await openMembershipStore(`sqlite://${file}`), {
      id,
      address: `127.0.0.1:${1000 + id.charCodeAt(id.length - 1)}`,
      heartbeatMs,
      ttlMs,
      clusters: () => clusters,
      log,
      registry: new Registry(),
    });
    running.push(m);
    await m.start();
    return m;
  }

  async function until(m: ReplicaMembership, ids: string[]): Promise<void> {
    const want = JSON.stringify(ids);
    while (JSON.stringify(m.announcement().map((r) => r.id)) !== want) {
      await once(m, 'change');
    }
  }

  it('each replica sees itself after its first heartbeat and the others once they beat; change events follow', async function () {
    const a = await member('hub-a', ['alpha']);
    assert.deepEqual(a.announcement(), [{ id: 'hub-a', address: '127.0.0.1:1097' }]);
    const b = await member('hub-b');
    assert.deepEqual(b.announcement().map((r) => r.id), ['hub-a', 'hub-b']);
    const seen = once(a, 'change') as Promise<[ReplicaAddress[]]>;
    const [list] = await seen;
    assert.deepEqual(list.map((r) => r.id), ['hub-a', 'hub-b']);
    assert.equal(b.peerFor('alpha')?.id, 'hub-a', 'b forwards alpha to a');
    assert.equal(a.peerFor('alpha'), null, 'never to itself');
    assert.equal(b.hasSeen('alpha'), true);
    assert.equal(b.hasSeen('beta'), false);
  });

  it('a replica that leaves is gone at once; one that stops beating is gone after the TTL', async function () {
    const a = await member('hub-a');
    const b = await member('hub-b');
    const c = await member('hub-c');
    await until(a, ['hub-a', 'hub-b', 'hub-c']);
    running.splice(running.indexOf(b), 1);
    await b.stop();
    await until(a, ['hub-a', 'hub-c']);
    // Frozen: its heartbeat timer stopped without leaving (a killed process).
    (c as unknown as { timer: NodeJS.Timeout }).timer.close();
    const started = Date.now();
    await until(a, ['hub-a']);
    assert.ok(Date.now() - started >= 150, 'not before the TTL ran out');
  });
});
