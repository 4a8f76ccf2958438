// Strategic merge patch (as Kubernetes' apimachinery strategicpatch), pure. The schema is a small
// table: "apiVersion/kind" → field path (dot-joined field names; list elements add no segment) →
// patch merge key. Lists not in the table are replaced; maps always merge recursively.
import { getOwn, setOwn } from './own-properties.js';

export class StrategicMergeError extends Error {
  override name = 'StrategicMergeError';
}

type Obj = Record<string, unknown>;
export type MergeKeys = Record<string, string>;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function clone<T>(v: T): T {
  return v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T);
}

function podSpec(prefix: string): MergeKeys {
  const out: MergeKeys = { [`${prefix}.volumes`]: 'name', [`${prefix}.imagePullSecrets`]: 'name' };
  for (const c of ['containers', 'initContainers', 'ephemeralContainers']) {
    const p = `${prefix}.${c}`;
    out[p] = 'name';
    out[`${p}.ports`] = 'containerPort';
    out[`${p}.env`] = 'name';
    out[`${p}.volumeMounts`] = 'mountPath';
    out[`${p}.volumeDevices`] = 'devicePath';
  }
  return out;
}

const META: MergeKeys = { 'metadata.ownerReferences': 'uid' };

/** Merge keys of the built-in types we serve; kinds missing here have no strategic schema. */
export const SMP_SCHEMA: Record<string, MergeKeys> = {
  'v1/Namespace': { ...META },
  'v1/ConfigMap': { ...META },
  'v1/Secret': { ...META },
  'v1/Service': { ...META, 'spec.ports': 'port' },
  'v1/ServiceAccount': { ...META, secrets: 'name', imagePullSecrets: 'name' },
  'apps/v1/Deployment': { ...META, ...podSpec('spec.template.spec'), 'status.conditions': 'type' },
};

export function smpSchemaFor(obj: unknown): MergeKeys | undefined {
  if (!isObject(obj) || typeof obj.apiVersion !== 'string' || typeof obj.kind !== 'string') return undefined;
  return SMP_SCHEMA[`${obj.apiVersion}/${obj.kind}`];
}

const SET_ORDER = '$setElementOrder/';
const DELETE_PRIMITIVE = '$deleteFromPrimitiveList/';

/** Removes every directive ($patch, $retainKeys, $setElementOrder/…, $deleteFromPrimitiveList/…). */
export function stripDirectives(v: unknown): unknown {
  if (Array.isArray(v)) return v.filter((e) => !(isObject(e) && e.$patch === 'delete')).map(stripDirectives);
  if (!isObject(v)) return v;
  const out: Obj = {};
  for (const [k, val] of Object.entries(v)) {
    if (k.startsWith('$')) continue;
    setOwn(out, k, stripDirectives(val));
  }
  return out;
}

function join(path: string, k: string): string {
  return path ? `${path}.${k}` : k;
}

/** Applies a strategic merge patch to `target` with the given merge keys. */
export function strategicMerge(target: unknown, patch: unknown, keys: MergeKeys): unknown {
  if (!isObject(patch)) throw new StrategicMergeError('a strategic merge patch must be a JSON object');
  const out = mergeMap(isObject(target) ? target : {}, patch, '', keys);
  if (out === undefined) throw new StrategicMergeError('$patch: delete of the whole object is not allowed');
  return out;
}

function mergeMap(original: Obj, patch: Obj, path: string, keys: MergeKeys): Obj | undefined {
  const directive = patch.$patch;
  if (directive !== undefined) {
    if (directive === 'replace') return stripDirectives(patch) as Obj;
    if (directive === 'delete') return undefined;
    // Not String(directive): a JSON object whose "toString" is data cannot be converted (TypeError).
    if (directive !== 'merge') throw new StrategicMergeError(`unknown $patch directive ${typeof directive === 'string' ? JSON.stringify(directive) : `of type ${typeof directive}`}`);
  }
  const result: Obj = clone(original);
  const orders: [string, unknown][] = [];
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith(DELETE_PRIMITIVE)) {
      const field = k.slice(DELETE_PRIMITIVE.length);
      if (!Array.isArray(v)) throw new StrategicMergeError(`${k} must be a list`);
      const list = getOwn(result, field);
      if (Array.isArray(list)) setOwn(result, field, list.filter((e) => !v.some((d) => d === e)));
    }
  }
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith(SET_ORDER)) {
      orders.push([k.slice(SET_ORDER.length), v]);
      continue;
    }
    if (k.startsWith('$')) continue;
    const p = join(path, k);
    const current = getOwn(result, k);
    if (v === null) {
      delete result[k];
    } else if (isObject(v)) {
      const merged = mergeMap(isObject(current) ? current : {}, v, p, keys);
      if (merged === undefined) delete result[k];
      else setOwn(result, k, merged);
    } else if (Array.isArray(v)) {
      const mergeKey = getOwn(keys, p) as string | undefined;
      setOwn(result, k, mergeKey ? mergeList(Array.isArray(current) ? current : [], v, mergeKey, p, keys) : stripDirectives(v));
    } else {
      setOwn(result, k, v);
    }
  }
  for (const [field, order] of orders) {
    if (!Array.isArray(order)) throw new StrategicMergeError(`${SET_ORDER}${field} must be a list`);
    const list = getOwn(result, field);
    if (Array.isArray(list)) setOwn(result, field, applyOrder(list, order, getOwn(keys, join(path, field)) as string | undefined));
  }
  if (patch.$retainKeys !== undefined) {
    const retain = patch.$retainKeys;
    if (!Array.isArray(retain)) throw new StrategicMergeError('$retainKeys must be a list');
    for (const k of Object.keys(result)) if (!retain.includes(k)) delete result[k];
  }
  return result;
}

function keyOf(e: unknown, mergeKey: string): unknown {
  return isObject(e) ? e[mergeKey] : undefined;
}

function sameKey(a: unknown, b: unknown): boolean {
  return a !== undefined && a !== null && a === b;
}

function mergeList(original: unknown[], patch: unknown[], mergeKey: string, path: string, keys: MergeKeys): unknown[] {
  if (patch.some((e) => isObject(e) && e.$patch === 'replace')) {
    return patch.filter((e) => !(isObject(e) && e.$patch === 'replace')).map(stripDirectives);
  }
  const result = clone(original);
  for (const el of patch) {
    if (!isObject(el)) {
      if (!result.some((e) => e === el)) result.push(el);
      continue;
    }
    const key = el[mergeKey];
    if (el.$patch === 'delete') {
      for (let i = result.length - 1; i >= 0; i--) if (sameKey(keyOf(result[i], mergeKey), key)) result.splice(i, 1);
      continue;
    }
    if (key === undefined || key === null) throw new StrategicMergeError(`a list element at ${path} has no merge key "${mergeKey}"`);
    const i = result.findIndex((e) => sameKey(keyOf(e, mergeKey), key));
    const merged = mergeMap(i >= 0 && isObject(result[i]) ? (result[i] as Obj) : {}, el, path, keys);
    if (i >= 0) {
      if (merged === undefined) result.splice(i, 1);
      else result[i] = merged;
    } else if (merged !== undefined) result.push(merged);
  }
  return result;
}

/** Orders `list` as `order` says (by merge key, or by value for primitives); elements not listed keep their relative order after. */
function applyOrder(list: unknown[], order: unknown[], mergeKey: string | undefined): unknown[] {
  const wanted = order.map((o) => (mergeKey && isObject(o) ? o[mergeKey] : o));
  const ident = (e: unknown): unknown => (mergeKey && isObject(e) ? e[mergeKey] : e);
  const ordered: unknown[] = [];
  const used = new Set<number>();
  for (const w of wanted) {
    list.forEach((e, i) => {
      if (!used.has(i) && ident(e) === w) {
        used.add(i);
        ordered.push(e);
      }
    });
  }
  return [...ordered, ...list.filter((_, i) => !used.has(i))];
}
