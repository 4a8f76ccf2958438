// Fuzzes the patch types (federation/apiserver/patch.ts) as the API server applies them: any
// target and patch give a result made of plain JSON objects, or PatchError / a 415 ApiError. Merge
// patches obey RFC 7386's algebra (a diff applied to its source gives its destination, {} changes
// nothing, applying twice is applying once); JSON patches find what they added.
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { ApiError } from '../../../../federation/apiserver/errors.js';
import { applyPatch, jsonPatch, mergePatch, PATCH_TYPES, PatchError } from '../../../../federation/apiserver/patch.js';
import { fuzzTarget, jsonArb, keyArb, objectFromEntries, typedOrValue } from '../../support.js';
import { assertPlainJson, KUBE_KEYS, targetArb } from '../../arbitraries.js';

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** JSON values whose objects hold no null (merge patch cannot express a null, it deletes). */
const nullFreeArb = jsonArb(KUBE_KEYS).map(function dropNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(dropNulls);
  if (!isObject(v)) return v;
  return objectFromEntries(Object.entries(v).filter(([, x]) => x !== null).map(([k, x]) => [k, dropNulls(x)]));
});

/** The merge patch that turns `from` into `to` (RFC 7386 section 3, in reverse). */
function diff(from: unknown, to: unknown): unknown {
  if (!isObject(from) || !isObject(to)) return to;
  const patch: Array<[string, unknown]> = [];
  for (const k of Object.keys(from)) if (!Object.hasOwn(to, k)) patch.push([k, null]);
  for (const [k, v] of Object.entries(to)) {
    if (!Object.hasOwn(from, k)) patch.push([k, v]);
    else if (JSON.stringify(from[k]) !== JSON.stringify(v)) patch.push([k, isObject(from[k]) && isObject(v) ? diff(from[k], v) : v]);
  }
  return objectFromEntries(patch);
}

const pointerArb = fc.array(fc.oneof(keyArb(KUBE_KEYS), fc.constantFrom('0', '1', '-', '01', '~0', '~1', 'a/b')), { maxLength: 4 }).map((tokens) => tokens.map((t) => `/${t.replace(/~/g, '~0').replace(/\//g, '~1')}`).join(''));
const opArb = fc.record(
  {
    op: fc.constantFrom('add', 'remove', 'replace', 'move', 'copy', 'test', 'nope'),
    path: fc.oneof(pointerArb, fc.string({ maxLength: 6 })),
    from: pointerArb,
    value: jsonArb(KUBE_KEYS, [], 3),
  },
  { requiredKeys: ['op', 'path'] },
);

/** A pointer to a value that exists in `doc` (any depth), chosen by `picks`. */
function existingPointer(doc: unknown, picks: number[]): string {
  let pointer = '';
  let cur = doc;
  for (const pick of picks) {
    const keys = Array.isArray(cur) ? cur.map((_, i) => String(i)) : isObject(cur) ? Object.keys(cur) : [];
    if (keys.length === 0) break;
    const key = keys[pick % keys.length]!;
    pointer += `/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;
    cur = (cur as Obj)[key];
  }
  return pointer;
}

fuzzTarget('federation/apiserver/patch', {
  'any patch of any type: plain JSON, or PatchError / 415': {
    runs: 60_000,
    property: () =>
      fc.property(fc.constantFrom(...Object.keys(PATCH_TYPES), 'application/apply-patch+yaml'), targetArb, fc.oneof(jsonArb(KUBE_KEYS), fc.array(opArb, { maxLength: 4 })), (type, target, patch) => {
        const before = JSON.stringify(target);
        const result = typedOrValue(() => applyPatch(type, target, patch), PatchError, ApiError);
        if ('error' in result && result.error instanceof ApiError) assert.equal(result.error.code, 415);
        if ('value' in result) assertPlainJson(result.value);
        assert.equal(JSON.stringify(target), before, 'the target is not modified');
      }),
  },
  'merge patch: the diff of two objects turns the first into the second': {
    runs: 40_000,
    property: () =>
      fc.property(targetArb, nullFreeArb, (from, extra) => {
        const to = isObject(extra) ? extra : extra === null ? {} : { value: extra };
        assert.deepEqual(mergePatch(from, diff(from, to)), to);
      }),
  },
  'merge patch: {} is the identity and applying a patch twice is applying it once': {
    runs: 40_000,
    property: () =>
      fc.property(targetArb, jsonArb(KUBE_KEYS), (target, patch) => {
        assert.deepEqual(mergePatch(target, {}), target);
        const once = mergePatch(target, patch);
        assert.deepEqual(mergePatch(once, patch), once);
      }),
  },
  'JSON patch: a value put at an existing path is found there by "test"; no-op patches change nothing': {
    runs: 40_000,
    property: () =>
      fc.property(targetArb, fc.array(fc.nat(), { maxLength: 4 }), jsonArb(KUBE_KEYS, [], 3), (target, picks, value) => {
        assert.deepEqual(jsonPatch(target, []), target);
        const path = existingPointer(target, picks);
        if (path === '') return;
        const replaced = jsonPatch(target, [{ op: 'replace', path, value }]);
        assert.deepEqual(jsonPatch(replaced, [{ op: 'test', path, value }]), replaced);
        assertPlainJson(replaced);
        assert.deepEqual(jsonPatch(target, [{ op: 'move', from: path, path }]), target);
      }),
  },
});
