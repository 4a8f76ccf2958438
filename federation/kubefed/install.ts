// Serves the KubeFed API on a federation API server: the core.kubefed.io CRDs, the namespace
// kube-federation-system, admission for every KubeFed type, and the FederatedTypeConfig hook that
// keeps each Federated<Kind> CRD in step with its FTC.
//
// Deleting an FTC leaves its Federated<Kind> CRD (and the federated objects) in place, as KubeFed
// does: removing a CRD deletes every object of it, which must be an explicit act (delete the CRD),
// not a side effect of turning propagation configuration off.
import type { Logger } from '../../common/log.js';
import { CRD_TYPE } from '../apiserver/crd.js';
import { ApiError } from '../apiserver/errors.js';
import type { Resources } from '../apiserver/resources.js';
import type { KubeObject } from '../apiserver/storage.js';
import { MEMBER_TYPES, type ResourceType } from '../apiserver/types.js';
import type { FieldError } from '../apiserver/validation.js';
import { FEDERATED_TYPE_CONFIG, KUBEFED_CLUSTER, KUBEFED_CONFIG, KUBEFED_NAMESPACE, KubeFedApiError, TYPES_GROUP, typeInfoFromFtc, type FederatedTypeInfo, type TargetType } from './api.js';
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

/**
 * Registers the core.kubefed.io CRDs (stored as CRD objects so kubectl sees them), admission
 * validation for every kubefed type (422 naming the field), and an FTC hook: creating/updating a
 * FederatedTypeConfig creates/updates the CRD of its Federated<Kind> (serving the cell form v1beta2
 * too when `topologyWebhook` says where its conversion webhook is). Idempotent at start-up; with
 * `defaultTypes`, also creates the default FTCs that do not exist yet (existing ones are the user's).
 */
export async function installKubeFed(resources: Resources, opts: { log: Logger; defaultTypes?: boolean; topologyWebhook?: TopologyWebhookConfig }): Promise<void> {
  const { log } = opts;
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
}
