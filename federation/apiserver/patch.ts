// JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge patch (for the built-in
// kinds in strategic-merge.ts; other kinds reject it with 415 like Kubernetes does for custom resources).
import { ApiError } from './errors.js';
import { getOwn, setOwn } from './own-properties.js';
import { smpSchemaFor, strategicMerge, StrategicMergeError } from './strategic-merge.js';

export class PatchError extends Error {
  override name = 'PatchError';
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function clone<T>(v: T): T {
  return v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T);
}

export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return clone(patch);
  const result: Record<string, unknown> = isObject(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete result[k];
    else setOwn(result, k, mergePatch(getOwn(result, k), v));
  }
  return result;
}

/** Strategic merge patch using the merge keys of the target's kind; kinds without a schema get 415. */
export function strategicMergePatch(target: unknown, patch: unknown): unknown {
  const keys = smpSchemaFor(target);
  if (!keys) {
    throw new ApiError(
      415,
      'UnsupportedMediaType',
      'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml',
    );
  }
  try {
    return strategicMerge(target, patch, keys);
  } catch (err) {
    if (err instanceof StrategicMergeError) throw new PatchError(err.message);
    throw err;
  }
}

export interface JsonPatchOp {
  op: 'add' | 'remove' | 'replace' | 'move' | 'copy' | 'test';
  path: string;
  from?: string;
  value?: unknown;
}

export function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new PatchError(`invalid JSON pointer "${pointer}"`);
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function arrayIndex(arr: unknown[], token: string, forAdd: boolean): number {
  if (token === '-' && forAdd) return arr.length;
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw new PatchError(`invalid array index "${token}"`);
  const i = Number(token);
  if (i > arr.length || (!forAdd && i === arr.length)) throw new PatchError(`array index ${i} out of bounds`);
  return i;
}

function parentOf(doc: unknown, tokens: string[]): { parent: unknown; last: string } {
  let cur: unknown = doc;
  for (const t of tokens.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[arrayIndex(cur, t, false)];
    else if (isObject(cur) && Object.prototype.hasOwnProperty.call(cur, t)) cur = cur[t];
    else throw new PatchError(`path not found: /${tokens.join('/')}`);
  }
  return { parent: cur, last: tokens[tokens.length - 1]! };
}

function getAt(doc: unknown, tokens: string[]): unknown {
  if (tokens.length === 0) return doc;
  const { parent, last } = parentOf(doc, tokens);
  if (Array.isArray(parent)) return parent[arrayIndex(parent, last, false)];
  if (isObject(parent) && Object.prototype.hasOwnProperty.call(parent, last)) return parent[last];
  throw new PatchError(`path not found: /${tokens.join('/')}`);
}

function addAt(doc: unknown, tokens: string[], value: unknown): unknown {
  if (tokens.length === 0) return value;
  const { parent, last } = parentOf(doc, tokens);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, last, true), 0, value);
  else if (isObject(parent)) setOwn(parent, last, value);
  else throw new PatchError(`cannot add to a non-container at /${tokens.join('/')}`);
  return doc;
}

function removeAt(doc: unknown, tokens: string[]): unknown {
  if (tokens.length === 0) throw new PatchError('cannot remove the whole document');
  const { parent, last } = parentOf(doc, tokens);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, last, false), 1);
  else if (isObject(parent) && Object.prototype.hasOwnProperty.call(parent, last)) delete parent[last];
  else throw new PatchError(`path not found: /${tokens.join('/')}`);
  return doc;
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && deepEqual(a[k], b[k]));
  }
  return false;
}

export function jsonPatch(target: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw new PatchError('a JSON patch must be an array of operations');
  let doc = clone(target);
  for (const raw of ops) {
    if (!isObject(raw) || typeof raw.op !== 'string' || typeof raw.path !== 'string') throw new PatchError('each JSON patch operation needs "op" and "path"');
    const op = raw as unknown as JsonPatchOp;
    const path = parsePointer(op.path);
    switch (op.op) {
      case 'add':
        if (!('value' in raw)) throw new PatchError('"add" needs a value');
        doc = addAt(doc, path, clone(op.value as Json));
        break;
      case 'remove':
        doc = removeAt(doc, path);
        break;
      case 'replace':
        if (!('value' in raw)) throw new PatchError('"replace" needs a value');
        getAt(doc, path);
        doc = path.length === 0 ? clone(op.value) : addAt(removeAt(doc, path), path, clone(op.value as Json));
        break;
      case 'move': {
        if (typeof op.from !== 'string') throw new PatchError('"move" needs "from"');
        const from = parsePointer(op.from);
        const value = getAt(doc, from);
        doc = addAt(removeAt(doc, from), path, value);
        break;
      }
      case 'copy': {
        if (typeof op.from !== 'string') throw new PatchError('"copy" needs "from"');
        doc = addAt(doc, path, clone(getAt(doc, parsePointer(op.from))));
        break;
      }
      case 'test':
        if (!deepEqual(getAt(doc, path), op.value)) throw new PatchError(`test operation failed at ${op.path}`);
        break;
      default:
        throw new PatchError(`unknown JSON patch operation "${String(raw.op)}"`);
    }
  }
  return doc;
}

export const PATCH_TYPES = {
  'application/merge-patch+json': mergePatch,
  'application/strategic-merge-patch+json': strategicMergePatch,
  'application/json-patch+json': jsonPatch,
} as const;

export type PatchType = keyof typeof PATCH_TYPES;

export function applyPatch(type: string, target: unknown, patch: unknown): unknown {
  const fn = (PATCH_TYPES as Record<string, (t: unknown, p: unknown) => unknown>)[type];
  if (!fn) throw new PatchError(`unsupported patch type ${type}`);
  return fn(target, patch);
}
