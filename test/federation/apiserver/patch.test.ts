// Regression tests for patch.ts found by the fuzzer (test/fuzz/federation/apiserver/patch.fuzz.ts);
// the behaviour of each patch type is tested in pure.test.ts.
import { strict as assert } from 'node:assert';
import { jsonPatch, mergePatch } from '../../../federation/apiserver/patch.js';

describe('apiserver: patch.ts fuzz regressions', function () {
  it('a merge patch keeps a "__proto__" key as data instead of replacing the prototype', function () {
    // A ConfigMap data key may be "__proto__"; plain assignment dropped it and answered 200.
    const out = mergePatch({ data: { a: '1' } }, JSON.parse('{"data":{"__proto__":{"x":1}}}')) as { data: Record<string, unknown> };
    assert.equal(Object.getPrototypeOf(out.data), Object.prototype);
    assert.equal(JSON.stringify(out), '{"data":{"a":"1","__proto__":{"x":1}}}');
    assert.equal((out.data as { x?: unknown }).x, undefined, 'nothing is inherited from the patch');
  });

  it('a JSON patch "add /__proto__" adds a key and does not give the document a prototype', function () {
    const out = jsonPatch({}, [{ op: 'add', path: '/__proto__', value: { kind: 'Injected' } }]) as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(out), Object.prototype);
    assert.equal(out.kind, undefined, 'kind is not readable through the prototype');
    assert.equal(JSON.stringify(out), '{"__proto__":{"kind":"Injected"}}');
    assert.deepEqual(jsonPatch(out, [{ op: 'test', path: '/__proto__', value: { kind: 'Injected' } }]), out);
  });
});
