import { strict as assert } from 'node:assert';
import { WorkQueue } from '../../../federation/controller/queue.js';

describe('federation/controller: WorkQueue', function () {
  it('queues a key once, and never hands one key to two workers at once', async function () {
    const q = new WorkQueue<string>();
    const running = new Set<string>();
    const order: string[] = [];
    let release!: () => void;
    const firstRunning = new Promise<void>((resolve) => (release = resolve));
    let gate!: () => void;
    const held = new Promise<void>((resolve) => (gate = resolve));
    let calls = 0;
    const done = q.run(4, async (key) => {
      assert.ok(!running.has(key), `${key} handed to two workers`);
      running.add(key);
      order.push(key);
      calls++;
      if (calls === 1) {
        release();
        await held;
      }
      running.delete(key);
      if (calls === 3) q.shutDown();
    }, () => assert.fail('no handler error expected'));
    q.add('a');
    q.add('a');
    await firstRunning;
    // 'a' is in a worker: re-adding marks it dirty; it runs again after, not beside, the first run.
    q.add('a');
    q.add('a');
    q.add('b');
    gate();
    await done;
    assert.deepEqual(order.sort(), ['a', 'a', 'b']);
  });

  it('backs a failing key off exponentially and forgets the count on success', async function () {
    const q = new WorkQueue<string>({ baseDelayMs: 1, maxDelayMs: 8 });
    assert.equal(q.addRateLimited('k'), 1);
    assert.equal(q.addRateLimited('k'), 2);
    assert.equal(q.addRateLimited('k'), 4);
    assert.equal(q.addRateLimited('k'), 8);
    assert.equal(q.addRateLimited('k'), 8, 'capped');
    q.forget('k');
    assert.equal(q.failureCount('k'), 0);
    q.shutDown();
  });

  it('retries a key whose handler throws, after its backoff', async function () {
    const q = new WorkQueue<string>({ baseDelayMs: 1 });
    let attempts = 0;
    const errors: unknown[] = [];
    const done = q.run(1, async () => {
      attempts++;
      if (attempts < 3) throw new Error(`attempt ${attempts}`);
      q.shutDown();
    }, (_key, err) => errors.push(err));
    q.add('x');
    await done;
    assert.equal(attempts, 3);
    assert.equal(errors.length, 2);
  });

  it('shutDown wakes idle workers and drops delayed keys', async function () {
    const q = new WorkQueue<string>();
    const done = q.run(3, async () => assert.fail('nothing should run'), () => undefined);
    q.addAfter('later', 60_000);
    q.shutDown();
    await done;
    q.add('ignored');
    assert.equal(q.depth, 0);
  });
});
