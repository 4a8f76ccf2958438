import { strict as assert } from 'node:assert';
import { parseDuration } from '../../common/duration.js';

describe('common: parseDuration', function () {
  it('reads units and combinations, in milliseconds', function () {
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('90s'), 90_000);
    assert.equal(parseDuration('1h30m'), 5_400_000);
    assert.equal(parseDuration('30d'), 30 * 86_400_000);
  });

  it('refuses what is not a duration', function () {
    for (const bad of ['', '30', '1x', 'h', '1h ', '-1s', '1.5h']) assert.throws(() => parseDuration(bad), RangeError, bad);
  });
});
