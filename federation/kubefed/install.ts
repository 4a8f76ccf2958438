// Serves the KubeFed API on a federation API server: the core.kubefed.io CRDs, the namespace
// kube-federation-system, admission for every KubeFed type, and the FederatedTypeConfig hook that
// keeps each Federated<Kind> CRD in step with its FTC.
//
// Deleting an FTC leaves its Federated<Kind> CRD (and the federated objects) in place, as KubeFed
// does: removing a CRD deletes every object of it, which must be an explicit act (delete the CRD),
// not a side effect of turning propagation configuration off.
import { Registry } from 'prom-client';
import type { Logger } from '../../common/log.js';
import { CRD_TYPE } from '../apiserver/crd.js';
import { ApiError, errors } from '../apiserver/errors.js';
import type { AdmissionRequest, Resources } from '../apiserver/resources.js';
import type { KubeObject } from '../apiserver/storage.js';
import { MEMBER_TYPES, NAMESPACES, type ResourceType } from '../apiserver/types.js';
import type { FieldError } from '../apiserver/validation.js';
import { Informer } from '../controller/informer.js';
import { localListWatch } from '../controller/sources.js';
import { FEDERATED_TYPE_CONFIG, isNamespaceTypeName, KUBEFED_CLUSTER, KUBEFED_CONFIG, KUBEFED_NAMESPACE, KubeFedApiError, TENANT_LABEL, TYPES_GROUP, typeInfoFromFtc, type FederatedTypeInfo, type TargetType } from './api.js';
import { KubeFedAdmissionMetrics } from './metrics.js';
import {
  admitClusterLabels,
  admitExplicitPlacement,
  admitNamespaceTenant,
  labelTenant,
  namespaceTenant,
  placementClusterNames,
  templateTenant,
  type TenantCluster,
  type TenantRefusal,
  type UntenantedPlacement,
} from './tenancy.js';
import { coreCrds, crdFor, crdServesSame, federatedCrdFor, type TopologyWebhookConfig } from './crds.js';
import { defaultFederatedTypeConfigs } from './defaults.js';
import { CLUSTER_PROPAGATED_VERSION, PROPAGATED_VERSION } from './propagated-version.js';
import { validateFederatedObject, validateFederatedTypeConfig, validateKubeFedCluster, validateKubeFedConfig } from './validation.js';

function sameType(a: ResourceType, b: ResourceType): boolean {
  return a.group === b.group && a.plural === b.plural;
}

function isReason(err: unknown, reason: string): boolean {
  return err instanceof ApiError && err.reason === reason;
}

/** What tenant admission needs from outside the federation: the hub's agent identities, and the placement policy. */
export interface TenancyOptions {
  /** The tenant of a cluster's agent certificate (the proxy-server's registry); absent: no agents known. */
  agentTenantOf?: (cluster: string) => string | undefined;
  untenantedPlacement: UntenantedPlacement;
}

export interface KubeFedInstallOptions {
  log: Logger;
  defaultTypes?: boolean;
  /** Also serve the cell form (v1beta2) of every Federated<Kind>, converted by this webhook. */
  topologyWebhook?: TopologyWebhookConfig;
  tenancy?: TenancyOptions;
  /** Where the admission metrics go (default: a registry of their own). */
  metrics?: Registry;
}

/**
 * Registers the core.kubefed.io CRDs (stored as CRD objects so kubectl sees them), admission
 * validation for every kubefed type (422 naming the field), and an FTC hook: creating/updating a
 * FederatedTypeConfig creates/updates the CRD of its Federated<Kind> (serving the cell form v1beta2
 * too when `topologyWebhook` says where its conversion webhook is). Idempotent at start-up; with
 * `defaultTypes`, also creates the default FTCs that do not exist yet (existing ones are the user's).
 */
export async function installKubeFed(resources: Resources, opts: KubeFedInstallOptions): Promise<{ stop(): void }> {
  const { log } = opts;
  const tenancy: TenancyOptions = opts.tenancy ?? { untenantedPlacement: 'untenanted' };
  const admissionMetrics = KubeFedAdmissionMetrics.of(opts.metrics ?? new Registry());
  /** Federated types by FTC name, from the stored FTCs. */
  const federatedTypes = new Map<string, FederatedTypeInfo>();

  const federatedInfo = (t: ResourceType): FederatedTypeInfo | undefined => [...federatedTypes.values()].find((info) => sameType(info.federated, t));

  const validate = (t: ResourceType, obj: KubeObject): FieldError[] => {
    // An object being deleted only loses finalizers: never block that (e.g. a rule its FTC added since).
    if (obj.metadata.deletionTimestamp) return [];
    if (sameType(t, KUBEFED_CLUSTER)) return validateKubeFedCluster(obj);
    if (sameType(t, KUBEFED_CONFIG)) return validateKubeFedConfig(obj);
    if (sameType(t, FEDERATED_TYPE_CONFIG)) {
      const others = new Set([...federatedTypes.values()].filter((i) => i.ftcName !== obj.metadata.name).map((i) => `${i.federated.group}/${i.federated.plural}`));
      return validateFederatedTypeConfig(obj, others);
    }
    const info = federatedInfo(t);
    if (info) return validateFederatedObject(obj, info.target);
    // A federated type whose FTC is gone keeps the generic checks (placement, overrides).
    if (t.group === TYPES_GROUP) return validateFederatedObject(obj, undefined);
    return [];
  };

  /** The stored object, or undefined when there is none. */
  const lookup = async (t: ResourceType, namespace: string | undefined, name: string): Promise<KubeObject | undefined> => {
    try {
      return await resources.get(t, namespace, name);
    } catch (err) {
      if (isReason(err, 'NotFound')) return undefined;
      throw err;
    }
  };

  const namespaceInfo = (): FederatedTypeInfo | undefined => [...federatedTypes.values()].find((info) => isNamespaceTypeName(info.ftcName));

  /** The tenant of a namespace; `fedNamespace`: the FederatedNamespace being written, if that is the object. */
  const tenantOfNamespace = async (namespace: string, fedNamespace?: KubeObject): Promise<string | undefined> => {
    const info = namespaceInfo();
    const fedType = info && (resources.registry.lookup(info.federated.group, info.federated.version, info.federated.plural) ?? info.federated);
    const fedNs = fedNamespace ?? (fedType ? await lookup(fedType, namespace, namespace) : undefined);
    return namespaceTenant(fedNs, await lookup(NAMESPACES, undefined, namespace));
  };

  const tenantRefusal = async ({ t, object, oldObject, user }: AdmissionRequest): Promise<TenantRefusal | null> => {
    const name = object.metadata.name ?? '';
    if (sameType(t, KUBEFED_CLUSTER)) {
      const agentTenant = tenancy.agentTenantOf?.(name);
      const refusal = admitClusterLabels({ name, oldLabels: oldObject ? (oldObject.metadata.labels ?? {}) : undefined, newLabels: object.metadata.labels, agentTenant, user });
      // Joined while its agent is connected: the tenant label comes with the join (else the controller injects it when the agent connects).
      if (!refusal && !oldObject && agentTenant !== undefined && labelTenant(object.metadata.labels) === undefined) object.metadata.labels = { ...(object.metadata.labels ?? {}), [TENANT_LABEL]: agentTenant };
      return refusal;
    }
    if (sameType(t, NAMESPACES)) {
      return oldObject ? admitNamespaceTenant({ kind: 'Namespace', name, oldTenant: labelTenant(oldObject.metadata.labels), newTenant: labelTenant(object.metadata.labels), user }) : null;
    }
    if (t.group !== TYPES_GROUP) return null;
    const isFedNamespace = federatedInfo(t) !== undefined && federatedInfo(t) === namespaceInfo();
    if (isFedNamespace && oldObject) {
      const changed = admitNamespaceTenant({ kind: t.kind, name, oldTenant: templateTenant(oldObject), newTenant: templateTenant(object), user });
      if (changed) return changed;
    }
    const named = placementClusterNames(object);
    if (named.length === 0) return null;
    const namespace = object.metadata.namespace;
    const objectTenant = namespace === undefined ? undefined : await tenantOfNamespace(namespace, isFedNamespace ? object : undefined);
    const clusters = new Map<string, TenantCluster>();
    for (const clusterName of new Set(named)) {
      const kfc = await lookup(KUBEFED_CLUSTER, KUBEFED_NAMESPACE, clusterName);
      if (kfc) clusters.set(clusterName, { name: clusterName, labels: kfc.metadata.labels ?? {}, agentTenant: tenancy.agentTenantOf?.(clusterName) });
    }
    return admitExplicitPlacement({ kind: t.kind, namespace, name, object, previous: oldObject, tenancy: { tenant: objectTenant, untenanted: tenancy.untenantedPlacement }, clusters });
  };

  const admit = async (request: AdmissionRequest): Promise<void> => {
    // An object being deleted only loses finalizers: never block that.
    if (request.object.metadata.deletionTimestamp) return;
    const refusal = await tenantRefusal(request);
    if (!refusal) return;
    admissionMetrics.refused(refusal);
    log.info({ user: request.user?.user, resource: request.t.plural, namespace: request.object.metadata.namespace, name: request.object.metadata.name, reason: refusal.reason }, `tenant admission refused a write: ${refusal.message}`);
    throw errors.forbidden(refusal.message);
  };

  /** Short names of a target type, from the types this server or a member serves. */
  const targetShortNames = (target: TargetType): string[] => {
    const known = resources.registry.lookup(target.group, target.version, target.plural) ?? MEMBER_TYPES.find((m) => m.group === target.group && m.plural === target.plural);
    return known?.shortNames ?? [];
  };

  /** Creates the CRD, or updates one that does not serve the same types; retries lost races. */
  const ensureCrd = async (crd: KubeObject): Promise<void> => {
    const name = crd.metadata.name!;
    for (let attempt = 0; ; attempt++) {
      try {
        let existing: KubeObject;
        try {
          existing = await resources.get(CRD_TYPE, undefined, name);
        } catch (err) {
          if (!isReason(err, 'NotFound')) throw err;
          await resources.create(CRD_TYPE, undefined, crd);
          log.info({ crd: name }, 'kubefed: CRD created');
          return;
        }
        if (crdServesSame(existing, crd)) return;
        await resources.update(CRD_TYPE, undefined, name, { ...existing, spec: crd.spec });
        log.info({ crd: name }, 'kubefed: CRD updated');
        return;
      } catch (err) {
        if (attempt < 3 && (isReason(err, 'AlreadyExists') || isReason(err, 'Conflict'))) continue;
        throw err;
      }
    }
  };

  const trackFtc = async (ftc: KubeObject): Promise<void> => {
    const info = typeInfoFromFtc(ftc);
    federatedTypes.set(info.ftcName, info);
    await ensureCrd(federatedCrdFor(info, targetShortNames(info.target), opts.topologyWebhook));
  };

  resources.hooks.push({
    validate,
    admit,
    written: async (t, obj, deleted) => {
      if (!sameType(t, FEDERATED_TYPE_CONFIG)) return;
      const name = obj.metadata.name!;
      if (deleted) {
        federatedTypes.delete(name);
        log.info({ ftc: name }, 'kubefed: FederatedTypeConfig deleted; its federated CRD stays');
        return;
      }
      // The FTC is stored: a failure here must not turn its write into an error. The next start
      // (or the next write of the FTC) creates the CRD.
      try {
        await trackFtc(obj);
      } catch (err) {
        log.error({ ftc: name, err: (err as Error).message }, 'kubefed: cannot create the federated CRD of a FederatedTypeConfig');
      }
    },
  });

  await resources.ensureNamespace(KUBEFED_NAMESPACE);
  for (const crd of coreCrds()) await ensureCrd(crd);
  // The controller's per-cluster applied-revision records (gray release).
  for (const t of [PROPAGATED_VERSION, CLUSTER_PROPAGATED_VERSION]) await ensureCrd(crdFor(t));
  const stored = await resources.list(FEDERATED_TYPE_CONFIG, KUBEFED_NAMESPACE, { labels: [], fields: [] });
  for (const ftc of stored.items) {
    try {
      await trackFtc(ftc);
    } catch (err) {
      // Stored before admission had today's rules: serve the rest rather than refuse to start.
      if (!(err instanceof KubeFedApiError)) throw err;
      log.warn({ ftc: ftc.metadata.name, err: err.message }, 'kubefed: stored FederatedTypeConfig is invalid: its type is not federated');
    }
  }
  // FTCs written through another replica sharing the store: their admission rules apply here too
  // (the replica that took the write created the federated CRD, which the CRD watch registers).
  const follow = (ftc: KubeObject): void => {
    try {
      federatedTypes.set(ftc.metadata.name!, typeInfoFromFtc(ftc));
    } catch (err) {
      if (!(err instanceof KubeFedApiError)) throw err;
    }
  };
  const ftcInformer = new Informer(localListWatch(resources, FEDERATED_TYPE_CONFIG, KUBEFED_NAMESPACE), {
    added: follow,
    updated: follow,
    deleted: (ftc) => federatedTypes.delete(ftc.metadata.name!),
    failed: (err) => log.warn({ err: err.message }, 'kubefed: FederatedTypeConfig watch failed; relisting'),
  });
  ftcInformer.start();
  if (opts.defaultTypes) {
    for (const ftc of defaultFederatedTypeConfigs()) {
      try {
        await resources.create(FEDERATED_TYPE_CONFIG, KUBEFED_NAMESPACE, ftc);
        log.info({ ftc: ftc.metadata.name }, 'kubefed: default FederatedTypeConfig created');
      } catch (err) {
        if (!isReason(err, 'AlreadyExists')) throw err;
      }
    }
  }
  return { stop: () => ftcInformer.stop() };
}
