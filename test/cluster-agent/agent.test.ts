import { strict as assert } from 'node:assert';
import { backoffDelay } from '../../cluster-agent/agent.js';

describe('cluster-agent: backoffDelay', function () {
  const middle = (): number => 0.5;

  it('starts at the initial delay and doubles per attempt up to the cap', function () {
    const delays = Array.from({ length: 8 }, (_, attempt) => backoffDelay(attempt, 500, 10_000, middle));
    assert.deepEqual(delays, [500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]);
  });

  it('stays at the cap for huge attempt numbers', function () {
    for (const attempt of [31, 100, 1_000, 1e9, Number.MAX_SAFE_INTEGER]) {
      assert.equal(backoffDelay(attempt, 500, 10_000, middle), 10_000, `attempt ${attempt}`);
    }
  });

  it('never exceeds the cap when the initial delay is above it', function () {
    assert.equal(backoffDelay(0, 20_000, 10_000, middle), 10_000);
  });

  it('jitters within ±20 % of the base delay', function () {
    for (const attempt of [0, 3, 10]) {
      const base = Math.min(10_000, 500 * 2 ** attempt);
      assert.equal(backoffDelay(attempt, 500, 10_000, () => 0), Math.round(base * 0.8), 'lowest');
      const highest = backoffDelay(attempt, 500, 10_000, () => 0.999_999_9);
      assert.ok(highest <= Math.round(base * 1.2) && highest >= Math.round(base * 1.2) - 1, `highest ${highest}`);
      for (let i = 0; i < 200; i++) {
        const delay = backoffDelay(attempt, 500, 10_000);
        assert.ok(delay >= base * 0.8 && delay <= base * 1.2, `attempt ${attempt}: ${delay} outside ±20 % of ${base}`);
      }
    }
  });

  it('uses the injected random source, and rounds to whole milliseconds', function () {
    const values = [0.1, 0.9];
    const delays = values.map((value) => backoffDelay(1, 333, 10_000, () => value));
    assert.deepEqual(delays, [Math.round(666 * 0.84), Math.round(666 * 1.16)]);
    for (const delay of delays) assert.ok(Number.isInteger(delay));
  });
});
