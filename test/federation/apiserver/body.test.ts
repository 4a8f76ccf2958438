// Request body decoding (body.ts): regression tests found by the fuzzer
// (test/fuzz/federation/apiserver/body.fuzz.ts).
import { strict as assert } from 'node:assert';
import { decodeObjectBody, MAX_BODY_DEPTH, MAX_YAML_DEPTH, nestedDeeperThan, parseJson, yamlDepth } from '../../../federation/apiserver/body.js';
import { ApiError } from '../../../federation/apiserver/errors.js';
import { mergePatch } from '../../../federation/apiserver/patch.js';

const nested = (depth: number): string => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
const isBadRequest = (e: unknown): boolean => e instanceof ApiError && e.code === 400 && e.reason === 'BadRequest';

describe('apiserver: request bodies', function () {
  it('nestedDeeperThan counts objects and arrays, at any depth, without recursion', function () {
    assert.equal(nestedDeeperThan(1, 0), false);
    assert.equal(nestedDeeperThan({}, 0), true);
    assert.equal(nestedDeeperThan({ a: [1] }, 2), false);
    assert.equal(nestedDeeperThan({ a: [[]] }, 2), true);
    assert.equal(nestedDeeperThan(JSON.parse('['.repeat(100_000) + ']'.repeat(100_000)), MAX_BODY_DEPTH), true);
  });

  it('fuzz regression: JSON nested 5000 deep is a 400 at decoding, not a RangeError in the patch code', function () {
    // Before the limit, parseJson accepted it and mergePatch threw "Maximum call stack size exceeded".
    assert.throws(() => parseJson(Buffer.from(nested(5000))), isBadRequest);
    assert.throws(() => decodeObjectBody('application/json', Buffer.from(nested(MAX_BODY_DEPTH + 1))), isBadRequest);
    const deepest = parseJson(Buffer.from(nested(MAX_BODY_DEPTH)));
    assert.deepEqual(mergePatch(deepest, deepest), deepest, 'the deepest accepted body goes through a patch');
  });

  it('fuzz regression: YAML nested 1001 deep is a 400 before the parser recurses (it aborted the process)', function () {
    // Under mocha's deeper stack, YAML.parse of this overflowed inside V8's regexp compiler:
    // "FATAL ERROR: RegExpCompiler Allocation failed - process out of memory", no exception to catch.
    assert.throws(() => decodeObjectBody('application/yaml', Buffer.from('- '.repeat(1001) + '1')), isBadRequest);
    assert.throws(() => decodeObjectBody('application/yaml', Buffer.from('['.repeat(20_000) + ']'.repeat(20_000))), isBadRequest);
    assert.throws(() => decodeObjectBody('application/yaml', Buffer.from('{a: '.repeat(MAX_YAML_DEPTH + 1) + '1' + '}'.repeat(MAX_YAML_DEPTH + 1))), isBadRequest);
    const deepest = '- '.repeat(MAX_YAML_DEPTH) + '1';
    assert.equal(yamlDepth(deepest), MAX_YAML_DEPTH);
    assert.ok(nestedDeeperThan(decodeObjectBody('application/yaml', Buffer.from(deepest)), MAX_YAML_DEPTH - 1));
  });

  it('yamlDepth counts block and flow collections, keys included, across documents', function () {
    assert.equal(yamlDepth('a: 1'), 1);
    assert.equal(yamlDepth('a:\n  b: [1, {c: 2}]\n'), 4);
    assert.equal(yamlDepth('? [[1]]\n: x\n'), 3);
    assert.equal(yamlDepth('x\n---\n- - 1\n'), 2);
    assert.equal(yamlDepth('plain'), 0);
  });

  it('fuzz regression: YAML warnings caused by a body are not written to the server\'s stderr', async function () {
    const warnings: Error[] = [];
    const onWarning = (warning: Error): number => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      assert.equal(decodeObjectBody('application/yaml', Buffer.from('!unknown-tag x')), 'x');
      // process.emitWarning delivers on the next tick.
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    assert.deepEqual(warnings, []);
  });
});
