// CustomResourceDefinition objects of the KubeFed types: the three core.kubefed.io kinds and the
// Federated<Kind> of each FederatedTypeConfig. They are stored like any CRD (federation/apiserver/
// crd.ts registers them), so `kubectl get crds` and discovery show them. Field checks are done by
// admission (validation.ts), so the schemas only describe the top-level shape. Pure.
import type { KubeObject } from '../apiserver/storage.js';
import type { ResourceType } from '../apiserver/types.js';
import { CORE_TYPES, KUBEFED_VERSION, TYPES_GROUP, type FederatedTypeInfo } from './api.js';

const PRESERVE = { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };

function schema(withStatus: boolean): object {
  return {
    openAPIV3Schema: {
      type: 'object',
      properties: { apiVersion: { type: 'string' }, kind: { type: 'string' }, metadata: { type: 'object' }, spec: PRESERVE, ...(withStatus ? { status: PRESERVE } : {}) },
      // As KubeFed's: a spec is required, even an empty one.
      required: ['spec'],
    },
  };
}

/** The CRD that registers `t` (one served storage version, status subresource when t.hasStatus). */
export function crdFor(t: ResourceType): KubeObject {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${t.plural}.${t.group}` },
    spec: {
      group: t.group,
      names: { kind: t.kind, listKind: `${t.kind}List`, plural: t.plural, singular: t.singular, ...(t.shortNames?.length ? { shortNames: [...t.shortNames] } : {}) },
      scope: t.namespaced ? 'Namespaced' : 'Cluster',
      versions: [{ name: t.version, served: true, storage: true, schema: schema(t.hasStatus), ...(t.hasStatus ? { subresources: { status: {} } } : {}) }],
    },
  };
}

export function coreCrds(): KubeObject[] {
  return CORE_TYPES.map(crdFor);
}

/** Where the API server reaches the topology (cell) conversion webhook: an https URL (through the tunnel) and its CA. */
export interface TopologyWebhookConfig {
  url: string;
  /** Base64 PEM bundle that signs the webhook's serving certificate (the CRD's clientConfig.caBundle). */
  caBundle: string;
}

/** The cell form every Federated<Kind> also serves when a topology webhook is configured. */
export const TOPOLOGY_VERSION = 'v1beta2';

/**
 * The CRD of a Federated<Kind>. `targetShortNames` are the target type's short names: like
 * `kubefedctl enable`, the federated type gets each with an "f" in front (deploy → fdeploy).
 * With `topologyWebhook`, a KubeFed-versioned type also serves v1beta2 (the cell form; the storage
 * version stays v1beta1), converted by that webhook; without one, v1beta1 only.
 */
export function federatedCrdFor(info: FederatedTypeInfo, targetShortNames: readonly string[] = [], topologyWebhook?: TopologyWebhookConfig): KubeObject {
  const shortNames = targetShortNames.map((s) => `f${s}`);
  const crd = crdFor({ ...info.federated, ...(shortNames.length ? { shortNames } : {}) });
  if (!topologyWebhook || info.federated.group !== TYPES_GROUP || info.federated.version !== KUBEFED_VERSION) return crd;
  const spec = crd.spec as { versions: Array<Record<string, unknown>> };
  return {
    ...crd,
    spec: {
      ...spec,
      versions: [...spec.versions, { ...spec.versions[0], name: TOPOLOGY_VERSION, served: true, storage: false }],
      conversion: { strategy: 'Webhook', webhook: { clientConfig: { url: topologyWebhook.url, caBundle: topologyWebhook.caBundle }, conversionReviewVersions: ['v1'] } },
    },
  };
}

/**
 * Whether an existing CRD already serves what `wanted` defines (group, kind, plural, scope, versions,
 * status subresource, webhook conversion). Its schema, short names and anything else may differ: a CRD a user applied from `kubefedctl
 * enable -o yaml` carries KubeFed's full schema and is left as it is.
 */
export function crdServesSame(existing: KubeObject, wanted: KubeObject): boolean {
  const shape = (crd: KubeObject): string => {
    const spec = (crd.spec ?? {}) as { group?: unknown; scope?: unknown; names?: Record<string, unknown>; versions?: Array<Record<string, unknown>> };
    return JSON.stringify({
      group: spec.group,
      scope: spec.scope,
      kind: spec.names?.kind,
      plural: spec.names?.plural,
      versions: (spec.versions ?? []).map((v) => ({ name: v.name, served: v.served, storage: v.storage, status: Boolean((v.subresources as { status?: unknown } | undefined)?.status) })),
      // A changed webhook address or CA (the topology webhook's flags) is applied too.
      conversion: (spec as { conversion?: { strategy?: unknown } }).conversion?.strategy === 'Webhook' ? (spec as { conversion?: unknown }).conversion : undefined,
    });
  };
  return shape(existing) === shape(wanted);
}
