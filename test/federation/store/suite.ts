// The Store contract, written once and run against every backend (describeStore). Each test gets
// a fresh database from the backend's fixture and may open several Store instances on it.
import { strict as assert } from 'node:assert';
import type { Store } from '../../../federation/store/types.js';
import { assertNoLeakedResources, resourceBaseline } from '../../support/leaks.js';
import { assertStrictlyIncreasing, assertStreamMatches, expectStoreError, runConcurrentUpdates, text, until, WatchRecorder } from './workload.js';

/** Store settings both backends accept, for tests that need them tuned. */
export interface StoreTuning {
  pollIntervalMs?: number;
  compactBatchRevisions?: number;
}

export interface StoreFixture {
  /** Opens a Store on this fixture's database (every call: another instance on the same data). */
  open(tuning?: StoreTuning): Promise<Store>;
  /** Rows in the log table, to see what compaction removed. */
  logRows(): Promise<number>;
  /** Removes the database (file or tables). */
  destroy(): Promise<void>;
}

export function describeStore(name: string, newFixture: () => Promise<StoreFixture>): void {
  describe(name, function () {
    let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
    let fixture: StoreFixture;
    let opened: Store[] = [];
    let recorders: WatchRecorder[] = [];

    const open = async (tuning?: StoreTuning): Promise<Store> => {
      const store = await fixture.open(tuning);
      opened.push(store);
      return store;
    };
    const record = (store: Store, prefix: string, fromRevision: number): WatchRecorder => {
      const recorder = new WatchRecorder(store, prefix, fromRevision);
      recorders.push(recorder);
      return recorder;
    };

    before(async () => {
      baseline = await resourceBaseline();
    });
    beforeEach(async () => {
      fixture = await newFixture();
    });
    afterEach(async () => {
      for (const recorder of recorders) recorder.cancel();
      await Promise.all(opened.map((store) => store.close()));
      await fixture.destroy();
      opened = [];
      recorders = [];
    });
    after(async () => {
      await assertNoLeakedResources(baseline);
    });

    it('creates, reads, updates with compare-and-swap, and deletes with and without an expected revision', async () => {
      const store = await open();
      assert.equal(await store.currentRevision(), 0);
      assert.equal(await store.get('/crud/a'), null);

      const created = await store.create('/crud/a', text('v1'));
      assert.deepEqual(created, { key: '/crud/a', value: text('v1'), createRevision: created.modRevision, modRevision: created.modRevision });
      assert.deepEqual(await store.get('/crud/a'), created);
      assert.equal(await store.currentRevision(), created.modRevision);

      const revisionBeforeFailures = await store.currentRevision();
      await expectStoreError(store.create('/crud/a', text('again')), 'ALREADY_EXISTS');
      await expectStoreError(store.update('/crud/missing', text('x'), 1), 'NOT_FOUND');
      await expectStoreError(store.delete('/crud/missing'), 'NOT_FOUND');

      const updated = await store.update('/crud/a', text('v2'), created.modRevision);
      assert.ok(updated.modRevision > created.modRevision);
      assert.equal(updated.createRevision, created.modRevision);
      await expectStoreError(store.update('/crud/a', text('stale'), created.modRevision), 'CONFLICT');
      await expectStoreError(store.delete('/crud/a', created.modRevision), 'CONFLICT');
      assert.deepEqual(await store.get('/crud/a'), updated);
      // Failed writes leave no trace: the only new revision is the update's.
      assert.equal(await store.currentRevision(), updated.modRevision);
      assert.ok(updated.modRevision > revisionBeforeFailures);

      // A delete returns the version it removed.
      assert.deepEqual(await store.delete('/crud/a', updated.modRevision), updated);
      assert.equal(await store.get('/crud/a'), null);
      assert.ok((await store.currentRevision()) > updated.modRevision);
      await expectStoreError(store.delete('/crud/a'), 'NOT_FOUND');
      await expectStoreError(store.update('/crud/a', text('v3'), updated.modRevision), 'NOT_FOUND');

      const b = await store.create('/crud/b', text('b'));
      assert.deepEqual(await store.delete('/crud/b'), b);

      // A deleted key can be created again and starts a new life.
      const recreated = await store.create('/crud/a', text('v3'));
      assert.equal(recreated.createRevision, recreated.modRevision);
      assert.deepEqual(await store.get('/crud/a'), recreated);

      const binary = Buffer.from([0, 255, 1, 254, 0]);
      const empty = await store.create('/crud/empty', Buffer.alloc(0));
      await store.create('/crud/binary', binary);
      assert.deepEqual((await store.get('/crud/binary'))!.value, binary);
      assert.deepEqual(await store.get('/crud/empty'), empty);
    });

    it('lists a prefix in pages at one revision while writes continue', async () => {
      const store = await open();
      const keys = Array.from({ length: 25 }, (_, i) => `/list/k${String(i).padStart(2, '0')}`);
      for (const key of keys) await store.create(key, text(`${key}@1`));
      // Neighbours outside the prefix.
      await store.create('/lisa', text('x'));
      await store.create('/list', text('x'));
      await store.create('/list0', text('x'));
      await store.create('/list/', text('the prefix itself'));

      const first = await store.list('/list/', { limit: 10 });
      assert.equal(first.more, true);
      assert.equal(first.items.length, 10);
      const snapshot = first.revision;

      // Writes between pages: in the pages still to come, before and after them.
      const k15 = (await store.get('/list/k15'))!;
      await store.update('/list/k15', text('changed'), k15.modRevision);
      await store.delete('/list/k20');
      await store.delete('/list/k03');
      await store.create('/list/k17a', text('new'));
      await store.create('/list/k99', text('new'));

      const items = [...first.items];
      let page = first;
      while (page.more) {
        page = await store.list('/list/', { revision: snapshot, limit: 10, startKey: page.continueKey });
        assert.equal(page.revision, snapshot);
        items.push(...page.items);
      }
      assert.deepEqual(
        items.map((kv) => [kv.key, kv.value.toString()]),
        [['/list/', 'the prefix itself'], ...keys.map((key) => [key, `${key}@1`])],
      );
      assert.ok(items.every((kv) => kv.modRevision <= snapshot));

      const latest = await store.list('/list/');
      assert.equal(latest.more, false);
      assert.equal(latest.revision, await store.currentRevision());
      const latestKeys = latest.items.map((kv) => kv.key);
      assert.ok(latestKeys.includes('/list/k17a') && latestKeys.includes('/list/k99'));
      assert.ok(!latestKeys.includes('/list/k20') && !latestKeys.includes('/list/k03'));
      assert.equal(latest.items.find((kv) => kv.key === '/list/k15')!.value.toString(), 'changed');

      // Limit without more, empty prefix (everything) and a prefix with no keys.
      assert.deepEqual((await store.list('/list/k1', { limit: 11 })).more, false);
      assert.equal((await store.list('')).items.length, latest.items.length + 3);
      assert.deepEqual((await store.list('/nothing/')).items, []);
    });

    it('orders keys by their UTF-8 bytes and bounds non-ASCII prefixes exactly', async () => {
      const store = await open();
      // UTF-16 order (JS <) would put the emoji before U+FFFF; UTF-8 byte order puts it after.
      const keys = ['/u/a', '/u/é', '/u/éx', '/u/ê', '/u/\uffff', '/u/\u{1F600}', '/u/\u{10FFFF}'];
      for (const key of [...keys].reverse()) await store.create(key, text(key));
      assert.deepEqual(
        (await store.list('/u/')).items.map((kv) => kv.key),
        keys,
      );
      assert.deepEqual(
        (await store.list('/u/é')).items.map((kv) => kv.key),
        ['/u/é', '/u/éx'],
      );
      assert.deepEqual(
        (await store.list('/u/\u{10FFFF}')).items.map((kv) => kv.key),
        ['/u/\u{10FFFF}'],
      );
      const page = await store.list('/u/', { limit: 5 });
      assert.deepEqual(
        (await store.list('/u/', { revision: page.revision, startKey: page.continueKey })).items.map((kv) => kv.key),
        keys.slice(5),
      );
      const watcher = record(store, '/u/é', 0);
      assert.deepEqual(
        (await watcher.waitFor(2)).map((e) => e.kv.key),
        ['/u/éx', '/u/é'],
      );
    });

    it('reads a key and a prefix at older revisions', async () => {
      const store = await open();
      const v1 = await store.create('/old/x', text('v1'));
      const v2 = await store.update('/old/x', text('v2'), v1.modRevision);
      await store.create('/old/y', text('y'));
      await store.delete('/old/x');
      const deletedAt = await store.currentRevision();
      const v4 = await store.create('/old/x', text('v4'));

      assert.deepEqual(await store.get('/old/x', { revision: v1.modRevision }), v1);
      assert.deepEqual(await store.get('/old/x', { revision: v2.modRevision }), v2);
      assert.deepEqual(await store.get('/old/x', { revision: v2.modRevision + 1 }), v2);
      assert.equal(await store.get('/old/x', { revision: deletedAt }), null);
      assert.deepEqual(await store.get('/old/x', { revision: v4.modRevision }), v4);
      assert.equal(await store.get('/old/y', { revision: v1.modRevision }), null);

      const at = async (revision: number) => (await store.list('/old/', { revision })).items.map((kv) => `${kv.key}=${kv.value}`);
      assert.deepEqual(await at(v1.modRevision), ['/old/x=v1']);
      assert.deepEqual(await at(v2.modRevision + 1), ['/old/x=v2', '/old/y=y']);
      assert.deepEqual(await at(deletedAt), ['/old/y=y']);
      assert.deepEqual(await at(v4.modRevision), ['/old/x=v4', '/old/y=y']);

      await expectStoreError(store.get('/old/x', { revision: v4.modRevision + 1 }), 'FUTURE_REVISION');
      await expectStoreError(store.list('/old/', { revision: v4.modRevision + 1 }), 'FUTURE_REVISION');
    });

    it('watch replays history, then follows new writes, in order and with prevKv', async () => {
      const store = await open();
      const start = await store.currentRevision();
      const a1 = await store.create('/w/a', text('a1'));
      const a2 = await store.update('/w/a', text('a2'), a1.modRevision);
      const b1 = await store.create('/w/b', text('b1'));
      await store.create('/other/z', text('not watched'));
      await store.delete('/w/a');

      const all = record(store, '/w/', start);
      const fromMiddle = record(store, '/w/', a2.modRevision);
      const others = record(store, '/other/', start);

      const b2 = await store.update('/w/b', text('b2'), b1.modRevision);
      await store.create('/w/c', text('c1'));
      await store.delete('/w/b', b2.modRevision);

      const events = await all.waitFor(7);
      assert.deepEqual(
        events.map((e) => [e.type, e.kv.key, e.kv.value.toString(), e.prevKv?.value.toString()]),
        [
          ['PUT', '/w/a', 'a1', undefined],
          ['PUT', '/w/a', 'a2', 'a1'],
          ['PUT', '/w/b', 'b1', undefined],
          ['DELETE', '/w/a', '', 'a2'],
          ['PUT', '/w/b', 'b2', 'b1'],
          ['PUT', '/w/c', 'c1', undefined],
          ['DELETE', '/w/b', '', 'b2'],
        ],
      );
      assertStrictlyIncreasing(events.map((e) => e.revision));
      assert.ok(events.every((e) => e.revision === e.kv.modRevision));
      assert.deepEqual(events[1]!.prevKv, a1);
      assert.deepEqual(events[3]!.prevKv, a2);
      assert.equal(events[3]!.kv.createRevision, a1.modRevision);
      assert.deepEqual(events[4]!.kv, b2);

      assert.deepEqual(
        (await fromMiddle.waitFor(5)).map((e) => e.revision),
        events.slice(2).map((e) => e.revision),
      );
      assert.deepEqual((await others.waitFor(1)).map((e) => e.kv.key), ['/other/z']);

      // A cancelled watch gets nothing more; the others go on.
      all.cancel();
      await store.create('/w/d', text('d1'));
      await fromMiddle.waitFor(6);
      assert.equal(all.events.length, 7);
      assert.equal(fromMiddle.events.length, 6);
      assert.equal(others.events.length, 1);
    });

    it('compaction keeps latest values readable, removes history, and fails older reads and watches with COMPACTED', async () => {
      const store = await open({ compactBatchRevisions: 7 });
      const keys = ['/cmp/k1', '/cmp/k2', '/cmp/k3', '/cmp/k4'];
      for (const key of keys) await store.create(key, text(`${key}@0`));
      for (let round = 1; round <= 3; round++) {
        for (const key of keys) {
          const kv = (await store.get(key))!;
          await store.update(key, text(`${key}@${round}`), kv.modRevision);
        }
      }
      await store.delete('/cmp/k4'); // a tombstone below the compaction point
      const target = await store.currentRevision();
      const k1AtTarget = await store.get('/cmp/k1', { revision: target });
      // Writes above the compaction point: they and their prevKv must survive.
      const k2 = (await store.get('/cmp/k2'))!;
      await store.update('/cmp/k2', text('after'), k2.modRevision);
      await store.create('/cmp/k4', text('reborn'));
      await store.delete('/cmp/k3');
      const latestBefore = await store.list('/cmp/');

      await store.compact(target);

      assert.deepEqual(await store.list('/cmp/'), latestBefore);
      assert.deepEqual(await store.get('/cmp/k1', { revision: target }), k1AtTarget);
      assert.deepEqual(
        (await store.list('/cmp/', { revision: target })).items.map((kv) => kv.value.toString()),
        ['/cmp/k1@3', '/cmp/k2@3', '/cmp/k3@3'],
      );
      // Left: the latest row at the target of k1..k3, and the three rows written after it.
      assert.equal(await fixture.logRows(), 6);

      await expectStoreError(store.get('/cmp/k1', { revision: target - 1 }), 'COMPACTED');
      await expectStoreError(store.list('/cmp/', { revision: 1 }), 'COMPACTED');
      const tooOld = record(store, '/cmp/', target - 1);
      const fromTarget = record(store, '/cmp/', target);
      await until(() => tooOld.error !== undefined, 'COMPACTED error');
      assert.equal(tooOld.error!.code, 'COMPACTED');
      assert.deepEqual(tooOld.events, []);
      assert.deepEqual(
        (await fromTarget.waitFor(3)).map((e) => [e.type, e.kv.key, e.prevKv?.value.toString()]),
        [
          ['PUT', '/cmp/k2', '/cmp/k2@3'],
          ['PUT', '/cmp/k4', undefined],
          ['DELETE', '/cmp/k3', '/cmp/k3@3'],
        ],
      );

      await store.compact(target - 5); // already compacted: nothing to do
      await expectStoreError(store.compact((await store.currentRevision()) + 1), 'FUTURE_REVISION');
      await store.compact(await store.currentRevision());
      assert.deepEqual(await store.list('/cmp/'), latestBefore);
      assert.equal(await fixture.logRows(), 3); // k1, k2 and k4's latest rows; k3's tombstone is gone
      await store.create('/cmp/k3', text('back')); // a compacted-away key can be created again
      assert.equal((await store.get('/cmp/k3'))!.value.toString(), 'back');
    });

    it('concurrent writers: every successful write appears exactly once in the watch stream, in revision order', async function () {
      const store = await open();
      const keys = ['/con/a', '/con/b', '/con/c', '/con/d', '/con/e'];
      for (const key of keys) await store.create(key, text('initial'));
      const watcher = record(store, '/con/', await store.currentRevision());

      const acked = await runConcurrentUpdates([store], keys, 10, 100);

      assert.equal(acked.length, 1000);
      assertStreamMatches(await watcher.waitFor(1000), acked);
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(watcher.events.length, 1000, 'no duplicate or extra events');
    });

    it('close ends open watches with UNAVAILABLE and later calls fail', async () => {
      const store = await open();
      await store.create('/close/a', text('a'));
      const watcher = record(store, '/close/', 0);
      await watcher.waitFor(1);
      await store.close();
      assert.equal(watcher.error?.code, 'UNAVAILABLE');
      await expectStoreError(store.get('/close/a'), 'UNAVAILABLE');
      await expectStoreError(store.create('/close/b', text('b')), 'UNAVAILABLE');
      await store.close(); // idempotent
    });
  });
}
