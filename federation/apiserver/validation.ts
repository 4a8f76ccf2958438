// Object validation (pure): names and metadata shape. Returns field errors; empty means valid.
import type { KubeObject } from './storage.js';
import type { ResourceType } from './types.js';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function isDnsLabel(name: string): boolean {
  return name.length <= 63 && DNS_LABEL.test(name);
}

export function isDnsSubdomain(name: string): boolean {
  return name.length <= 253 && DNS_SUBDOMAIN.test(name);
}

/** Types whose names must be DNS labels (RFC 1123); the rest take DNS subdomains. */
const LABEL_NAMED = new Set(['namespaces', 'services']);

export interface FieldError {
  field: string;
  message: string;
}

/** Groups whose objects are named by path segments (kube's ValidatePathSegmentName): RBAC's, e.g. system:discovery. */
const PATH_SEGMENT_NAMED_GROUPS = new Set(['rbac.authorization.k8s.io']);

export function validatePathSegmentName(name: string, field = 'metadata.name'): FieldError[] {
  if (name === '.' || name === '..') return [{ field, message: `Invalid value: "${name}": may not be '.' or '..'` }];
  if (/[/%]/.test(name)) return [{ field, message: `Invalid value: "${name}": may not contain '/' or '%'` }];
  return [];
}

export function validateName(t: ResourceType, name: string): FieldError[] {
  if (PATH_SEGMENT_NAMED_GROUPS.has(t.group)) return validatePathSegmentName(name);
  if (LABEL_NAMED.has(t.plural)) {
    if (!isDnsLabel(name)) {
      return [{ field: 'metadata.name', message: `Invalid value: "${name}": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character` }];
    }
  } else if (!isDnsSubdomain(name)) {
    return [{ field: 'metadata.name', message: `Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character` }];
  }
  return [];
}

function isStringMap(v: unknown): boolean {
  return v === undefined || (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string'));
}

export function validateObject(t: ResourceType, obj: KubeObject): FieldError[] {
  const errs: FieldError[] = [];
  const name = obj.metadata.name ?? '';
  if (name === '') errs.push({ field: 'metadata.name', message: 'Required value: name or generateName is required' });
  else errs.push(...validateName(t, name));
  if (t.namespaced && obj.metadata.namespace !== undefined && !isDnsLabel(obj.metadata.namespace)) {
    errs.push({ field: 'metadata.namespace', message: `Invalid value: "${obj.metadata.namespace}"` });
  }
  if (!isStringMap(obj.metadata.labels)) errs.push({ field: 'metadata.labels', message: 'Invalid value: labels must be a map of strings' });
  if (!isStringMap(obj.metadata.annotations)) errs.push({ field: 'metadata.annotations', message: 'Invalid value: annotations must be a map of strings' });
  const f = obj.metadata.finalizers;
  if (f !== undefined && (!Array.isArray(f) || !f.every((x) => typeof x === 'string'))) errs.push({ field: 'metadata.finalizers', message: 'Invalid value: finalizers must be a list of strings' });
  if ((t.plural === 'configmaps' || t.plural === 'secrets') && !isStringMap(obj.data as unknown)) {
    errs.push({ field: 'data', message: 'Invalid value: data must be a map of strings' });
  }
  return errs;
}
