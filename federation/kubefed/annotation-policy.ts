// The annotation propagation policy (pure): which annotations of a Federated<Kind>'s template the
// controller sets on member objects ("propagate", spec-type), and which member annotations it must
// never touch ("preserve", status-type). KubeFed drops template annotations (kubefed#1215) and its
// all-annotations comparison looped against the Deployment controller (kubefed#982); this policy
// makes both explicit. Read from FederatedTypeConfig spec.annotationPolicy, falling back to
// KubeFedConfig spec.annotationPolicy; with neither, every template annotation propagates (what a
// user wrote into the template is what they expect on members) and every other member annotation
// is kept. Drift compares only what was propagated, so member-side annotations never loop.
import type { FieldError } from '../apiserver/validation.js';
import { isDnsSubdomain } from '../apiserver/validation.js';

export interface KeyRules {
  /** Every key (the default for propagate). */
  all?: boolean;
  /** Exact annotation keys. */
  keys: readonly string[];
  /** Key prefixes ("team.example.com/" matches every key under that prefix). */
  prefixes: readonly string[];
}

export interface AnnotationPolicy {
  propagate: KeyRules;
  /** Wins over propagate: a key matching both is never written, changed or removed on members. */
  preserve: KeyRules;
}

/** Hash of the desired content for one cluster, written by the controller on every member object. */
export const HASH_ANNOTATION = 'fedtunnel.io/desired-hash';
/** The keys the controller propagated to a member object (comma-separated, sorted), so removals survive restarts. */
export const PROPAGATED_ANNOTATION = 'fedtunnel.io/propagated-annotations';
/** The controller's own bookkeeping: never propagated from a template, never preserved against it. */
export const RESERVED_ANNOTATIONS: ReadonlySet<string> = new Set([HASH_ANNOTATION, PROPAGATED_ANNOTATION]);

const NO_KEYS: KeyRules = { keys: [], prefixes: [] };
const ALL_KEYS: KeyRules = { all: true, keys: [], prefixes: [] };
/** Nothing configured: every template annotation propagates, every other member annotation is kept. */
export const DEFAULT_ANNOTATION_POLICY: AnnotationPolicy = { propagate: ALL_KEYS, preserve: NO_KEYS };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function matches(rules: KeyRules, key: string): boolean {
  return rules.all === true || rules.keys.includes(key) || rules.prefixes.some((p) => key.startsWith(p));
}

/** Whether the controller manages `key` on members: propagate rules match, preserve rules do not, not reserved. */
export function isPropagated(policy: AnnotationPolicy, key: string): boolean {
  return !RESERVED_ANNOTATIONS.has(key) && matches(policy.propagate, key) && !matches(policy.preserve, key);
}

export function isPreserved(policy: AnnotationPolicy, key: string): boolean {
  return !RESERVED_ANNOTATIONS.has(key) && matches(policy.preserve, key);
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : [];
}

function keyRules(v: unknown): KeyRules {
  const o = isObject(v) ? v : {};
  return { ...(o.all === true ? { all: true } : {}), keys: strings(o.keys), prefixes: strings(o.prefixes) };
}

/** The policy an `annotationPolicy` field states, or undefined when the field is absent (inherit). */
export function annotationPolicyOf(spec: unknown): AnnotationPolicy | undefined {
  const field = isObject(spec) ? spec.annotationPolicy : undefined;
  if (!isObject(field)) return undefined;
  // A stated policy without `propagate` keeps the default (all); `propagate: {}` propagates nothing.
  return { propagate: field.propagate === undefined ? ALL_KEYS : keyRules(field.propagate), preserve: keyRules(field.preserve) };
}

// ---- admission

const NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
/** What a prefix may contain: the characters of annotation keys. */
const PREFIX_CHARS = /^[-A-Za-z0-9_./]+$/;

/** Kubernetes' IsQualifiedName, which annotation keys must be: [DNS-subdomain "/"] name (≤ 63). */
export function isQualifiedName(key: string): boolean {
  const slash = key.indexOf('/');
  const name = slash < 0 ? key : key.slice(slash + 1);
  if (slash >= 0 && !isDnsSubdomain(key.slice(0, slash))) return false;
  return name.length <= 63 && NAME_PART.test(name);
}

function validateRules(v: unknown, at: string, errors: FieldError[]): void {
  if (v === undefined || v === null) return;
  if (!isObject(v)) {
    errors.push({ field: at, message: 'Invalid value: must be an object with keys and/or prefixes' });
    return;
  }
  for (const field of Object.keys(v)) if (field !== 'all' && field !== 'keys' && field !== 'prefixes') errors.push({ field: `${at}.${field}`, message: 'Unsupported field: supported fields: "all", "keys", "prefixes"' });
  if (v.all !== undefined && typeof v.all !== 'boolean') errors.push({ field: `${at}.all`, message: 'Invalid value: must be true or false' });
  for (const field of ['keys', 'prefixes'] as const) {
    const list = v[field];
    if (list === undefined || list === null) continue;
    if (!Array.isArray(list)) {
      errors.push({ field: `${at}.${field}`, message: 'Invalid value: must be a list of strings' });
      continue;
    }
    const seen = new Set<unknown>();
    list.forEach((item: unknown, i) => {
      const where = `${at}.${field}[${i}]`;
      const bad = (why: string): void => void errors.push({ field: where, message: `Invalid value: ${JSON.stringify(item)}: ${why}` });
      if (typeof item !== 'string') return bad('must be a string');
      if (seen.has(item)) return void errors.push({ field: where, message: `Duplicate value: ${JSON.stringify(item)}` });
      seen.add(item);
      if (field === 'keys' && !isQualifiedName(item)) return bad('must be an annotation key: an optional DNS subdomain and "/", then a name of at most 63 alphanumerics, "-", "_" or "."');
      // An empty prefix would match every key, the controller's own included: name them instead.
      if (field === 'prefixes' && (item === '' || item.length > 253 + 1 + 63 || !PREFIX_CHARS.test(item))) return bad('must be a non-empty start of an annotation key (alphanumerics, "-", "_", ".", "/")');
      const reserved = [...RESERVED_ANNOTATIONS].find((r) => (field === 'keys' ? r === item : r.startsWith(item)));
      if (reserved !== undefined) bad(`${reserved} is the controller's own annotation`);
    });
  }
}

/** Admission of an `annotationPolicy` field of a FederatedTypeConfig or KubeFedConfig spec (absent is fine). */
export function validateAnnotationPolicy(v: unknown, at = 'spec.annotationPolicy'): FieldError[] {
  const errors: FieldError[] = [];
  if (v === undefined || v === null) return errors;
  if (!isObject(v)) return [{ field: at, message: 'Invalid value: must be an object with propagate and/or preserve' }];
  for (const field of Object.keys(v)) if (field !== 'propagate' && field !== 'preserve') errors.push({ field: `${at}.${field}`, message: 'Unsupported field: supported fields: "propagate", "preserve"' });
  validateRules(v.propagate, `${at}.propagate`, errors);
  validateRules(v.preserve, `${at}.preserve`, errors);
  return errors;
}
