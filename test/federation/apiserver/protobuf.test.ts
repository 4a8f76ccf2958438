// Protobuf request bodies (protobuf.ts): regression tests found by the fuzzer
// (test/fuzz/federation/apiserver/protobuf.fuzz.ts); decoding itself is tested in pure.test.ts.
import { strict as assert } from 'node:assert';
import { decodeProtobufObject } from '../../../federation/apiserver/protobuf.js';

describe('apiserver: protobuf.ts fuzz regressions', function () {
  it('keeps a "__proto__" annotation or data key instead of dropping it', function () {
    // The fuzzer's minimal counterexample: a Namespace with the annotation "__proto__": "".
    const namespace = Buffer.from([107, 56, 115, 0, 10, 15, 10, 2, 118, 49, 18, 9, 78, 97, 109, 101, 115, 112, 97, 99, 101, 18, 21, 10, 19, 10, 0, 26, 0, 98, 13, 10, 9, 95, 95, 112, 114, 111, 116, 111, 95, 95, 18, 0]);
    const decoded = decodeProtobufObject(namespace) as { metadata: { annotations: Record<string, string> } };
    assert.equal(JSON.stringify(decoded), '{"apiVersion":"v1","kind":"Namespace","metadata":{"annotations":{"__proto__":""}}}');
    assert.equal(Object.getPrototypeOf(decoded.metadata.annotations), Object.prototype);
  });
});
