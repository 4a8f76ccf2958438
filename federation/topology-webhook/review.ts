// A ConversionReview (apiextensions.k8s.io/v1) answered by the topology conversion (pure): the uid
// echoed, the objects converted in order with apiVersion = desiredAPIVersion, or — when any object
// cannot be converted — result Failed with a message naming it and no objects (the API server then
// answers its client with a 500 and writes nothing).
import type { KubeObject } from '../apiserver/storage.js';
import { convertObject, TopologyConversionError } from './convert.js';

export interface ReviewAnswer {
  /** 200 for any ConversionReview (a failed conversion is a Failed result), 400 for anything else. */
  status: 200 | 400;
  body: unknown;
  /** Objects in the review (0 for a bad request). */
  objects: number;
  outcome: 'success' | 'failed' | 'bad_request';
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function badRequest(message: string): ReviewAnswer {
  return { status: 400, body: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'BadRequest', code: 400, message }, objects: 0, outcome: 'bad_request' };
}

export function answerReview(review: unknown): ReviewAnswer {
  if (!isObject(review) || review.kind !== 'ConversionReview' || review.apiVersion !== 'apiextensions.k8s.io/v1') return badRequest('expected a ConversionReview of apiextensions.k8s.io/v1');
  const request = review.request;
  if (!isObject(request) || typeof request.uid !== 'string' || request.uid === '') return badRequest('the ConversionReview has no request uid');
  if (typeof request.desiredAPIVersion !== 'string' || !Array.isArray(request.objects)) return badRequest('the ConversionReview request needs desiredAPIVersion and objects');
  const { uid, desiredAPIVersion, objects } = request;
  const respond = (response: Record<string, unknown>, outcome: ReviewAnswer['outcome']): ReviewAnswer => ({
    status: 200,
    body: { apiVersion: 'apiextensions.k8s.io/v1', kind: 'ConversionReview', response: { uid, ...response } },
    objects: objects.length,
    outcome,
  });
  const converted: KubeObject[] = [];
  for (const [i, obj] of objects.entries()) {
    try {
      converted.push(convertObject(obj as KubeObject, desiredAPIVersion));
    } catch (err) {
      if (!(err instanceof TopologyConversionError)) throw err;
      const o = obj as Partial<KubeObject> | null;
      const name = isObject(o) && isObject(o.metadata) ? [o.metadata.namespace, o.metadata.name].filter(Boolean).join('/') : '';
      return respond({ result: { status: 'Failed', message: `object ${i}${name ? ` (${name})` : ''}: ${err.message}` }, convertedObjects: [] }, 'failed');
    }
  }
  return respond({ result: { status: 'Success' }, convertedObjects: converted }, 'success');
}
