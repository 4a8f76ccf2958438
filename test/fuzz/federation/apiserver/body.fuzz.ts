// Fuzzes request body decoding (federation/apiserver/body.ts): any bytes under any media type give
// a value no deeper than the nesting limit, or a 400/415 Status; JSON and YAML round-trip; and
// whatever decodes goes through every patch type without a stack overflow.
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import YAML from 'yaml';
import { decodeObjectBody, MAX_BODY_DEPTH, nestedDeeperThan } from '../../../../federation/apiserver/body.js';
import { ApiError } from '../../../../federation/apiserver/errors.js';
import { applyPatch, PATCH_TYPES, PatchError } from '../../../../federation/apiserver/patch.js';
import { PROTOBUF_MEDIA_TYPE } from '../../../../federation/apiserver/protobuf.js';
import { KUBE_KEYS } from '../../arbitraries.js';
import { fuzzTarget, jsonArb, typedOrValue } from '../../support.js';

const MEDIA_TYPES = ['application/json', '', 'application/yaml', PROTOBUF_MEDIA_TYPE, 'text/plain', 'application/json-patch+json'];

/** Text nested to a random depth with openers of JSON and YAML, closed or not. */
const nestedArb = fc
  .tuple(fc.integer({ min: 0, max: 3 * MAX_BODY_DEPTH }), fc.constantFrom('[', '{"a":', '- ', '{a: ', '[{"k":'), fc.boolean())
  .map(([depth, open, close]) => {
    const closer = open.startsWith('[{') ? '}]' : open.startsWith('[') ? ']' : open.startsWith('{') ? '}' : '';
    return open.repeat(depth) + '1' + (close ? closer.repeat(depth) : '');
  });

/** JSON or YAML text of a random value with a few bytes changed, random bytes, or deep nesting. */
const bodyArb: fc.Arbitrary<Buffer> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.tuple(jsonArb(KUBE_KEYS), fc.boolean(), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 })).map(([value, yaml, edits]) => {
      const bytes = Buffer.from(yaml ? YAML.stringify(value) : JSON.stringify(value) ?? 'null');
      for (const [at, byte] of edits) if (bytes.length > 0) bytes[at % bytes.length] = byte;
      return bytes;
    }),
  },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)) },
  { weight: 2, arbitrary: fc.string({ maxLength: 60, unit: fc.constantFrom(...'{}[]:,- \n"&*!|>?#%@`\'abc01'.split('')) }).map((s) => Buffer.from(s)) },
  { weight: 1, arbitrary: nestedArb.map((s) => Buffer.from(s)) },
);

function decode(type: string, body: Buffer): { value: unknown } | { error: Error } {
  const result = typedOrValue(() => decodeObjectBody(type, body), ApiError);
  if ('error' in result) assert.ok([400, 415].includes((result.error as ApiError).code), result.error.message);
  else assert.ok(!nestedDeeperThan(result.value, MAX_BODY_DEPTH), 'a decoded body is within the nesting limit');
  return result;
}

fuzzTarget('federation/apiserver/body', {
  'any bytes under any media type: a bounded value or a 400/415 Status': {
    runs: 20_000,
    property: () =>
      fc.property(fc.constantFrom(...MEDIA_TYPES), bodyArb, (type, body) => {
        decode(type, body);
      }),
  },
  'JSON bodies round-trip': {
    runs: 30_000,
    property: () =>
      fc.property(jsonArb(KUBE_KEYS), (value) => {
        assert.deepEqual(decodeObjectBody('application/json', Buffer.from(JSON.stringify(value))), JSON.parse(JSON.stringify(value)));
      }),
  },
  'YAML bodies round-trip': {
    runs: 20_000,
    property: () =>
      fc.property(jsonArb(KUBE_KEYS), (value) => {
        assert.deepEqual(decodeObjectBody('application/yaml', Buffer.from(YAML.stringify(value))), JSON.parse(JSON.stringify(value)));
      }),
  },
  'whatever decodes, however deep, goes through every patch type without a stack overflow': {
    runs: 3_000,
    property: () =>
      fc.property(nestedArb, fc.constantFrom(...Object.keys(PATCH_TYPES)), (text, patchType) => {
        const decoded = decode('application/json', Buffer.from(text));
        if (!('value' in decoded)) return;
        const target = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' }, data: decoded.value };
        const patch = patchType === 'application/json-patch+json' ? [{ op: 'add', path: '/data', value: decoded.value }] : { data: decoded.value };
        typedOrValue(() => applyPatch(patchType, target, patch), PatchError, ApiError);
      }),
  },
});
