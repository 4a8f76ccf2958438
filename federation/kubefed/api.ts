// The KubeFed v0.10 API as our federation API server serves it: group, version, kind and field
// names exactly as KubeFed's, so existing KubeFed YAML applies unchanged. Constants, the core
// resource types, and pure readers of FederatedTypeConfig and KubeFedConfig objects.
import type { KubeObject } from '../apiserver/storage.js';
import { groupVersion, type ResourceType } from '../apiserver/types.js';
import { isDnsSubdomain } from '../apiserver/validation.js';
import { annotationPolicyOf, DEFAULT_ANNOTATION_POLICY, type AnnotationPolicy } from './annotation-policy.js';
import { parseGoDuration } from './duration.js';

export const CORE_GROUP = 'core.kubefed.io';
export const TYPES_GROUP = 'types.kubefed.io';
export const KUBEFED_VERSION = 'v1beta1';
export const KUBEFED_NAMESPACE = 'kube-federation-system';
export const MANAGED_LABEL = 'kubefed.io/managed';
export const ORPHAN_ANNOTATION = 'kubefed.io/orphan';
/** JSON DeleteOptions the controller uses when it deletes the member objects of a federated object. */
export const DELETE_OPTION_ANNOTATION = 'kubefed.io/deleteoption';
export const SYNC_FINALIZER = 'kubefed.io/sync-controller';
/** On a KubeFedCluster being unjoined with fedctl unjoin --delete-propagated: the controller deletes what it propagated there, then removes it. */
export const UNJOIN_FINALIZER = 'fedtunnel.io/unjoin-delete-propagated';
/**
 * The tenant a KubeFedCluster, a Namespace or a FederatedNamespace (its template) belongs to
 * (README "Tenants"). On a KubeFedCluster it must equal the tenant of its agent's certificate.
 */
export const TENANT_LABEL = 'fedtunnel.io/tenant';
/** The deployment unit (cell) of a KubeFedCluster; like the tenant label, only admins change it. */
export const CELL_LABEL = 'fedtunnel.io/cell';
/** KubeFed reads its configuration from the KubeFedConfig of this name in KUBEFED_NAMESPACE. */
export const KUBEFED_CONFIG_NAME = 'kubefed';

function coreType(kind: string, plural: string, hasStatus: boolean, shortNames?: string[]): ResourceType {
  return {
    group: CORE_GROUP,
    version: KUBEFED_VERSION,
    kind,
    plural,
    singular: kind.toLowerCase(),
    namespaced: true,
    ...(shortNames ? { shortNames } : {}),
    hasStatus,
    crd: { name: `${plural}.${CORE_GROUP}`, storageVersion: KUBEFED_VERSION, conversion: { strategy: 'None' } },
  };
}

export const KUBEFED_CLUSTER: ResourceType = coreType('KubeFedCluster', 'kubefedclusters', true, ['kfc']);
export const FEDERATED_TYPE_CONFIG: ResourceType = coreType('FederatedTypeConfig', 'federatedtypeconfigs', true, ['ftc']);
export const KUBEFED_CONFIG: ResourceType = coreType('KubeFedConfig', 'kubefedconfigs', false);
export const CORE_TYPES: readonly ResourceType[] = [KUBEFED_CLUSTER, FEDERATED_TYPE_CONFIG, KUBEFED_CONFIG];

/** A Kubernetes type that KubeFed propagates to member clusters. */
export interface TargetType {
  /** '' for the core group. */
  group: string;
  version: string;
  kind: string;
  plural: string;
  namespaced: boolean;
}

export interface FederatedTypeInfo {
  /** `<plural>[.<group>]` of the target type. */
  ftcName: string;
  target: TargetType;
  /** The Federated<Kind> type, as its CRD registers it. */
  federated: ResourceType;
  propagation: 'Enabled' | 'Disabled';
  statusCollection: boolean;
}

export class KubeFedApiError extends Error {
  override readonly name = 'KubeFedApiError';
  constructor(
    readonly code: 'InvalidTypeName' | 'InvalidTypeConfig',
    message: string,
  ) {
    super(message);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const DNS_1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

export function isDns1035Label(s: string): boolean {
  return s.length <= 63 && DNS_1035_LABEL.test(s);
}

/** `<plural>[.<group>]`: the FederatedTypeConfig name of a type (KubeFed's GroupQualifiedName). */
export function groupQualifiedName(t: { plural: string; group: string }): string {
  return t.group === '' ? t.plural : `${t.plural}.${t.group}`;
}

/** "deployments.apps" → {plural: "deployments", group: "apps"}; "configmaps" → group "". Splits at the first dot, like KubeFed. */
export function parseTargetTypeName(name: string): { plural: string; group: string } {
  const dot = name.indexOf('.');
  const plural = dot < 0 ? name : name.slice(0, dot);
  const group = dot < 0 ? '' : name.slice(dot + 1);
  if (!isDns1035Label(plural)) throw new KubeFedApiError('InvalidTypeName', `invalid type name ${JSON.stringify(name)}: the plural must be a lowercase RFC 1035 label`);
  if (dot >= 0 && !isDnsSubdomain(group)) throw new KubeFedApiError('InvalidTypeName', `invalid type name ${JSON.stringify(name)}: the group must be a DNS subdomain`);
  return { plural, group };
}

/** Whether the FTC of this name federates namespaces: its federated type is then namespaced (it lives in the namespace it federates). */
export function isNamespaceTypeName(ftcName: string): boolean {
  return ftcName === 'namespaces';
}

/** The FederatedTypeConfig `kubefedctl enable` writes for a target type (KubeFed's default federated group and version). */
export function federatedTypeConfigFor(target: TargetType): KubeObject {
  const name = groupQualifiedName(target);
  const scope = (namespaced: boolean): string => (namespaced ? 'Namespaced' : 'Cluster');
  return {
    apiVersion: groupVersion(FEDERATED_TYPE_CONFIG),
    kind: FEDERATED_TYPE_CONFIG.kind,
    metadata: { name, namespace: KUBEFED_NAMESPACE },
    spec: {
      targetType: { ...(target.group ? { group: target.group } : {}), version: target.version, kind: target.kind, pluralName: target.plural, scope: scope(target.namespaced) },
      propagation: 'Enabled',
      federatedType: {
        group: TYPES_GROUP,
        version: KUBEFED_VERSION,
        kind: `Federated${target.kind}`,
        pluralName: `federated${target.plural}`,
        scope: scope(target.namespaced || isNamespaceTypeName(name)),
      },
    },
  };
}

/**
 * The types a (valid) FederatedTypeConfig names. An empty targetType.group takes the group from the
 * FTC name, as KubeFed's defaulting does. Throws KubeFedApiError for an object admission would reject.
 */
export function typeInfoFromFtc(ftc: KubeObject): FederatedTypeInfo {
  const ftcName = ftc.metadata.name ?? '';
  const spec = isObject(ftc.spec) ? ftc.spec : {};
  const targetSpec = isObject(spec.targetType) ? spec.targetType : {};
  const fedSpec = isObject(spec.federatedType) ? spec.federatedType : {};
  const str = (v: unknown): string => (typeof v === 'string' ? v : '');
  const fromName = ftcName.includes('.') ? ftcName.slice(ftcName.indexOf('.') + 1) : '';
  const target: TargetType = {
    group: str(targetSpec.group) || fromName,
    version: str(targetSpec.version),
    kind: str(targetSpec.kind),
    plural: str(targetSpec.pluralName),
    namespaced: targetSpec.scope === 'Namespaced',
  };
  const fed = { group: str(fedSpec.group), version: str(fedSpec.version), kind: str(fedSpec.kind), plural: str(fedSpec.pluralName) };
  if (!target.version || !target.kind || !target.plural || !fed.group || !fed.version || !fed.kind || !fed.plural) {
    throw new KubeFedApiError('InvalidTypeConfig', `FederatedTypeConfig ${JSON.stringify(ftcName)} does not name its target and federated types`);
  }
  const federated: ResourceType = {
    ...fed,
    singular: fed.kind.toLowerCase(),
    namespaced: fedSpec.scope === 'Namespaced',
    hasStatus: true,
    crd: { name: `${fed.plural}.${fed.group}`, storageVersion: fed.version, conversion: { strategy: 'None' } },
  };
  return {
    ftcName,
    target,
    federated,
    propagation: spec.propagation === 'Disabled' ? 'Disabled' : 'Enabled',
    statusCollection: spec.statusCollection === 'Enabled',
  };
}

export interface KubeFedConfigValues {
  clusterHealthCheck: { periodSeconds: number; timeoutSeconds: number; failureThreshold: number; successThreshold: number };
  syncController: { maxConcurrentReconciles: number; adoptResources: 'Enabled' | 'Disabled' };
  /** Our extension: the annotation policy of every type whose FederatedTypeConfig states none. */
  annotationPolicy: AnnotationPolicy;
}

/** KubeFed's defaults (pkg/apis/core/v1beta1/defaults). */
export const KUBEFED_CONFIG_DEFAULTS: KubeFedConfigValues = {
  clusterHealthCheck: { periodSeconds: 10, timeoutSeconds: 3, failureThreshold: 3, successThreshold: 1 },
  syncController: { maxConcurrentReconciles: 1, adoptResources: 'Enabled' },
  annotationPolicy: DEFAULT_ANNOTATION_POLICY,
};

function positiveSeconds(v: unknown, fallback: number): number {
  const s = typeof v === 'string' ? parseGoDuration(v) : null;
  return s !== null && s > 0 ? s : fallback;
}

function positiveInteger(v: unknown, fallback: number): number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 ? v : fallback;
}

/** The settings of a KubeFedConfig (null: none stored), durations in seconds, KubeFed's defaults for what is unset. */
export function kubeFedConfigValues(obj: KubeObject | null): KubeFedConfigValues {
  const spec = obj && isObject(obj.spec) ? obj.spec : {};
  const health = isObject(spec.clusterHealthCheck) ? spec.clusterHealthCheck : {};
  const sync = isObject(spec.syncController) ? spec.syncController : {};
  const d = KUBEFED_CONFIG_DEFAULTS;
  return {
    clusterHealthCheck: {
      periodSeconds: positiveSeconds(health.period, d.clusterHealthCheck.periodSeconds),
      timeoutSeconds: positiveSeconds(health.timeout, d.clusterHealthCheck.timeoutSeconds),
      failureThreshold: positiveInteger(health.failureThreshold, d.clusterHealthCheck.failureThreshold),
      successThreshold: positiveInteger(health.successThreshold, d.clusterHealthCheck.successThreshold),
    },
    syncController: {
      maxConcurrentReconciles: positiveInteger(sync.maxConcurrentReconciles, d.syncController.maxConcurrentReconciles),
      adoptResources: sync.adoptResources === 'Disabled' ? 'Disabled' : d.syncController.adoptResources,
    },
    annotationPolicy: annotationPolicyOf(spec) ?? d.annotationPolicy,
  };
}

/**
 * The URL of a KubeFedCluster's spec.apiEndpoint. Like client-go (which KubeFed uses), an endpoint
 * without a scheme ("10.0.0.1:6443") means https. Throws TypeError when it is not a URL.
 */
export function apiEndpointUrl(endpoint: string): URL {
  return new URL(/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(endpoint) ? endpoint : `https://${endpoint}`);
}
