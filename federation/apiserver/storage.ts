// Mapping between API objects and store keys/values. Keys:
//   /registry/<group or core>/<plural>/<namespace>/<name>   (cluster-scoped: no namespace segment)
// Values are the object as JSON without metadata.resourceVersion: that is the store's modRevision.
import type { KeyValue } from '../store/types.js';
import type { ResourceType } from './types.js';

export type KubeObject = {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  [k: string]: unknown;
};

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  [k: string]: unknown;
}

function groupSegment(t: ResourceType): string {
  return t.group === '' ? 'core' : t.group;
}

/** Prefix of every key of the type (namespace given: of that namespace only). Ends with '/'. */
export function typePrefix(t: ResourceType, namespace?: string): string {
  const base = `/registry/${groupSegment(t)}/${t.plural}/`;
  return t.namespaced && namespace ? `${base}${namespace}/` : base;
}

export function objectKey(t: ResourceType, namespace: string | undefined, name: string): string {
  return t.namespaced ? `${typePrefix(t)}${namespace}/${name}` : `${typePrefix(t)}${name}`;
}

export function encodeObject(obj: KubeObject): Buffer {
  const { resourceVersion: _rv, ...metadata } = obj.metadata;
  void _rv;
  return Buffer.from(JSON.stringify({ ...obj, metadata }));
}

/** The object of a key-value, with resourceVersion = `revision` (default: the kv's modRevision). */
export function decodeObject(kv: KeyValue, revision = kv.modRevision): KubeObject {
  const obj = JSON.parse(kv.value.toString('utf8')) as KubeObject;
  obj.metadata = { ...obj.metadata, resourceVersion: String(revision) };
  return obj;
}

/** Parses a resourceVersion string; undefined for absent/empty, NaN-free or throws. */
export function parseResourceVersion(rv: string | undefined | null): number | undefined {
  if (rv === undefined || rv === null || rv === '') return undefined;
  if (!/^[0-9]+$/.test(rv)) throw new RangeError(`invalid resource version "${rv}"`);
  return Number(rv);
}

export interface ContinueToken {
  rv: number;
  start: string;
}

export function encodeContinue(token: ContinueToken): string {
  return Buffer.from(JSON.stringify(token)).toString('base64url');
}

export function decodeContinue(text: string): ContinueToken {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    throw new RangeError('invalid continue token');
  }
  const t = parsed as Partial<ContinueToken>;
  if (typeof t !== 'object' || t === null || typeof t.rv !== 'number' || typeof t.start !== 'string' || !Number.isInteger(t.rv) || t.rv < 0) {
    throw new RangeError('invalid continue token');
  }
  return { rv: t.rv, start: t.start };
}
