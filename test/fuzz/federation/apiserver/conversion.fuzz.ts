// Fuzzes the validation of conversion webhook responses (federation/apiserver/conversion.ts,
// checkConversionResponse): a correct ConversionReview is accepted as is; every broken one (wrong
// uid, apiVersion or kind, a count mismatch, a non-object, changed metadata, a missing or failed
// result, garbage, deep nesting) is a 500 InternalError ApiError, never accepted, never untyped.
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { MAX_BODY_DEPTH } from '../../../../federation/apiserver/body.js';
import { checkConversionResponse, type ConversionRequest } from '../../../../federation/apiserver/conversion.js';
import { ApiError } from '../../../../federation/apiserver/errors.js';
import type { KubeObject } from '../../../../federation/apiserver/storage.js';
import { fuzzTarget, jsonArb, TRICKY_KEYS, typedOrValue } from '../../support.js';

const FROM = 'example.com/v1';
const TO = 'example.com/v2';

const labelsArb = fc.option(fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 3 }), { nil: undefined });
const objectArb: fc.Arbitrary<KubeObject> = fc
  .record({ name: fc.string({ minLength: 1, maxLength: 8 }), namespace: fc.option(fc.string({ maxLength: 5 }), { nil: undefined }), uid: fc.uuid(), labels: labelsArb, spec: jsonArb([], [], 3) })
  .map(({ name, namespace, uid, labels, spec }) => ({
    apiVersion: FROM,
    kind: 'Widget',
    metadata: { name, ...(namespace === undefined ? {} : { namespace }), uid, resourceVersion: '7', ...(labels ? { labels } : {}) },
    spec,
  }));

const requestArb: fc.Arbitrary<ConversionRequest> = fc.record({ uid: fc.uuid(), desiredAPIVersion: fc.constant(TO), objects: fc.array(objectArb, { minLength: 1, maxLength: 3 }) });

type Review = { apiVersion: string; kind: string; response: { uid: string; result: Record<string, unknown>; convertedObjects: Array<Record<string, unknown>> } };

/** What a correct webhook answers: each object at the desired version, labels and annotations its own to change. */
function goodReview(request: ConversionRequest, newLabels: Record<string, string> | undefined): Review {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'ConversionReview',
    response: {
      uid: request.uid,
      result: { status: 'Success' },
      convertedObjects: request.objects.map((o) => ({ ...o, apiVersion: request.desiredAPIVersion, metadata: { ...o.metadata, ...(newLabels ? { labels: newLabels, annotations: newLabels } : {}) }, spec: { converted: o.spec } })),
    },
  };
}

const weird = fc.oneof(fc.constant(null), fc.constant(undefined), fc.integer(), fc.string({ maxLength: 5 }), fc.constant([]), fc.constant({}), fc.constantFrom(...TRICKY_KEYS).map((k) => JSON.parse(`{${JSON.stringify(k)}: 1}`) as unknown));

/** Ways to break a good review; each one must make it unacceptable. */
const breakArb: fc.Arbitrary<(r: Review, index: number) => unknown> = fc.oneof(
  fc.constant((r: Review) => ({ ...r, response: { ...r.response, uid: `${r.response.uid}x` } })),
  weird.map((v) => (r: Review) => ({ ...r, response: { ...r.response, uid: v } })),
  weird.map((v) => (r: Review) => ({ ...r, kind: v })),
  weird.map((v) => (r: Review) => ({ ...r, response: v })),
  weird.map((v) => (r: Review) => ({ ...r, response: { ...r.response, result: v } })),
  fc.oneof(weird, fc.constantFrom('Failure', 'success', '')).map((v) => (r: Review) => ({ ...r, response: { ...r.response, result: { status: v, message: 'm' } } })),
  weird.map((v) => (r: Review) => ({ ...r, response: { ...r.response, convertedObjects: v } })),
  fc.constant((r: Review) => ({ ...r, response: { ...r.response, convertedObjects: r.response.convertedObjects.slice(1) } })),
  fc.constant((r: Review) => ({ ...r, response: { ...r.response, convertedObjects: [...r.response.convertedObjects, r.response.convertedObjects[0]] } })),
  ...(['apiVersion', 'kind', 'metadata'] as const).map((field) =>
    fc.oneof(weird, fc.constant(FROM)).map((v) => (r: Review, i: number) => withObject(r, i, (o) => ({ ...o, [field]: v }))),
  ),
  weird.map((v) => (r: Review, i: number) => withObject(r, i, () => v)),
  fc.tuple(fc.constantFrom('name', 'namespace', 'uid', 'resourceVersion', 'generation', ...TRICKY_KEYS), fc.oneof(weird, fc.constant('changed'))).map(([field, v]) => (r: Review, i: number) =>
    withObject(r, i, (o) => {
      const metadata = { ...(o.metadata as Record<string, unknown>) };
      Object.defineProperty(metadata, field, { value: v ?? 'changed', enumerable: true, configurable: true, writable: true });
      return { ...o, metadata };
    }),
  ),
  fc.tuple(fc.constantFrom('labels', 'annotations'), fc.oneof(fc.constant({ a: 1 }), fc.constant({ a: null }), fc.constant('x'), fc.constant([]))).map(([field, v]) => (r: Review, i: number) =>
    withObject(r, i, (o) => ({ ...o, metadata: { ...(o.metadata as object), [field]: v } })),
  ),
  fc.integer({ min: 1, max: 40 }).map((d) => () => JSON.parse('['.repeat(d) + ']'.repeat(d))),
);

function withObject(r: Review, i: number, change: (o: Record<string, unknown>) => unknown): Review {
  const convertedObjects = [...r.response.convertedObjects];
  convertedObjects[i % convertedObjects.length] = change(convertedObjects[i % convertedObjects.length]!) as Record<string, unknown>;
  return { ...r, response: { ...r.response, convertedObjects } };
}

function check(text: string, request: ConversionRequest): { value: KubeObject[] } | { error: Error } {
  const result = typedOrValue(() => checkConversionResponse('widgets.example.com', text, request), ApiError);
  if ('error' in result) {
    assert.equal((result.error as ApiError).code, 500);
    assert.equal((result.error as ApiError).reason, 'InternalError');
  }
  return result;
}

/** What acceptance promises: the right count, version and kind, and metadata unchanged but for labels and annotations. */
function assertAcceptable(converted: KubeObject[], request: ConversionRequest): void {
  assert.equal(converted.length, request.objects.length);
  converted.forEach((c, i) => {
    const orig = request.objects[i]!;
    assert.equal(c.apiVersion, request.desiredAPIVersion);
    assert.equal(c.kind, orig.kind);
    const strip = ({ labels: _l, annotations: _a, ...rest }: Record<string, unknown>) => rest;
    assert.deepEqual(strip(c.metadata), strip(orig.metadata));
  });
}

fuzzTarget('federation/apiserver/conversion', {
  'a correct ConversionReview is accepted with the converted objects in order': {
    runs: 8_000,
    property: () =>
      fc.property(requestArb, labelsArb, (request, labels) => {
        const review = goodReview(request, labels);
        assert.deepEqual(checkConversionResponse('widgets.example.com', JSON.stringify(review), request), review.response.convertedObjects);
      }),
  },
  'every broken ConversionReview is a 500 InternalError, never accepted': {
    runs: 25_000,
    property: () =>
      fc.property(requestArb, labelsArb, breakArb, fc.nat(), (request, labels, breakIt, index) => {
        const text = JSON.stringify(breakIt(goodReview(request, labels), index)) ?? 'undefined';
        const result = check(text, request);
        assert.ok('error' in result, `accepted ${text}`);
      }),
  },
  'garbage, truncated and deeply nested responses: a 500 InternalError, or acceptable objects': {
    runs: 12_000,
    property: () =>
      fc.property(
        requestArb,
        labelsArb,
        fc.oneof(
          fc.nat().map((cut) => (good: string) => good.slice(0, cut % (good.length + 1))),
          jsonArb(['kind', 'response', 'uid', 'result', 'status', 'convertedObjects', 'metadata', 'apiVersion'], [fc.constantFrom('ConversionReview', 'Success', TO)], 4).map((v) => () => JSON.stringify(v) ?? ''),
          fc.integer({ min: MAX_BODY_DEPTH - 5, max: 3 * MAX_BODY_DEPTH }).map((d) => (good: string) => `{"kind":"ConversionReview","response":${'['.repeat(d)}${']'.repeat(d)},"x":${good}}`),
          // Deep inside a converted object's metadata, where the comparison recurses.
          fc.integer({ min: MAX_BODY_DEPTH - 5, max: 10 * MAX_BODY_DEPTH }).map((d) => (good: string) => good.replace('"metadata":{', `"metadata":{"deep":${'['.repeat(d)}${']'.repeat(d)},`)),
          fc.string({ maxLength: 30, unit: 'binary' }).map((s) => () => s),
        ),
        (request, labels, make) => {
          const result = check(make(JSON.stringify(goodReview(request, labels))), request);
          if ('value' in result) assertAcceptable(result.value, request);
        },
      ),
  },
});
