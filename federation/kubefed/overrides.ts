// Per-cluster overrides of a Federated<Kind> (spec.overrides[], for a clusterName or a clusterSelector): RFC 6902 JSON
// patch operations applied to the object made from the template, as KubeFed does with
// evanphx/json-patch. Pure. Semantics kept from KubeFed: op defaults to "replace"; `replace` or
// `remove` of a missing path fails (the cluster's status becomes ApplyOverridesFailed); the paths
// that tie a member object to its federated object may not be overridden.
import jsonpatch, { type Operation } from 'fast-json-patch';
import { matchLabels } from '../apiserver/selectors.js';
import type { KubeObject } from '../apiserver/storage.js';
import { labelSelectorRequirements, SelectorShapeError } from './label-selector.js';

export interface OverrideOp {
  op: 'add' | 'remove' | 'replace';
  path: string;
  value?: unknown;
}

/**
 * Name and namespace associate a member object with its federated object; kind always comes from
 * the FederatedTypeConfig. (apiVersion may be overridden, as in KubeFed.)
 */
export const FORBIDDEN_OVERRIDE_PATHS: ReadonlySet<string> = new Set(['/metadata/namespace', '/metadata/name', '/metadata/generateName', '/kind']);

export class OverrideError extends Error {
  override readonly name = 'OverrideError';
  constructor(
    /** InvalidOverrides: spec.overrides itself is malformed; ApplyOverridesFailed: an operation does not apply to the object. */
    readonly code: 'InvalidOverrides' | 'ApplyOverridesFailed',
    message: string,
    readonly path?: string,
  ) {
    super(message);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Whether an override entry is for this cluster: by clusterName, or by clusterSelector (a label
 * selector, e.g. what a per-cell override of the cell form converts to) over the cluster's labels.
 */
function entryMatches(item: Record<string, unknown>, cluster: string, labels: Record<string, string>): boolean {
  if (item.clusterName !== undefined) return item.clusterName === cluster;
  if (!isObject(item.clusterSelector)) return false;
  try {
    return matchLabels(labelSelectorRequirements(item.clusterSelector), labels);
  } catch (err) {
    if (err instanceof SelectorShapeError) throw new OverrideError('InvalidOverrides', `spec.overrides has an invalid clusterSelector: ${err.message}`);
    throw err;
  }
}

/**
 * The override operations for `cluster` (none when no entry matches it), op defaulted to replace.
 * Every entry that matches the cluster (by clusterName, or by clusterSelector over `labels`)
 * applies, in list order; when several set the same path the last one wins, at the place of the
 * first. Throws OverrideError InvalidOverrides on what KubeFed's GetOverrides rejects: a cluster
 * named twice, a forbidden path, a path twice in one entry; and on an invalid selector.
 */
export function overridesFor(fedObj: KubeObject, cluster: string, labels: Record<string, string> = {}): OverrideOp[] {
  const spec = isObject(fedObj.spec) ? fedObj.spec : {};
  const items = Array.isArray(spec.overrides) ? spec.overrides.filter(isObject) : [];
  if (items.filter((item) => item.clusterName === cluster).length > 1) throw new OverrideError('InvalidOverrides', `cluster ${JSON.stringify(cluster)} appears more than once in spec.overrides`);
  const byPath = new Map<string, OverrideOp>();
  for (const item of items) {
    if (!entryMatches(item, cluster, labels) || !Array.isArray(item.clusterOverrides)) continue;
    const seen = new Set<string>();
    (item.clusterOverrides as unknown[]).forEach((raw, i) => {
      const o = isObject(raw) ? raw : {};
      const path = typeof o.path === 'string' ? o.path : '';
      if (FORBIDDEN_OVERRIDE_PATHS.has(path)) throw new OverrideError('InvalidOverrides', `override[${i}] for cluster ${JSON.stringify(cluster)} has an invalid path: ${path}`, path);
      if (seen.has(path)) throw new OverrideError('InvalidOverrides', `path ${JSON.stringify(path)} appears more than once for cluster ${JSON.stringify(cluster)}`, path);
      seen.add(path);
      const op = o.op === undefined || o.op === '' ? 'replace' : (o.op as OverrideOp['op']);
      byPath.set(path, 'value' in o ? { op, path, value: o.value } : { op, path });
    });
  }
  return [...byPath.values()];
}

/**
 * A new object: `obj` with the operations applied in order (`obj` is not changed). Throws
 * OverrideError ApplyOverridesFailed naming the path of the first operation that does not apply.
 */
export function applyOverrides(obj: KubeObject, ops: OverrideOp[]): KubeObject {
  let doc = jsonpatch.deepClone(obj) as KubeObject;
  for (const op of ops) {
    if (op.op !== 'add' && op.op !== 'remove' && op.op !== 'replace') throw new OverrideError('ApplyOverridesFailed', `unsupported override op ${JSON.stringify(op.op)} at ${op.path}`, op.path);
    if (FORBIDDEN_OVERRIDE_PATHS.has(op.path)) throw new OverrideError('ApplyOverridesFailed', `the path ${op.path} may not be overridden`, op.path);
    try {
      // Validated (a replace/remove of a missing path fails instead of adding), prototype changes banned.
      doc = jsonpatch.applyOperation(doc, op as Operation, true, true, true).newDocument;
    } catch (err) {
      const reason = err instanceof jsonpatch.JsonPatchError ? err.name : (err as Error).message;
      throw new OverrideError('ApplyOverridesFailed', `override ${op.op} ${op.path} failed: ${reason}`, op.path);
    }
  }
  return doc;
}
