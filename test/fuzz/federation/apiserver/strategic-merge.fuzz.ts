// Fuzzes strategic merge patch (federation/apiserver/strategic-merge.ts) with the merge keys of
// every built-in kind and patches full of directives ($patch, $retainKeys, $setElementOrder/…,
// $deleteFromPrimitiveList/…): a plain JSON result without directives, or StrategicMergeError.
// Without directives and merge keys it is exactly a JSON merge patch.
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { mergePatch } from '../../../../federation/apiserver/patch.js';
import { SMP_SCHEMA, strategicMerge, StrategicMergeError } from '../../../../federation/apiserver/strategic-merge.js';
import { fuzzTarget, jsonArb, typedOrValue } from '../../support.js';
import { assertPlainJson, KUBE_KEYS, targetArb } from '../../arbitraries.js';

const DIRECTIVE_KEYS = [...KUBE_KEYS, '$patch', '$retainKeys', '$setElementOrder/containers', '$setElementOrder/ports', '$deleteFromPrimitiveList/args', 'containers', 'ports', 'env', 'volumes', 'ownerReferences', 'uid'];
const directiveValues = [fc.constantFrom('replace', 'merge', 'delete', 'other'), fc.constant({ $patch: 'delete', name: 'a' }), fc.constantFrom('a', 'b', 80)];
const patchArb = jsonArb(DIRECTIVE_KEYS, directiveValues, 5);

function hasDollarKey(value: unknown): boolean {
  const stack = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v !== 'object' || v === null) continue;
    if (!Array.isArray(v) && Object.keys(v).some((k) => k.startsWith('$'))) return true;
    stack.push(...Object.values(v));
  }
  return false;
}

fuzzTarget('federation/apiserver/strategic-merge', {
  'any patch under any schema: plain JSON without directives, or StrategicMergeError': {
    runs: 80_000,
    property: () =>
      fc.property(targetArb, patchArb, fc.constantFrom(...Object.values(SMP_SCHEMA)), (target, patch, keys) => {
        const result = typedOrValue(() => strategicMerge(target, patch, keys), StrategicMergeError);
        if (!('value' in result)) return;
        assertPlainJson(result.value);
        if (!hasDollarKey(target)) assert.ok(!hasDollarKey(result.value), `directives left in ${JSON.stringify(result.value)}`);
      }),
  },
  'without directives or merge keys it is a JSON merge patch': {
    runs: 60_000,
    property: () =>
      fc.property(targetArb, jsonArb(KUBE_KEYS).filter((p) => typeof p === 'object' && p !== null && !Array.isArray(p) && !hasDollarKey(p)), (target, patch) => {
        assert.deepEqual(strategicMerge(target, patch, {}), mergePatch(target, patch));
      }),
  },
});
