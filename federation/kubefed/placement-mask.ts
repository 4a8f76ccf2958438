// spec.placementMask of a Federated<Kind> (gray release): which placed clusters may receive a new
// template/overrides now. A cluster is inside the mask when it is named in `clusters` or its
// KubeFedCluster carries CELL_LABEL with a value named in `cells`. No mask: every placed cluster is
// inside. An empty mask ({} or empty lists) holds every cluster: a paused rollout. Pure.
import type { KubeObject } from '../apiserver/storage.js';
import { isLabelValue } from '../apiserver/selectors.js';
import { isDnsLabel, type FieldError } from '../apiserver/validation.js';
import { CELL_LABEL } from './api.js';
import type { ClusterInfo } from './placement.js';

export interface PlacementMask {
  clusters: ReadonlySet<string>;
  cells: ReadonlySet<string>;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const FIELD = 'spec.placementMask';

/** Admission: a 422 for anything but {clusters?: [{name}], cells?: [{name}]} with valid, distinct names. */
export function validatePlacementMask(mask: unknown): FieldError[] {
  const errs: FieldError[] = [];
  if (mask === undefined || mask === null) return errs;
  if (!isObject(mask)) return [{ field: FIELD, message: `Invalid value: ${JSON.stringify(mask)}: must be an object with clusters and/or cells` }];
  for (const key of Object.keys(mask)) {
    if (key !== 'clusters' && key !== 'cells') errs.push({ field: `${FIELD}.${key}`, message: 'Unsupported value: supported fields: "clusters", "cells"' });
  }
  const list = (key: 'clusters' | 'cells', valid: (s: string) => boolean, what: string): void => {
    const items = mask[key];
    if (items === undefined || items === null) return;
    if (!Array.isArray(items)) {
      errs.push({ field: `${FIELD}.${key}`, message: 'Invalid value: must be a list of {name}' });
      return;
    }
    const seen = new Set<string>();
    items.forEach((item: unknown, i) => {
      const at = `${FIELD}.${key}[${i}].name`;
      const name = isObject(item) ? item.name : undefined;
      if (name === undefined || name === null || name === '') errs.push({ field: at, message: 'Required value' });
      else if (typeof name !== 'string' || !valid(name)) errs.push({ field: at, message: `Invalid value: ${JSON.stringify(name)}: ${what}` });
      else if (seen.has(name)) errs.push({ field: at, message: `Duplicate value: ${JSON.stringify(name)}` });
      else seen.add(name);
    });
  };
  list('clusters', isDnsLabel, 'a cluster name must be a lowercase RFC 1123 label');
  list('cells', isLabelValue, `a cell name is the value of the ${CELL_LABEL} label and must be a valid label value`);
  return errs;
}

/** The object's mask, or undefined when it has none (everything placed is current). */
export function placementMaskOf(fed: KubeObject): PlacementMask | undefined {
  const spec = isObject(fed.spec) ? fed.spec : {};
  const mask = spec.placementMask;
  if (!isObject(mask)) return undefined;
  const names = (items: unknown): Set<string> =>
    new Set(Array.isArray(items) ? items.map((i: unknown) => (isObject(i) && typeof i.name === 'string' ? i.name : undefined)).filter((n): n is string => n !== undefined) : []);
  return { clusters: names(mask.clusters), cells: names(mask.cells) };
}

export function inPlacementMask(mask: PlacementMask | undefined, cluster: ClusterInfo): boolean {
  if (!mask) return true;
  if (mask.clusters.has(cluster.name)) return true;
  const cell = cluster.labels[CELL_LABEL];
  return cell !== undefined && mask.cells.has(cell);
}
