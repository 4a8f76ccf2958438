// The informer's list/watch state machine, driven by a scripted source (the real sources are
// exercised by the controller's integration test).
import { strict as assert } from 'node:assert';
import { once, EventEmitter } from 'node:events';
import type { KubeObject } from '../../../federation/apiserver/storage.js';
import { Informer, type ListWatch, type WatchEventType } from '../../../federation/controller/informer.js';

const cm = (name: string, rv: string): KubeObject => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'ns', resourceVersion: rv } });

class ScriptedSource extends EventEmitter implements ListWatch {
  items: KubeObject[] = [];
  rv = '1';
  lists = 0;
  watches: Array<{ from: string; onEvent: (t: WatchEventType, o: KubeObject) => void; onEnd: (err?: Error) => void; stopped: boolean }> = [];

  async list(): Promise<{ items: KubeObject[]; resourceVersion: string }> {
    this.lists++;
    return { items: [...this.items], resourceVersion: this.rv };
  }

  watch(from: string, onEvent: (t: WatchEventType, o: KubeObject) => void, onEnd: (err?: Error) => void): { stop(): void } {
    const w = { from, onEvent, onEnd, stopped: false };
    this.watches.push(w);
    this.emit('watch', w);
    return { stop: () => (w.stopped = true) };
  }

  get current(): (typeof this.watches)[number] {
    return this.watches.at(-1)!;
  }
}

describe('federation/controller: Informer', function () {
  let source: ScriptedSource;
  let informer: Informer;
  const seen: string[] = [];

  beforeEach(function () {
    source = new ScriptedSource();
    seen.length = 0;
    informer = new Informer(source, {
      added: (o) => seen.push(`added ${o.metadata.name}`),
      updated: (o) => seen.push(`updated ${o.metadata.name}`),
      deleted: (o) => seen.push(`deleted ${o.metadata.name}`),
      failed: (e) => seen.push(`failed ${e.message}`),
    }, { baseMs: 1, maxMs: 5 });
  });

  afterEach(function () {
    informer.stop();
  });

  it('lists, then watches from the list revision and keeps the cache', async function () {
    source.items = [cm('a', '1')];
    informer.start();
    await once(source, 'watch');
    assert.equal(source.current.from, '1');
    source.current.onEvent('MODIFIED', cm('a', '2'));
    source.current.onEvent('ADDED', cm('b', '3'));
    source.current.onEvent('DELETED', cm('a', '4'));
    assert.deepEqual(seen, ['added a', 'updated a', 'added b', 'deleted a']);
    assert.deepEqual(informer.list().map((o) => o.metadata.name), ['b']);
    assert.ok(informer.hasSynced);
  });

  it('resumes a watch the server ended from the last version seen (bookmarks too), without a relist', async function () {
    informer.start();
    await once(source, 'watch');
    source.current.onEvent('ADDED', cm('a', '5'));
    source.current.onEvent('BOOKMARK', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { resourceVersion: '9' } });
    source.current.onEnd();
    assert.equal(source.watches.length, 2);
    assert.equal(source.current.from, '9');
    assert.equal(source.lists, 1);
  });

  it('relists after a failed watch and reports what vanished meanwhile', async function () {
    source.items = [cm('a', '1'), cm('b', '1')];
    informer.start();
    await once(source, 'watch');
    source.items = [cm('a', '1')];
    source.rv = '7';
    const next = once(source, 'watch');
    source.current.onEnd(new Error('410 Gone'));
    await next;
    assert.equal(source.lists, 2);
    assert.equal(source.current.from, '7');
    assert.deepEqual(seen.slice(2), ['failed 410 Gone', 'deleted b']);
  });

  it('treats watches that keep ending at once with nothing in them as a failure (relist, backoff)', async function () {
    informer.start();
    await once(source, 'watch');
    source.current.onEnd();
    source.current.onEnd();
    const next = once(source, 'watch');
    source.current.onEnd();
    await next;
    assert.equal(source.lists, 2, 'the third quiet end relists');
  });
});
