// CustomResourceDefinitions (apiextensions.k8s.io/v1): the TypeRegistry follows the CRD objects in
// the store (list + watch), so every API server sharing a store — every hub replica — serves the
// types of a CRD written through any of them, and stops serving them when it is deleted anywhere.
// The replica that takes the write also registers at once (read-your-writes for its client); the
// watch event then finds the registration already in place. Deleting a CRD removes its objects
// (done once, by the replica that took the delete).
import type { Logger } from '../../common/log.js';
import { Informer } from '../controller/informer.js';
import { localListWatch } from '../controller/sources.js';
import { StoreError, type Store } from '../store/types.js';
import { Converter, type ConverterOptions, type Dialer } from './conversion.js';
import type { Resources } from './resources.js';
import { typePrefix, type KubeObject } from './storage.js';
import type { CrdVersioning, ResourceType, TypeRegistry } from './types.js';
import { isDnsLabel, isDnsSubdomain, type FieldError } from './validation.js';

export const CRD_TYPE: ResourceType = {
  group: 'apiextensions.k8s.io',
  version: 'v1',
  kind: 'CustomResourceDefinition',
  plural: 'customresourcedefinitions',
  singular: 'customresourcedefinition',
  namespaced: false,
  shortNames: ['crd', 'crds'],
  hasStatus: true,
};

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCrdType(t: ResourceType): boolean {
  return t.group === CRD_TYPE.group && t.plural === CRD_TYPE.plural;
}

const VERSION_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const KIND_NAME = /^[A-Z][A-Za-z0-9]*$/;

/** Field errors of a CRD object (spec shape, names, exactly one storage version, conversion). */
export function validateCrd(obj: KubeObject, registry?: TypeRegistry): FieldError[] {
  const errs: FieldError[] = [];
  const bad = (field: string, message: string): void => void errs.push({ field, message });
  const spec = obj.spec;
  if (!isObject(spec)) return [{ field: 'spec', message: 'Required value' }];
  const group = spec.group;
  if (typeof group !== 'string' || group === '' || !isDnsSubdomain(group) || !group.includes('.')) bad('spec.group', `Invalid value: ${JSON.stringify(group)}: should be a domain with at least one dot`);
  const names = isObject(spec.names) ? spec.names : undefined;
  if (!names) bad('spec.names', 'Required value');
  const plural = names?.plural;
  if (typeof plural !== 'string' || !isDnsLabel(plural)) bad('spec.names.plural', `Invalid value: ${JSON.stringify(plural)}: a lowercase RFC 1123 label is required`);
  if (names?.singular !== undefined && (typeof names.singular !== 'string' || !isDnsLabel(names.singular))) bad('spec.names.singular', `Invalid value: ${JSON.stringify(names.singular)}: a lowercase RFC 1123 label is required`);
  if (typeof names?.kind !== 'string' || !KIND_NAME.test(names.kind)) bad('spec.names.kind', `Invalid value: ${JSON.stringify(names?.kind)}: must start with an upper case letter and be alphanumeric`);
  if (names?.shortNames !== undefined && (!Array.isArray(names.shortNames) || names.shortNames.some((s) => typeof s !== 'string' || !isDnsLabel(s)))) bad('spec.names.shortNames', 'Invalid value: must be lowercase RFC 1123 labels');
  if (typeof plural === 'string' && typeof group === 'string' && obj.metadata.name !== `${plural}.${group}`) bad('metadata.name', `Invalid value: ${JSON.stringify(obj.metadata.name)}: must be spec.names.plural+"."+spec.group`);
  if (spec.scope !== 'Namespaced' && spec.scope !== 'Cluster') bad('spec.scope', `Unsupported value: ${JSON.stringify(spec.scope)}: supported values: "Cluster", "Namespaced"`);
  const versions = spec.versions;
  if (!Array.isArray(versions) || versions.length === 0) {
    bad('spec.versions', 'Required value: must have at least one version');
  } else {
    const seen = new Set<string>();
    let storage = 0;
    versions.forEach((v: unknown, i) => {
      if (!isObject(v)) return bad(`spec.versions[${i}]`, 'Invalid value: must be an object');
      if (typeof v.name !== 'string' || !VERSION_NAME.test(v.name)) bad(`spec.versions[${i}].name`, `Invalid value: ${JSON.stringify(v.name)}`);
      else if (seen.has(v.name)) bad(`spec.versions[${i}].name`, `Duplicate value: ${JSON.stringify(v.name)}`);
      else seen.add(v.name);
      if (typeof v.served !== 'boolean') bad(`spec.versions[${i}].served`, 'Required value');
      if (typeof v.storage !== 'boolean') bad(`spec.versions[${i}].storage`, 'Required value');
      if (v.storage === true) storage++;
    });
    if (storage !== 1) bad('spec.versions', `Invalid value: must have exactly one version marked as storage version (has ${storage})`);
  }
  const conversion = spec.conversion;
  if (conversion !== undefined) {
    if (!isObject(conversion)) bad('spec.conversion', 'Invalid value: must be an object');
    else if (conversion.strategy === 'Webhook') {
      const webhook = isObject(conversion.webhook) ? conversion.webhook : undefined;
      const cc = webhook && isObject(webhook.clientConfig) ? webhook.clientConfig : undefined;
      if (!cc) bad('spec.conversion.webhook.clientConfig', 'Required value');
      else {
        let url: URL | undefined;
        try {
          url = typeof cc.url === 'string' ? new URL(cc.url) : undefined;
        } catch {
          url = undefined;
        }
        if (!url || url.protocol !== 'https:') bad('spec.conversion.webhook.clientConfig.url', 'Invalid value: an https URL is required (service references are not supported)');
        if (cc.caBundle !== undefined && (typeof cc.caBundle !== 'string' || !Buffer.from(cc.caBundle, 'base64').toString('utf8').includes('-----BEGIN CERTIFICATE-----'))) {
          bad('spec.conversion.webhook.clientConfig.caBundle', 'Invalid value: must be a base64 PEM bundle');
        }
      }
      const crv = webhook?.conversionReviewVersions;
      if (!Array.isArray(crv) || !crv.includes('v1')) bad('spec.conversion.webhook.conversionReviewVersions', 'Unsupported value: must include "v1"');
    } else if (conversion.strategy !== 'None' && conversion.strategy !== undefined) bad('spec.conversion.strategy', `Unsupported value: ${JSON.stringify(conversion.strategy)}: supported values: "None", "Webhook"`);
  }
  if (errs.length === 0 && registry) {
    const clash = registry.all().find((t) => t.group === group && t.plural === plural && t.crd?.name !== obj.metadata.name);
    if (clash) bad('spec.names.plural', `Invalid value: ${JSON.stringify(plural)}: already served in group ${String(group)}`);
  }
  return errs;
}

/** The ResourceTypes of a valid CRD: one per served version. */
export function crdTypes(obj: KubeObject): ResourceType[] {
  const spec = obj.spec as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  const versions = spec.versions as Array<{ name: string; served: boolean; storage: boolean; subresources?: { status?: unknown } }>;
  const webhook = spec.conversion?.strategy === 'Webhook' ? spec.conversion.webhook : undefined;
  const crd: CrdVersioning = {
    name: obj.metadata.name!,
    storageVersion: versions.find((v) => v.storage)!.name,
    conversion: webhook
      ? { strategy: 'Webhook', url: webhook.clientConfig.url as string, caBundle: webhook.clientConfig.caBundle as string | undefined, conversionReviewVersions: webhook.conversionReviewVersions as string[] }
      : { strategy: 'None' },
  };
  const names = spec.names as { kind: string; plural: string; singular?: string; shortNames?: string[] };
  return versions
    .filter((v) => v.served)
    .map((v) => ({
      group: spec.group as string,
      version: v.name,
      kind: names.kind,
      plural: names.plural,
      singular: names.singular ?? names.kind.toLowerCase(),
      namespaced: spec.scope === 'Namespaced',
      ...(names.shortNames?.length ? { shortNames: [...names.shortNames] } : {}),
      hasStatus: v.subresources?.status !== undefined && v.subresources.status !== null,
      crd,
    }));
}

export interface CrdSupportOptions {
  dialer?: Dialer;
  conversionTimeoutMs?: number;
  onWebhookCall?: ConverterOptions['onWebhookCall'];
  log: Logger;
}

export interface CrdSupport {
  /** Stops following the store's CRDs (server shutdown). */
  stop(): void;
}

/** Orders CRD versions seen by the local write hook and by the watch: an older version never replaces a newer one. */
function revisionOf(obj: KubeObject): number {
  return Number(obj.metadata.resourceVersion ?? 0) || 0;
}

/**
 * Serves customresourcedefinitions on `resources` and keeps the registry in step with the CRDs in
 * the store. Resolves once the stored CRDs are registered; call before the server listens.
 */
export async function installCrdSupport(resources: Resources, options: CrdSupportOptions): Promise<CrdSupport> {
  const { registry, store } = resources;
  const { log } = options;
  if (!registry.lookup(CRD_TYPE.group, CRD_TYPE.version, CRD_TYPE.plural)) registry.add(CRD_TYPE);
  resources.versions.converter ??= new Converter({ dialer: options.dialer, timeoutMs: options.conversionTimeoutMs, onWebhookCall: options.onWebhookCall });

  /** Per CRD name, the newest revision applied to the registry (kept after a delete, so a late older event is ignored). */
  const applied = new Map<string, number>();
  const newer = (obj: KubeObject): boolean => revisionOf(obj) >= (applied.get(obj.metadata.name!) ?? 0);
  const unregister = (name: string): void => registry.removeWhere((t) => t.crd?.name === name);
  const register = (obj: KubeObject, origin: 'write' | 'store'): void => {
    const name = obj.metadata.name!;
    if (!newer(obj)) return;
    applied.set(name, revisionOf(obj));
    const errs = validateCrd(obj, registry);
    if (errs.length > 0) {
      log.warn({ crd: name, errors: errs }, 'stored CRD is invalid: not served');
      return unregister(name);
    }
    const next = crdTypes(obj);
    const served = registry.all().filter((t) => t.crd?.name === name);
    // The watch echo of a local write (or a status-only update) changes nothing: leave the registry (and its listeners) alone.
    if (JSON.stringify(served) === JSON.stringify(next.map((t) => ({ ...t, shortNames: t.shortNames ? [...t.shortNames] : undefined })))) return;
    unregister(name);
    for (const t of next) registry.add(t);
    if (origin === 'store') log.info({ crd: name, versions: next.map((t) => t.version) }, 'CRD registered from the store');
  };
  const forget = (obj: KubeObject): void => {
    if (!newer(obj)) return;
    // Past the deleted version but before any later write: a late event of that version does not bring it back.
    applied.set(obj.metadata.name!, revisionOf(obj) + 0.5);
    unregister(obj.metadata.name!);
  };

  resources.hooks.push({
    validate: (t, obj) => (isCrdType(t) ? validateCrd(obj, registry) : []),
    written: (t, obj, deleted) => {
      if (!isCrdType(t)) return;
      if (deleted) {
        forget(obj);
        // Like Kubernetes, the objects of a deleted CRD go with it (watchers see DELETED events).
        // Read from the deleted object, not the registry: the watch may have unregistered it already.
        const served = validateCrd(obj).length === 0 ? crdTypes(obj)[0] : undefined;
        if (served) return deleteAll(store, served);
        return;
      }
      register(obj, 'write');
    },
  });

  let resolveSynced!: () => void;
  const synced = new Promise<void>((resolve) => (resolveSynced = resolve));
  const informer = new Informer(localListWatch(resources, CRD_TYPE), {
    added: (obj) => register(obj, 'store'),
    updated: (obj) => register(obj, 'store'),
    deleted: (obj) => {
      if (registry.all().some((t) => t.crd?.name === obj.metadata.name)) log.info({ crd: obj.metadata.name }, 'CRD deleted in the store: no longer served');
      forget(obj);
    },
    synced: resolveSynced,
    failed: (err) => log.warn({ err: err.message }, 'CRD watch failed; relisting'),
  });
  informer.start();
  await synced;
  return { stop: () => informer.stop() };
}

/** Deletes every stored object of a custom resource type (its CRD is gone). */
async function deleteAll(store: Store, t: ResourceType): Promise<void> {
  const prefix = typePrefix({ ...t, namespaced: false });
  for (;;) {
    const page = await store.list(prefix, { limit: 500 });
    for (const kv of page.items) {
      try {
        await store.delete(kv.key, kv.modRevision);
      } catch (err) {
        // Changed or deleted meanwhile: the next page read sees it again (or not at all).
        if (!(err instanceof StoreError && (err.code === 'CONFLICT' || err.code === 'NOT_FOUND'))) throw err;
      }
    }
    if (!page.more) return;
  }
}
