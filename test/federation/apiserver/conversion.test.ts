// Validation of conversion webhook responses (checkConversionResponse, pure). The webhook itself is
// tested over real TLS in crd.test.ts; these are the fuzzer's regressions
// (test/fuzz/federation/apiserver/conversion.fuzz.ts).
import { strict as assert } from 'node:assert';
import { checkConversionResponse, type ConversionRequest } from '../../../federation/apiserver/conversion.js';
import { ApiError } from '../../../federation/apiserver/errors.js';

const request: ConversionRequest = {
  uid: 'u-1',
  desiredAPIVersion: 'example.com/v2',
  objects: [{ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w', uid: 'o-1' }, spec: {} }],
};
const review = (response: unknown): string => JSON.stringify({ apiVersion: 'apiextensions.k8s.io/v1', kind: 'ConversionReview', response });
const good = { uid: 'u-1', result: { status: 'Success' }, convertedObjects: [{ apiVersion: 'example.com/v2', kind: 'Widget', metadata: { name: 'w', uid: 'o-1', labels: { a: 'b' } }, spec: { x: 1 } }] };
const isInternalError = (pattern: RegExp) => (e: unknown): boolean => e instanceof ApiError && e.code === 500 && e.reason === 'InternalError' && pattern.test(e.message);

describe('apiserver: conversion webhook responses', function () {
  it('accepts a correct review: the converted objects, labels changed', function () {
    assert.deepEqual(checkConversionResponse('widgets.example.com', review(good), request), good.convertedObjects);
  });

  it('fuzz regression: a result.status object with a "toString" key is a 500, not a TypeError', function () {
    // String() of {"toString": 1} threw "Cannot convert object to primitive value".
    assert.throws(() => checkConversionResponse('widgets.example.com', review({ ...good, result: { status: { toString: 1 } } }), request), isInternalError(/reported a status of type object/));
  });

  it('fuzz regression: metadata nested 5000 deep is a 500, not a stack overflow in the comparison', function () {
    const deep = '['.repeat(5000) + ']'.repeat(5000);
    const text = review(good).replace('"metadata":{', `"metadata":{"deep":${deep},`);
    assert.throws(() => checkConversionResponse('widgets.example.com', text, request), isInternalError(/nests deeper than/));
  });
});
