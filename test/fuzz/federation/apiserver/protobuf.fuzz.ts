// Fuzzes the protobuf body decoder (federation/apiserver/protobuf.ts): ConfigMaps, Secrets and
// Namespaces encoded the way kubectl does decode to their JSON form, keys of any spelling included;
// random and mutated bytes give an object or a ProtobufError (a 415 through decodeObjectBody).
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { decodeObjectBody } from '../../../../federation/apiserver/body.js';
import { ApiError } from '../../../../federation/apiserver/errors.js';
import { decodeProtobufObject, PROTOBUF_MEDIA_TYPE, ProtobufError } from '../../../../federation/apiserver/protobuf.js';
import { fuzzTarget, keyArb, objectFromEntries, typedOrValue } from '../../support.js';

function varint(n: number): Buffer {
  const out: number[] = [];
  do {
    out.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
    n >>>= 7;
  } while (n > 0);
  return Buffer.from(out);
}

const bytesField = (no: number, payload: Buffer | string): Buffer => {
  const data = Buffer.from(payload);
  return Buffer.concat([varint((no << 3) | 2), varint(data.length), data]);
};
const entry = (no: number, key: string, value: Buffer | string): Buffer => bytesField(no, Buffer.concat([bytesField(1, key), bytesField(2, value)]));

interface Meta {
  name: string;
  namespace: string;
  labels: Array<[string, string]>;
  annotations: Array<[string, string]>;
}

function encodeMeta(m: Meta): Buffer {
  return Buffer.concat([bytesField(1, m.name), bytesField(3, m.namespace), ...m.labels.map(([k, v]) => entry(11, k, v)), ...m.annotations.map(([k, v]) => entry(12, k, v))]);
}

function envelope(kind: string, raw: Buffer): Buffer {
  return Buffer.concat([Buffer.from('k8s\0', 'binary'), bytesField(1, Buffer.concat([bytesField(1, 'v1'), bytesField(2, kind)])), bytesField(2, raw)]);
}

/** The decoder keeps the last value of a repeated map key, as protobuf maps do. */
function mapOf(entries: Array<[string, string]>): Record<string, string> {
  return objectFromEntries(entries) as Record<string, string>;
}

function expectedMeta(m: Meta): Record<string, unknown> {
  const meta: Record<string, unknown> = {};
  if (m.name) meta.name = m.name;
  if (m.namespace) meta.namespace = m.namespace;
  if (m.labels.length) meta.labels = mapOf(m.labels);
  if (m.annotations.length) meta.annotations = mapOf(m.annotations);
  return meta;
}

const textArb = fc.string({ maxLength: 10, unit: 'grapheme' });
const pairsArb = fc.array(fc.tuple(keyArb(), textArb), { maxLength: 4 });
const metaArb: fc.Arbitrary<Meta> = fc.record({ name: textArb, namespace: textArb, labels: pairsArb, annotations: pairsArb });

const validArb = fc.oneof(
  metaArb.map((m) => ({ bytes: envelope('Namespace', bytesField(1, encodeMeta(m))), expected: { apiVersion: 'v1', kind: 'Namespace', metadata: expectedMeta(m) } })),
  fc.tuple(metaArb, pairsArb).map(([m, data]) => ({
    bytes: envelope('ConfigMap', Buffer.concat([bytesField(1, encodeMeta(m)), ...data.map(([k, v]) => entry(2, k, v))])),
    expected: { apiVersion: 'v1', kind: 'ConfigMap', metadata: expectedMeta(m), ...(data.length ? { data: mapOf(data) } : {}) },
  })),
  fc.tuple(metaArb, fc.array(fc.tuple(keyArb(), fc.uint8Array({ maxLength: 12 })), { maxLength: 4 })).map(([m, data]) => ({
    bytes: envelope('Secret', Buffer.concat([bytesField(1, encodeMeta(m)), ...data.map(([k, v]) => entry(2, k, Buffer.from(v)))])),
    expected: { apiVersion: 'v1', kind: 'Secret', metadata: expectedMeta(m), ...(data.length ? { data: mapOf(data.map(([k, v]) => [k, Buffer.from(v).toString('base64')])) } : {}) },
  })),
);

fuzzTarget('federation/apiserver/protobuf', {
  'Namespaces, ConfigMaps and Secrets decode to their JSON form, keys of any spelling kept': {
    runs: 15_000,
    property: () =>
      fc.property(validArb, ({ bytes, expected }) => {
        assert.equal(JSON.stringify(decodeProtobufObject(bytes)), JSON.stringify(expected));
      }),
  },
  'mutated and random bytes: an object or ProtobufError, a 415 Status through decodeObjectBody': {
    runs: 25_000,
    property: () =>
      fc.property(validArb, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat(), fc.uint8Array({ maxLength: 80 }), ({ bytes }, edits, cut, noise) => {
        const mutated = Buffer.from(bytes);
        for (const [at, byte] of edits) mutated[4 + (at % Math.max(1, mutated.length - 4))] = byte;
        for (const body of [mutated, mutated.subarray(0, cut % (mutated.length + 1)), Buffer.concat([Buffer.from('k8s\0', 'binary'), noise])]) {
          typedOrValue(() => decodeProtobufObject(body), ProtobufError);
          const result = typedOrValue(() => decodeObjectBody(PROTOBUF_MEDIA_TYPE, body), ApiError);
          if ('error' in result) assert.equal((result.error as ApiError).code, 415);
        }
      }),
  },
});
