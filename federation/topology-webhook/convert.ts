// The cell form of every Federated<Kind> (types.kubefed.io/v1beta2) and its conversion to and from
// the native KubeFed form (v1beta1, the storage version). Pure functions of the object, no lookups,
// so the conversion webhook is fast, deterministic and testable by properties.
//
// v1beta2 spec = v1beta1 spec, except:
//   topology: {type: cluster|cell}              absent means cluster
//   placement (type cluster): clusters / clusterSelector exactly as v1beta1
//   placement (type cell):    cells: [{name}]   (present, even [], wins over cellSelector)
//                             cellSelector: a label selector over the labels of clusters that
//                                           belong to a cell (carry CELL_LABEL)
//   overrides[]: entries name one of clusterName | cellName | clusterSelector
//
// v1beta2 → v1beta1:
//   cells [a, b]  → clusterSelector {matchExpressions: [{key: CELL_LABEL, operator: In, values: [a, b]}]}
//   cells []      → clusters [] (no cluster: a selector "In ()" is not a valid selector)
//   cellSelector S → clusterSelector S plus {key: CELL_LABEL, operator: Exists}
//   {cellName: a, clusterOverrides} → {clusterSelector: <In [a] on CELL_LABEL>, clusterOverrides}
//   Overrides are applied in list order, last match wins per path; per-cell entries are moved in
//   front of the other entries, so a per-cluster (or selector) entry wins over a per-cell one.
// Whatever the native form cannot say (the topology, cell names, the original order) is kept in the
// TOPOLOGY_ANNOTATION on the native object — only when the native form alone would not give the
// object back — so v1beta2 → v1beta1 → v1beta2 is the identity. An object written natively (no
// annotation) reads in v1beta2 as topology cluster with its placement and overrides unchanged, and
// converts back to exactly itself.
import type { KubeObject } from '../apiserver/storage.js';

import { CELL_LABEL } from '../kubefed/api.js';

export { CELL_LABEL };
/** On the native form: the JSON of the v1beta2-only parts of the spec (topology, placement, overrides). Reserved. */
export const TOPOLOGY_ANNOTATION = 'fedtunnel.io/v1beta2-topology';
export const TYPES_GROUP = 'types.kubefed.io';
export const NATIVE_API_VERSION = `${TYPES_GROUP}/v1beta1`;
export const TOPOLOGY_API_VERSION = `${TYPES_GROUP}/v1beta2`;

/** The spec fields whose meaning differs between the versions; everything else is copied unchanged. */
const TOPOLOGY_FIELDS = ['topology', 'placement', 'overrides'] as const;
type Parts = Partial<Record<(typeof TOPOLOGY_FIELDS)[number], unknown>>;

/** An object the conversion cannot handle (an invalid v1beta2 spec, a foreign apiVersion). */
export class TopologyConversionError extends Error {
  override readonly name = 'TopologyConversionError';
}

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** JSON with sorted keys: equal values give equal text. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (isObject(v)) return `{${Object.keys(v).sort().filter((k) => v[k] !== undefined).map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k])}`).join(',')}}`;
  return JSON.stringify(v ?? null);
}

function partsOf(spec: Obj): Parts {
  const parts: Parts = {};
  for (const f of TOPOLOGY_FIELDS) if (f in spec && spec[f] !== undefined) parts[f] = spec[f];
  return parts;
}

function withoutParts(spec: Obj): Obj {
  const rest: Obj = {};
  for (const [k, v] of Object.entries(spec)) if (!(TOPOLOGY_FIELDS as readonly string[]).includes(k)) rest[k] = v;
  return rest;
}

/** The native selector of the clusters of these cells. */
export function cellsSelector(cells: string[]): Obj {
  return { matchExpressions: [{ key: CELL_LABEL, operator: 'In', values: [...cells] }] };
}

function topologyType(topology: unknown): 'cluster' | 'cell' {
  if (topology === undefined) return 'cluster';
  if (!isObject(topology)) throw new TopologyConversionError('spec.topology must be an object');
  const type = topology.type ?? 'cluster';
  if (type !== 'cluster' && type !== 'cell') throw new TopologyConversionError(`spec.topology.type must be "cluster" or "cell", not ${JSON.stringify(type)}`);
  return type;
}

function cellName(v: unknown, at: string): string {
  if (typeof v !== 'string' || v === '') throw new TopologyConversionError(`${at} must be a non-empty string`);
  return v;
}

function nativePlacement(type: 'cluster' | 'cell', placement: unknown): unknown {
  if (type === 'cluster' || !isObject(placement)) {
    if (type === 'cell' && placement !== null) throw new TopologyConversionError('spec.placement must be an object');
    return placement;
  }
  if (placement.clusters !== undefined || placement.clusterSelector !== undefined) {
    throw new TopologyConversionError('spec.placement of topology cell places by cells and cellSelector, not clusters or clusterSelector (use topology cluster)');
  }
  if (Array.isArray(placement.cells)) {
    const names = placement.cells.map((c: unknown, i) => cellName(isObject(c) ? c.name : undefined, `spec.placement.cells[${i}].name`));
    return names.length === 0 ? { clusters: [] } : { clusterSelector: cellsSelector(names) };
  }
  if (placement.cells !== undefined && placement.cells !== null) throw new TopologyConversionError('spec.placement.cells must be a list');
  if (placement.cellSelector === undefined || placement.cellSelector === null) return {};
  if (!isObject(placement.cellSelector)) throw new TopologyConversionError('spec.placement.cellSelector must be a label selector');
  const selector = placement.cellSelector;
  const expressions = selector.matchExpressions ?? [];
  if (!Array.isArray(expressions)) throw new TopologyConversionError('spec.placement.cellSelector.matchExpressions must be a list');
  return { clusterSelector: { ...selector, matchExpressions: [...expressions, { key: CELL_LABEL, operator: 'Exists' }] } };
}

function nativeOverrides(overrides: unknown): unknown {
  if (!Array.isArray(overrides)) return overrides;
  const perCell: unknown[] = [];
  const others: unknown[] = [];
  overrides.forEach((entry: unknown, i) => {
    if (!isObject(entry) || entry.cellName === undefined) return void others.push(entry);
    if (entry.clusterName !== undefined || entry.clusterSelector !== undefined) throw new TopologyConversionError(`spec.overrides[${i}] names a cell and a cluster: give one of cellName, clusterName, clusterSelector`);
    const { cellName: cell, ...rest } = entry;
    perCell.push({ clusterSelector: cellsSelector([cellName(cell, `spec.overrides[${i}].cellName`)]), ...rest });
  });
  return [...perCell, ...others];
}

/** The native parts (placement, overrides) of the v1beta2 parts. Throws TopologyConversionError. */
function toNativeParts(parts: Parts): Parts {
  const type = topologyType(parts.topology);
  const out: Parts = {};
  if ('placement' in parts) out.placement = nativePlacement(type, parts.placement);
  if ('overrides' in parts) out.overrides = nativeOverrides(parts.overrides);
  return out;
}

/** How a native object without the annotation reads in v1beta2: topology cluster, the rest as it is. */
function derivedParts(native: Parts): Parts {
  return { topology: { type: 'cluster' }, ...native };
}

function withAnnotations(metadata: KubeObject['metadata'], annotations: Record<string, string>): KubeObject['metadata'] {
  const { annotations: _old, ...rest } = metadata;
  void _old;
  return Object.keys(annotations).length > 0 ? { ...rest, annotations } : rest;
}

/** v1beta2 → v1beta1. Throws TopologyConversionError for a spec it cannot convert. */
export function toNative(obj: KubeObject): KubeObject {
  if (!isObject(obj.spec)) return { ...obj, apiVersion: NATIVE_API_VERSION };
  const parts = partsOf(obj.spec);
  const native = toNativeParts(parts);
  const annotations = { ...(obj.metadata.annotations ?? {}) };
  // The native form alone gives the object back: no annotation (and none stale from before).
  if (canonicalJson(derivedParts(native)) === canonicalJson(parts)) delete annotations[TOPOLOGY_ANNOTATION];
  else annotations[TOPOLOGY_ANNOTATION] = canonicalJson(parts);
  return { ...obj, apiVersion: NATIVE_API_VERSION, metadata: withAnnotations(obj.metadata, annotations), spec: { ...withoutParts(obj.spec), ...native } };
}

/**
 * The v1beta2 parts the annotation records, when they still describe this native object (its
 * placement or overrides may have been edited natively since: then the annotation is stale and ignored).
 */
function recordedParts(annotation: string | undefined, native: Parts): Parts | null {
  if (annotation === undefined) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(annotation);
  } catch {
    return null;
  }
  if (!isObject(parsed) || Object.keys(parsed).some((k) => !(TOPOLOGY_FIELDS as readonly string[]).includes(k))) return null;
  try {
    return canonicalJson(toNativeParts(parsed)) === canonicalJson(native) ? (parsed as Parts) : null;
  } catch {
    return null;
  }
}

/** v1beta1 → v1beta2. Never fails: any native object has a v1beta2 form. */
export function toTopology(obj: KubeObject): KubeObject {
  if (!isObject(obj.spec)) return { ...obj, apiVersion: TOPOLOGY_API_VERSION };
  const native = partsOf(obj.spec);
  delete native.topology;
  const recorded = recordedParts(obj.metadata.annotations?.[TOPOLOGY_ANNOTATION], native);
  const rest = withoutParts(obj.spec);
  if (!recorded) return { ...obj, apiVersion: TOPOLOGY_API_VERSION, spec: { ...rest, ...derivedParts(native) } };
  const annotations = { ...obj.metadata.annotations };
  delete annotations[TOPOLOGY_ANNOTATION];
  return { ...obj, apiVersion: TOPOLOGY_API_VERSION, metadata: withAnnotations(obj.metadata, annotations), spec: { ...rest, ...recorded } };
}

/** `obj` in `desiredAPIVersion` (either version of types.kubefed.io). Throws TopologyConversionError. */
export function convertObject(obj: KubeObject, desiredAPIVersion: string): KubeObject {
  const known = [NATIVE_API_VERSION, TOPOLOGY_API_VERSION];
  if (!known.includes(desiredAPIVersion)) throw new TopologyConversionError(`cannot convert to ${JSON.stringify(desiredAPIVersion)}: supported versions: ${known.join(', ')}`);
  if (!isObject(obj) || !isObject(obj.metadata)) throw new TopologyConversionError('the object has no metadata');
  if (!known.includes(obj.apiVersion as string)) throw new TopologyConversionError(`cannot convert from ${JSON.stringify(obj.apiVersion)}: supported versions: ${known.join(', ')}`);
  if (obj.apiVersion === desiredAPIVersion) return obj;
  return desiredAPIVersion === NATIVE_API_VERSION ? toNative(obj) : toTopology(obj);
}
