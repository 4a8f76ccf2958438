// Admission of the KubeFed types (pure): KubeFed's validating webhook rules for KubeFedCluster,
// FederatedTypeConfig and KubeFedConfig (pkg/apis/core/v1beta1/validation), and for Federated<Kind>
// the rules of the CRD schema `kubefedctl enable` generates plus the checks KubeFed's controllers
// make only later (duplicate override clusters and paths, forbidden paths). Every error names its
// field; the API server answers 422 and stores nothing.
import type { KubeObject } from '../apiserver/storage.js';
import { groupVersion } from '../apiserver/types.js';
import { isDnsLabel, isDnsSubdomain, type FieldError } from '../apiserver/validation.js';
import { groupQualifiedName, isDns1035Label, isNamespaceTypeName, KUBEFED_CONFIG_DEFAULTS, KUBEFED_CONFIG_NAME, KUBEFED_NAMESPACE, type TargetType } from './api.js';
import { validateAnnotationPolicy } from './annotation-policy.js';
import { parseGoDuration } from './duration.js';
import { validateLabelSelector } from './label-selector.js';
import { FORBIDDEN_OVERRIDE_PATHS } from './overrides.js';
import { validatePlacementMask } from './placement-mask.js';

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

class Errors {
  readonly list: FieldError[] = [];
  add(field: string, message: string): void {
    this.list.push({ field, message });
  }
  required(field: string): void {
    this.add(field, 'Required value');
  }
  invalid(field: string, value: unknown, why: string): void {
    this.add(field, `Invalid value: ${JSON.stringify(value)}: ${why}`);
  }
  /** KubeFed's validateEnumStrings: required, and one of `accepted`. */
  enumValue(field: string, value: unknown, accepted: readonly string[]): void {
    if (value === undefined || value === null || value === '') this.required(field);
    else if (typeof value !== 'string' || !accepted.includes(value)) this.add(field, `Unsupported value: ${JSON.stringify(value)}: supported values: ${accepted.map((a) => `"${a}"`).join(', ')}`);
  }
}

const SCOPES = ['Cluster', 'Namespaced'] as const;
const ENABLED = ['Enabled', 'Disabled'] as const;

/** The KubeFed control-plane objects live in KUBEFED_NAMESPACE: elsewhere KubeFed would silently ignore them. */
function requireKubeFedNamespace(e: Errors, obj: KubeObject): void {
  if (obj.metadata.namespace !== KUBEFED_NAMESPACE) e.add('metadata.namespace', `Unsupported value: ${JSON.stringify(obj.metadata.namespace)}: supported values: "${KUBEFED_NAMESPACE}"`);
}

// ---- KubeFedCluster

const TLS_VALIDATIONS = ['*', 'SubjectName', 'ValidityPeriod'] as const;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const CONDITION_TYPES = ['Ready', 'Offline', 'ConfigMalformed'] as const;
const CONDITION_STATUSES = ['True', 'False', 'Unknown'] as const;

export function validateKubeFedCluster(obj: KubeObject): FieldError[] {
  const e = new Errors();
  requireKubeFedNamespace(e, obj);
  // Cluster names are DNS labels: they name the cluster in placement and in the tunnel (<host>.<cluster>.tunnel).
  const name = obj.metadata.name ?? '';
  if (name !== '' && !isDnsLabel(name)) e.invalid('metadata.name', name, 'a cluster name must be a lowercase RFC 1123 label');
  const spec = obj.spec;
  if (!isObject(spec)) {
    e.required('spec');
    return e.list;
  }
  validateApiEndpoint(e, spec.apiEndpoint);
  if (spec.caBundle !== undefined && spec.caBundle !== null && (typeof spec.caBundle !== 'string' || !BASE64.test(spec.caBundle))) e.add('spec.caBundle', 'Invalid value: must be base64-encoded PEM');
  const ref = spec.secretRef;
  if (!isObject(ref) || ref.name === undefined || ref.name === '') e.required('spec.secretRef.name');
  else if (typeof ref.name !== 'string' || !isDnsSubdomain(ref.name)) e.invalid('spec.secretRef.name', ref.name, 'must be a lowercase RFC 1123 subdomain');
  const disabled = spec.disabledTLSValidations;
  if (disabled !== undefined && disabled !== null) {
    if (!Array.isArray(disabled)) e.add('spec.disabledTLSValidations', 'Invalid value: must be a list');
    else {
      for (const v of disabled) e.enumValue('spec.disabledTLSValidations', v, TLS_VALIDATIONS);
      if (disabled.includes('*') && disabled.length > 1) e.invalid('spec.disabledTLSValidations', disabled, 'when * is specified, it is expected to be the only option in list');
    }
  }
  if (spec.proxyURL !== undefined && spec.proxyURL !== null && spec.proxyURL !== '') {
    let scheme = '';
    try {
      scheme = typeof spec.proxyURL === 'string' ? new URL(spec.proxyURL).protocol : '';
    } catch {
      e.invalid('spec.proxyURL', spec.proxyURL, 'error parsing the proxy URL');
    }
    if (!['http:', 'https:', 'socks5:'].includes(scheme)) e.invalid('spec.proxyURL', spec.proxyURL, 'proxy URL scheme must be one of: [http, https, socks5]');
  }
  const status = obj.status;
  if (isObject(status) && status.conditions !== undefined && status.conditions !== null) {
    if (!Array.isArray(status.conditions)) e.add('status.conditions', 'Invalid value: must be a list');
    else
      status.conditions.forEach((c: unknown, i) => {
        const at = `status.conditions[${i}]`;
        const cond = isObject(c) ? c : {};
        e.enumValue(`${at}.type`, cond.type, CONDITION_TYPES);
        e.enumValue(`${at}.status`, cond.status, CONDITION_STATUSES);
        if (typeof cond.lastProbeTime !== 'string' || Number.isNaN(Date.parse(cond.lastProbeTime))) e.required(`${at}.lastProbeTime`);
      });
  }
  return e.list;
}

function validateApiEndpoint(e: Errors, endpoint: unknown): void {
  const field = 'spec.apiEndpoint';
  if (endpoint === undefined || endpoint === null || endpoint === '') return e.required(field);
  if (typeof endpoint !== 'string') return e.invalid(field, endpoint, 'must be a string');
  // client-go's DefaultServerURL: no scheme means https.
  const withScheme = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(endpoint) ? endpoint : `https://${endpoint}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    return e.invalid(field, endpoint, 'not a valid URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return e.add(field, `Unsupported value: ${JSON.stringify(url.protocol.slice(0, -1))}: supported values: "http", "https"`);
  if (url.hostname === '') e.invalid(field, endpoint, 'a host is required');
  // WHATWG URL parsing already refuses ports above 65535; port 0 stays.
  if (url.port === '0') e.invalid(field, endpoint, 'must be between 1 and 65535, inclusive');
}

// ---- FederatedTypeConfig

/** KubeFed's ValidateAPIResource (group optional). */
function validateApiResource(e: Errors, r: unknown, at: string): void {
  if (!isObject(r)) return e.required(at);
  if (r.group !== undefined && r.group !== '' && (typeof r.group !== 'string' || !isDnsSubdomain(r.group))) e.invalid(`${at}.group`, r.group, 'must be a lowercase RFC 1123 subdomain');
  if (r.version === undefined || r.version === '') e.required(`${at}.version`);
  else if (typeof r.version !== 'string' || !isDns1035Label(r.version)) e.invalid(`${at}.version`, r.version, 'must be a lowercase RFC 1035 label');
  if (r.kind === undefined || r.kind === '') e.required(`${at}.kind`);
  else if (typeof r.kind !== 'string' || !isDns1035Label(r.kind.toLowerCase())) e.invalid(`${at}.kind`, r.kind, 'must be a valid kind name');
  if (r.pluralName === undefined || r.pluralName === '') e.required(`${at}.pluralName`);
  else if (typeof r.pluralName !== 'string' || !isDns1035Label(r.pluralName)) e.invalid(`${at}.pluralName`, r.pluralName, 'must be a lowercase RFC 1035 label');
  e.enumValue(`${at}.scope`, r.scope, SCOPES);
}

/**
 * `otherFederatedTypes`: federated types (group/plural) other FederatedTypeConfigs already use —
 * two configs sharing one Federated<Kind> CRD would fight over it.
 */
export function validateFederatedTypeConfig(obj: KubeObject, otherFederatedTypes: ReadonlySet<string> = new Set()): FieldError[] {
  const e = new Errors();
  requireKubeFedNamespace(e, obj);
  const spec = obj.spec;
  if (!isObject(spec)) {
    e.required('spec');
    return e.list;
  }
  const name = obj.metadata.name ?? '';
  validateApiResource(e, spec.targetType, 'spec.targetType');
  if (isObject(spec.targetType) && typeof spec.targetType.pluralName === 'string') {
    // KubeFed defaults an empty target group from the name, then requires name = plural[.group].
    const fromName = name.includes('.') ? name.slice(name.indexOf('.') + 1) : '';
    const group = typeof spec.targetType.group === 'string' && spec.targetType.group !== '' ? spec.targetType.group : fromName;
    const expected = groupQualifiedName({ plural: spec.targetType.pluralName, group });
    if (name !== expected) e.invalid('metadata.name', name, `name must be 'TARGET_PLURAL_NAME(.TARGET_GROUP_NAME)' (${JSON.stringify(expected)})`);
  }
  e.enumValue('spec.propagation', spec.propagation, ENABLED);
  const fed = spec.federatedType;
  if (isObject(fed)) {
    if (fed.group === undefined || fed.group === '') e.required('spec.federatedType.group');
    else if (typeof fed.group === 'string' && fed.group.split('.').length < 2) e.invalid('spec.federatedType.group', fed.group, 'should be a domain with at least one dot');
    // The federated type becomes a CRD: its kind must be a CRD kind.
    if (typeof fed.kind === 'string' && fed.kind !== '' && !/^[A-Z][A-Za-z0-9]*$/.test(fed.kind)) e.invalid('spec.federatedType.kind', fed.kind, 'must start with an upper case letter and be alphanumeric');
    if (isObject(spec.targetType) && typeof fed.scope === 'string' && typeof spec.targetType.scope === 'string') {
      const wanted = isNamespaceTypeName(name) ? 'Namespaced' : spec.targetType.scope;
      if (fed.scope !== wanted) e.add('spec.federatedType.scope', `Unsupported value: ${JSON.stringify(fed.scope)}: supported values: "${wanted}" (${isNamespaceTypeName(name) ? 'a FederatedNamespace lives in the namespace it federates' : 'the scope of the target type'})`);
    }
    if (typeof fed.group === 'string' && typeof fed.pluralName === 'string' && otherFederatedTypes.has(`${fed.group}/${fed.pluralName}`)) {
      e.add('spec.federatedType.pluralName', `Duplicate value: ${JSON.stringify(fed.pluralName)}: another FederatedTypeConfig already uses ${fed.pluralName}.${fed.group}`);
    }
  }
  validateApiResource(e, fed, 'spec.federatedType');
  if (spec.statusType !== undefined && spec.statusType !== null) validateApiResource(e, spec.statusType, 'spec.statusType');
  if (spec.statusCollection !== undefined && spec.statusCollection !== null) e.enumValue('spec.statusCollection', spec.statusCollection, ENABLED);
  e.list.push(...validateAnnotationPolicy(spec.annotationPolicy));
  const status = obj.status;
  if (isObject(status) && Object.keys(status).length > 0) {
    const og = status.observedGeneration;
    if (og !== undefined && (typeof og !== 'number' || !Number.isInteger(og) || og < 0)) e.invalid('status.observedGeneration', og, 'must be greater than or equal to 0');
    e.enumValue('status.propagationController', status.propagationController, ['Running', 'NotRunning']);
    if (status.statusController !== undefined && status.statusController !== null) e.enumValue('status.statusController', status.statusController, ['Running', 'NotRunning']);
  }
  return e.list;
}

// ---- KubeFedConfig

const FEATURE_GATES = ['PushReconciler', 'RawResourceStatusCollection', 'SchedulerPreferences'] as const;
/** client-go leaderelection.JitterFactor. */
const JITTER_FACTOR = 1.2;

/** A duration field: absent = `fallback` seconds; returns the effective seconds (null when invalid). */
function durationField(e: Errors, section: Obj, key: string, at: string, fallback: number): number | null {
  const v = section[key];
  if (v === undefined || v === null) return fallback;
  const seconds = typeof v === 'string' ? parseGoDuration(v) : null;
  if (seconds === null) {
    e.invalid(`${at}.${key}`, v, 'must be a duration such as "10s" or "1m30s"');
    return null;
  }
  if (seconds <= 0) {
    e.invalid(`${at}.${key}`, v, 'should be greater than 0');
    return null;
  }
  return seconds;
}

function positiveIntegerField(e: Errors, section: Obj, key: string, at: string): void {
  const v = section[key];
  if (v === undefined || v === null) return;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) e.invalid(`${at}.${key}`, v, 'should be greater than 0');
}

function section(e: Errors, spec: Obj, key: string): Obj {
  const v = spec[key];
  if (v === undefined || v === null) return {};
  if (!isObject(v)) {
    e.add(`spec.${key}`, 'Invalid value: must be an object');
    return {};
  }
  return v;
}

/**
 * KubeFed's ValidateKubeFedConfig applied to the object with KubeFed's defaults filled in (its
 * mutating webhook defaults before validating): unset fields are fine, set ones must be valid,
 * also in combination with the defaults (leaseDuration > renewDeadline > retryPeriod × 1.2).
 */
export function validateKubeFedConfig(obj: KubeObject): FieldError[] {
  const e = new Errors();
  requireKubeFedNamespace(e, obj);
  if (obj.metadata.name !== undefined && obj.metadata.name !== KUBEFED_CONFIG_NAME) e.add('metadata.name', `Unsupported value: ${JSON.stringify(obj.metadata.name)}: supported values: "${KUBEFED_CONFIG_NAME}"`);
  const spec = obj.spec;
  if (!isObject(spec)) {
    e.required('spec');
    return e.list;
  }
  e.enumValue('spec.scope', spec.scope, SCOPES);
  const durations = section(e, spec, 'controllerDuration');
  durationField(e, durations, 'availableDelay', 'spec.controllerDuration', 20);
  durationField(e, durations, 'unavailableDelay', 'spec.controllerDuration', 60);
  durationField(e, durations, 'cacheSyncTimeout', 'spec.controllerDuration', 300);
  const elect = section(e, spec, 'leaderElect');
  const lease = durationField(e, elect, 'leaseDuration', 'spec.leaderElect', 15);
  const renew = durationField(e, elect, 'renewDeadline', 'spec.leaderElect', 10);
  const retry = durationField(e, elect, 'retryPeriod', 'spec.leaderElect', 5);
  if (lease !== null && renew !== null && lease <= renew) e.invalid('spec.leaderElect.leaseDuration', elect.leaseDuration ?? `${lease}s`, 'leaseDuration must be greater than renewDeadline');
  if (renew !== null && retry !== null && renew <= retry * JITTER_FACTOR) e.invalid('spec.leaderElect.renewDeadline', elect.renewDeadline ?? `${renew}s`, `renewDeadline must be greater than retryPeriod*JitterFactor(${JITTER_FACTOR.toFixed(1)})`);
  if (elect.resourceLock !== undefined && elect.resourceLock !== null) e.enumValue('spec.leaderElect.resourceLock', elect.resourceLock, ['configmaps', 'endpoints']);
  const gates = spec.featureGates;
  if (gates !== undefined && gates !== null) {
    if (!Array.isArray(gates)) e.add('spec.featureGates', 'Invalid value: must be a list');
    else {
      const seen = new Set<unknown>();
      for (const g of gates) {
        const gate = isObject(g) ? g : {};
        if (seen.has(gate.name)) {
          e.add('spec.featureGates.name', `Duplicate value: ${JSON.stringify(gate.name)}`);
          continue;
        }
        seen.add(gate.name);
        e.enumValue('spec.featureGates.name', gate.name, FEATURE_GATES);
        e.enumValue('spec.featureGates.configuration', gate.configuration, ENABLED);
      }
    }
  }
  const health = section(e, spec, 'clusterHealthCheck');
  const d = KUBEFED_CONFIG_DEFAULTS.clusterHealthCheck;
  durationField(e, health, 'period', 'spec.clusterHealthCheck', d.periodSeconds);
  durationField(e, health, 'timeout', 'spec.clusterHealthCheck', d.timeoutSeconds);
  positiveIntegerField(e, health, 'failureThreshold', 'spec.clusterHealthCheck');
  positiveIntegerField(e, health, 'successThreshold', 'spec.clusterHealthCheck');
  const sync = section(e, spec, 'syncController');
  positiveIntegerField(e, sync, 'maxConcurrentReconciles', 'spec.syncController');
  if (sync.adoptResources !== undefined && sync.adoptResources !== null) e.enumValue('spec.syncController.adoptResources', sync.adoptResources, ENABLED);
  positiveIntegerField(e, section(e, spec, 'statusController'), 'maxConcurrentReconciles', 'spec.statusController');
  e.list.push(...validateAnnotationPolicy(spec.annotationPolicy));
  return e.list;
}

// ---- Federated<Kind>

/** A JSON pointer (RFC 6901) to something inside the document: starts with '/', '~' only as ~0 or ~1. */
function isJsonPointer(path: string): boolean {
  return path.startsWith('/') && !/~(?![01])/.test(path);
}

/**
 * `target`: the type the FederatedTypeConfig names (undefined when no FTC names this federated
 * type any more: the template's apiVersion/kind are then not checked).
 */
export function validateFederatedObject(obj: KubeObject, target: TargetType | undefined): FieldError[] {
  const e = new Errors();
  const spec = obj.spec;
  if (!isObject(spec)) {
    e.required('spec');
    return e.list;
  }
  if (target && target.group === '' && target.plural === 'namespaces' && obj.metadata.name !== undefined && obj.metadata.name !== obj.metadata.namespace) {
    e.invalid('metadata.name', obj.metadata.name, 'the name of a federated namespace must match the name of its containing namespace');
  }
  validateTemplate(e, spec.template, target);
  validatePlacement(e, spec.placement);
  validateOverrides(e, spec.overrides);
  e.list.push(...validatePlacementMask(spec.placementMask));
  if (spec.retainReplicas !== undefined && spec.retainReplicas !== null && typeof spec.retainReplicas !== 'boolean') e.invalid('spec.retainReplicas', spec.retainReplicas, 'must be a boolean');
  return e.list;
}

function validateTemplate(e: Errors, template: unknown, target: TargetType | undefined): void {
  if (template === undefined || template === null) return;
  if (!isObject(template)) return e.invalid('spec.template', template, 'must be an object');
  if (!target) return;
  const apiVersion = groupVersion(target);
  if (template.apiVersion !== undefined && template.apiVersion !== apiVersion) e.add('spec.template.apiVersion', `Unsupported value: ${JSON.stringify(template.apiVersion)}: supported values: "${apiVersion}"`);
  if (template.kind !== undefined && template.kind !== target.kind) e.add('spec.template.kind', `Unsupported value: ${JSON.stringify(template.kind)}: supported values: "${target.kind}"`);
}

function validatePlacement(e: Errors, placement: unknown): void {
  if (placement === undefined || placement === null) return;
  if (!isObject(placement)) return e.invalid('spec.placement', placement, 'must be an object');
  const clusters = placement.clusters;
  if (clusters !== undefined && clusters !== null) {
    if (!Array.isArray(clusters)) e.add('spec.placement.clusters', 'Invalid value: must be a list');
    else
      clusters.forEach((c: unknown, i) => {
        const at = `spec.placement.clusters[${i}].name`;
        const name = isObject(c) ? c.name : undefined;
        if (name === undefined || name === '') e.required(at);
        else if (typeof name !== 'string' || !isDnsLabel(name)) e.invalid(at, name, 'a cluster name must be a lowercase RFC 1123 label');
      });
  }
  if (placement.clusterSelector !== undefined && placement.clusterSelector !== null) e.list.push(...validateLabelSelector(placement.clusterSelector, 'spec.placement.clusterSelector'));
}

function validateOverrides(e: Errors, overrides: unknown): void {
  if (overrides === undefined || overrides === null) return;
  if (!Array.isArray(overrides)) return e.add('spec.overrides', 'Invalid value: must be a list');
  const clusters = new Set<string>();
  overrides.forEach((item: unknown, i) => {
    const at = `spec.overrides[${i}]`;
    if (!isObject(item)) return e.invalid(at, item, 'must be an object');
    const cluster = item.clusterName;
    // An entry is for one cluster (clusterName) or for the clusters a label selector matches (clusterSelector, e.g. a cell).
    const bySelector = item.clusterSelector !== undefined && item.clusterSelector !== null;
    if (bySelector && cluster !== undefined && cluster !== '') e.add(at, 'Invalid value: give clusterName or clusterSelector, not both');
    else if (bySelector) e.list.push(...validateLabelSelector(item.clusterSelector, `${at}.clusterSelector`));
    else if (cluster === undefined || cluster === '') e.add(`${at}.clusterName`, 'Required value: clusterName or clusterSelector');
    else if (typeof cluster !== 'string') e.invalid(`${at}.clusterName`, cluster, 'must be a string');
    else if (clusters.has(cluster)) e.add(`${at}.clusterName`, `Duplicate value: ${JSON.stringify(cluster)}`);
    else clusters.add(cluster);
    const ops = item.clusterOverrides;
    if (ops === undefined || ops === null) return;
    if (!Array.isArray(ops)) return e.add(`${at}.clusterOverrides`, 'Invalid value: must be a list');
    const paths = new Set<string>();
    ops.forEach((raw: unknown, j) => {
      const opAt = `${at}.clusterOverrides[${j}]`;
      if (!isObject(raw)) return e.invalid(opAt, raw, 'must be an object');
      const op = raw.op ?? '';
      if (op !== '' && op !== 'add' && op !== 'remove' && op !== 'replace') e.add(`${opAt}.op`, `Unsupported value: ${JSON.stringify(op)}: supported values: "add", "remove", "replace"`);
      const path = raw.path;
      if (path === undefined || path === null) e.required(`${opAt}.path`);
      else if (typeof path !== 'string' || !isJsonPointer(path)) e.invalid(`${opAt}.path`, path, "must be a JSON pointer starting with '/'");
      else if (FORBIDDEN_OVERRIDE_PATHS.has(path)) e.add(`${opAt}.path`, `Forbidden: ${path} may not be overridden`);
      else if (paths.has(path)) e.add(`${opAt}.path`, `Duplicate value: ${JSON.stringify(path)}`);
      else paths.add(path);
      // op absent means replace, which needs a value like add does.
      if ((op === '' || op === 'add' || op === 'replace') && !('value' in raw)) e.required(`${opAt}.value`);
    });
  });
}
