// Resource operations on the store (no HTTP here): list/get/create/update/patch/delete with
// Kubernetes semantics (resourceVersion, uid, generation, finalizers, status subresource).
import { randomBytes, randomUUID } from 'node:crypto';
import { StoreError, type Store } from '../store/types.js';
import { ApiError, errors } from './errors.js';
import { MAX_BODY_DEPTH, nestedDeeperThan } from './body.js';
import { applyPatch, PatchError } from './patch.js';
import { matchFields, matchLabels, pinnedField, type FieldRequirement, type LabelRequirement } from './selectors.js';
import { decodeContinue, decodeObject, encodeContinue, encodeObject, objectKey, typePrefix, type KubeObject } from './storage.js';
import type { UserInfo } from './authz.js';
import { groupVersion, NAMESPACES, type ResourceType, type TypeRegistry } from './types.js';
import { validateObject, type FieldError } from './validation.js';
import { VersionConverter } from './versions.js';


export interface ListOptions {
  labels: LabelRequirement[];
  fields: FieldRequirement[];
  limit?: number;
  continueToken?: string;
}

export interface ListOutcome {
  items: KubeObject[];
  resourceVersion: string;
  continueToken?: string;
}

export function mapStoreError(err: unknown, t?: ResourceType, name?: string): never {
  if (err instanceof ApiError) throw err;
  if (err instanceof StoreError) {
    switch (err.code) {
      case 'NOT_FOUND':
        throw errors.notFound(t?.group ?? '', t?.plural ?? '', name ?? '');
      case 'ALREADY_EXISTS':
        throw errors.alreadyExists(t?.group ?? '', t?.plural ?? '', name ?? '');
      case 'CONFLICT':
        throw errors.conflict(t?.group ?? '', t?.plural ?? '', name ?? '', 'the object has been modified; please apply your changes to the latest version and try again');
      case 'COMPACTED':
        throw errors.expired('The resourceVersion for the provided list is too old.');
      case 'FUTURE_REVISION':
        throw errors.tooLargeResourceVersion(0);
      // The store's message (which names the database error) goes to the log with the cause, not to the client.
      case 'UNAVAILABLE':
        throw withCause(errors.unavailable('storage is unavailable'), err);
      case 'NO_SPACE':
        throw withCause(errors.insufficientStorage('storage is full: the write was not stored'), err);
      case 'READ_ONLY':
        throw withCause(errors.unavailable('storage is read-only: the write was not stored'), err);
      case 'ENCRYPTION_FAILED':
        // The message names provider, key id and store key — never key material or values.
        throw errors.internal(`Internal error occurred: ${err.message}`);
    }
  }
  throw err;
}

function withCause(apiError: ApiError, cause: StoreError): ApiError {
  apiError.cause = cause;
  return apiError;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

export function objectFields(obj: KubeObject): Record<string, string> {
  return { 'metadata.name': obj.metadata.name ?? '', 'metadata.namespace': obj.metadata.namespace ?? '' };
}

export function matches(obj: KubeObject, labels: LabelRequirement[], fields: FieldRequirement[]): boolean {
  return matchLabels(labels, obj.metadata.labels) && matchFields(fields, objectFields(obj));
}

/** A write about to be stored, as admission sees it. */
export interface AdmissionRequest {
  t: ResourceType;
  /** The object as it would be stored. */
  object: KubeObject;
  /** The stored object (update); undefined on create. */
  oldObject: KubeObject | undefined;
  /** Who asks; undefined for writes of the server itself (its controller, bootstrap). */
  user: UserInfo | undefined;
}

/** Extension points used by runtime-registered types (CRDs): extra validation and write notifications. */
export interface ResourceHooks {
  validate?(t: ResourceType, obj: KubeObject): FieldError[];
  /** Admission that needs the user, the stored object or other objects: throws an ApiError to refuse (status writes are not admitted). */
  admit?(request: AdmissionRequest): Promise<void>;
  /** Called after an object was written (deleted: it is gone from the store). */
  written?(t: ResourceType, obj: KubeObject, deleted: boolean): void | Promise<void>;
}

export class Resources {
  /** Custom resource versions: storage version and conversion (the CRD machinery installs its webhook converter). */
  readonly versions = new VersionConverter();
  readonly hooks: ResourceHooks[] = [];

  constructor(
    readonly store: Store,
    readonly registry: TypeRegistry,
  ) {}

  private async notify(t: ResourceType, obj: KubeObject, deleted: boolean): Promise<void> {
    for (const h of this.hooks) await h.written?.(t, obj, deleted);
  }

  private storageType(t: ResourceType): ResourceType {
    return this.versions.storageType(t);
  }

  private convertTo(t: ResourceType, objs: KubeObject[]): Promise<KubeObject[]> {
    return this.versions.convertTo(t, objs);
  }

  private convertOne(t: ResourceType, obj: KubeObject): Promise<KubeObject> {
    return this.versions.convertOne(t, obj);
  }

  async ensureNamespace(namespace: string): Promise<void> {
    await this.bootstrap(NAMESPACES, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace }, spec: { finalizers: [] }, status: { phase: 'Active' } });
  }

  private async bootstrap(t: ResourceType, obj: KubeObject): Promise<void> {
    try {
      await this.create(t, undefined, obj, { skipNamespaceCheck: true });
    } catch (err) {
      if (!(err instanceof ApiError && err.reason === 'AlreadyExists')) throw err;
    }
  }

  private async requireNamespace(t: ResourceType, namespace: string | undefined): Promise<void> {
    if (!t.namespaced) return;
    if (!namespace) throw errors.badRequest('the namespace of the object must be set');
    const ns = await this.store.get(objectKey(NAMESPACES, undefined, namespace)).catch((e) => mapStoreError(e));
    if (!ns) throw new ApiError(404, 'NotFound', `namespaces "${namespace}" not found`, { name: namespace, kind: 'namespaces' });
    if (decodeObject(ns).metadata.deletionTimestamp) {
      throw errors.forbidden(`unable to create new content in namespace ${namespace} because it is being terminated`);
    }
  }

  async list(t: ResourceType, namespace: string | undefined, opts: ListOptions): Promise<ListOutcome> {
    if (t.crd) {
      const out = await this.listStored(this.storageType(t), namespace, opts);
      return { ...out, items: await this.convertTo(t, out.items) };
    }
    return this.listStored(t, namespace, opts);
  }

  private async listStored(t: ResourceType, namespace: string | undefined, opts: ListOptions): Promise<ListOutcome> {
    let prefix = typePrefix(t, namespace);
    const pinnedNs = pinnedField(opts.fields, 'metadata.namespace');
    if (t.namespaced && !namespace && pinnedNs !== undefined) prefix = typePrefix(t, pinnedNs);
    let revision: number | undefined;
    let startKey: string | undefined;
    if (opts.continueToken) {
      let token;
      try {
        token = decodeContinue(opts.continueToken);
      } catch {
        throw errors.badRequest('invalid continue token');
      }
      if (!token.start.startsWith(prefix)) throw errors.badRequest('continue token does not belong to this list');
      revision = token.rv;
      startKey = token.start;
    }
    const limit = opts.limit && opts.limit > 0 ? opts.limit : undefined;
    const items: KubeObject[] = [];
    let readRevision = revision ?? 0;
    let next: string | undefined = startKey;
    let more = false;
    // Filtering happens after reading: keep reading pages until `limit` matching items or the end.
    for (;;) {
      let page;
      try {
        page = await this.store.list(prefix, { revision: readRevision || undefined, limit: limit ? Math.max(limit - items.length, 1) : undefined, startKey: next });
      } catch (err) {
        if (err instanceof StoreError && err.code === 'COMPACTED' && opts.continueToken) {
          throw errors.expired('The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.');
        }
        mapStoreError(err, t);
      }
      readRevision = page.revision;
      for (const kv of page.items) {
        const obj = decodeObject(kv);
        if (matches(obj, opts.labels, opts.fields)) items.push(obj);
      }
      more = page.more;
      next = page.continueKey;
      if (!page.more || !next) break;
      if (limit && items.length >= limit) break;
    }
    return {
      items,
      resourceVersion: String(readRevision),
      continueToken: more && next ? encodeContinue({ rv: readRevision, start: next }) : undefined,
    };
  }

  async get(t: ResourceType, namespace: string | undefined, name: string): Promise<KubeObject> {
    if (t.crd) return this.convertOne(t, await this.getStored(this.storageType(t), namespace, name));
    return this.getStored(t, namespace, name);
  }

  private async getStored(t: ResourceType, namespace: string | undefined, name: string): Promise<KubeObject> {
    const kv = await this.store.get(objectKey(t, namespace, name)).catch((e) => mapStoreError(e, t, name));
    if (!kv) throw errors.notFound(t.group, t.plural, name);
    return decodeObject(kv);
  }

  private checkBody(t: ResourceType, body: unknown): KubeObject {
    if (!isObject(body)) throw errors.badRequest('the request body must be a JSON object');
    if (body.metadata !== undefined && !isObject(body.metadata)) throw errors.badRequest('metadata must be an object');
    const obj = { ...body, metadata: { ...((body.metadata as object) ?? {}) } } as KubeObject;
    if (obj.kind !== undefined && obj.kind !== t.kind) throw errors.badRequest(`the kind of the object (${String(obj.kind)}) does not match the resource (${t.kind})`);
    if (obj.apiVersion !== undefined && obj.apiVersion !== groupVersion(t)) throw errors.badRequest(`the apiVersion of the object (${String(obj.apiVersion)}) does not match ${groupVersion(t)}`);
    obj.kind = t.kind;
    obj.apiVersion = groupVersion(t);
    return obj;
  }

  private validate(t: ResourceType, obj: KubeObject): void {
    const errs = validateObject(t, obj);
    for (const h of this.hooks) errs.push(...(h.validate?.(t, obj) ?? []));
    if (errs.length > 0) throw errors.invalid(t.kind, obj.metadata.name ?? obj.metadata.generateName ?? '', errs);
  }

  private async admit(request: AdmissionRequest): Promise<void> {
    for (const h of this.hooks) await h.admit?.(request);
  }

  async create(t: ResourceType, namespace: string | undefined, body: unknown, opts: { dryRun?: boolean; skipNamespaceCheck?: boolean; user?: UserInfo } = {}): Promise<KubeObject> {
    const st = this.storageType(t);
    if (st !== t) {
      const converted = await this.convertOne(st, this.checkBody(t, body));
      return this.convertOne(t, await this.create(st, namespace, converted, opts));
    }
    const obj = this.checkBody(t, body);
    const meta = obj.metadata;
    if (t.namespaced) {
      if (meta.namespace !== undefined && meta.namespace !== '' && namespace !== undefined && meta.namespace !== namespace) {
        throw errors.badRequest('the namespace of the provided object does not match the namespace sent on the request');
      }
      meta.namespace = namespace ?? meta.namespace;
    } else {
      delete meta.namespace;
    }
    if (!meta.name && typeof meta.generateName === 'string' && meta.generateName !== '') {
      meta.name = `${meta.generateName}${randomBytes(4).toString('hex').slice(0, 5)}`;
    }
    delete meta.resourceVersion;
    delete meta.deletionTimestamp;
    delete meta.deletionGracePeriodSeconds;
    meta.uid = randomUUID();
    meta.creationTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    meta.generation = 1;
    if (t.group === '' && t.kind === 'Secret' && (obj.type === undefined || obj.type === '')) obj.type = 'Opaque';
    // Status is owned by the /status subresource: a create starts without it.
    if (t.hasStatus) delete obj.status;
    if (t.plural === 'namespaces') {
      obj.status = { phase: 'Active' };
    }
    this.validate(t, obj);
    if (!opts.skipNamespaceCheck) await this.requireNamespace(t, meta.namespace);
    await this.admit({ t, object: obj, oldObject: undefined, user: opts.user });
    if (opts.dryRun) return obj;
    const kv = await this.store.create(objectKey(t, meta.namespace, meta.name!), encodeObject(obj)).catch((e) => mapStoreError(e, t, meta.name));
    const created = decodeObject(kv);
    await this.notify(t, created, false);
    return created;
  }

  /**
   * Replaces the object (or its status). `expected` = the client's resourceVersion precondition.
   * Returns the stored object (or the final version if the update completed a pending deletion).
   */
  async update(t: ResourceType, namespace: string | undefined, name: string, body: unknown, opts: { status?: boolean; dryRun?: boolean; user?: UserInfo } = {}): Promise<KubeObject> {
    const st = this.storageType(t);
    if (st !== t) {
      const converted = await this.convertOne(st, this.checkBody(t, body));
      return this.convertOne(t, await this.update(st, namespace, name, converted, opts));
    }
    const obj = this.checkBody(t, body);
    if (obj.metadata.name !== undefined && obj.metadata.name !== name) throw errors.badRequest(`the name of the object (${obj.metadata.name}) does not match the name on the URL (${name})`);
    if (t.namespaced && obj.metadata.namespace && obj.metadata.namespace !== namespace) {
      throw errors.badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    let expected: number | undefined;
    const rv = obj.metadata.resourceVersion;
    if (rv !== undefined && rv !== '') {
      if (typeof rv !== 'string' || !/^[0-9]+$/.test(rv)) throw errors.badRequest(`invalid resourceVersion "${String(rv)}"`);
      expected = Number(rv);
    }
    const current = await this.get(t, namespace, name);
    return this.replace(t, current, obj, expected, opts);
  }

  private async replace(t: ResourceType, current: KubeObject, incoming: KubeObject, expected: number | undefined, opts: { status?: boolean; dryRun?: boolean; user?: UserInfo }): Promise<KubeObject> {
    const name = current.metadata.name!;
    const currentRv = Number(current.metadata.resourceVersion);
    if (expected !== undefined && expected !== currentRv) {
      throw errors.conflict(t.group, t.plural, name, 'the object has been modified; please apply your changes to the latest version and try again');
    }
    let next: KubeObject;
    if (opts.status) {
      // Only status changes through /status.
      next = { ...current, status: incoming.status };
      if (incoming.status === undefined) delete next.status;
    } else {
      next = { ...incoming, metadata: { ...incoming.metadata } };
      if (t.hasStatus) {
        if (current.status === undefined) delete next.status;
        else next.status = current.status;
      }
    }
    const meta = next.metadata;
    meta.name = name;
    if (t.namespaced) meta.namespace = current.metadata.namespace;
    else delete meta.namespace;
    meta.uid = current.metadata.uid;
    meta.creationTimestamp = current.metadata.creationTimestamp;
    if (current.metadata.deletionTimestamp) {
      meta.deletionTimestamp = current.metadata.deletionTimestamp;
      meta.deletionGracePeriodSeconds = current.metadata.deletionGracePeriodSeconds;
    } else {
      delete meta.deletionTimestamp;
      delete meta.deletionGracePeriodSeconds;
    }
    const gen = current.metadata.generation ?? 1;
    meta.generation = !opts.status && !sameJson(current.spec, next.spec) ? gen + 1 : gen;
    delete meta.resourceVersion;
    delete meta.generateName;
    if (current.metadata.generateName) meta.generateName = current.metadata.generateName;
    this.validate(t, next);
    if (meta.deletionTimestamp && !current.metadata.deletionTimestamp) throw errors.badRequest('deletionTimestamp cannot be set by an update');
    if (!opts.status) await this.admit({ t, object: next, oldObject: current, user: opts.user });
    const key = objectKey(t, meta.namespace, name);
    if (opts.dryRun) return { ...next, metadata: { ...meta, resourceVersion: current.metadata.resourceVersion } };
    if (meta.deletionTimestamp && (meta.finalizers ?? []).length === 0) {
      // The last finalizer is gone: the pending deletion completes now.
      const deleted = await this.store.delete(key, currentRv).catch((e) => mapStoreError(e, t, name));
      void deleted;
      const gone = { ...next, metadata: { ...meta, resourceVersion: String(await this.store.currentRevision()) } };
      await this.notify(t, gone, true);
      return gone;
    }
    if (sameJson(stripVolatile(current), stripVolatile(next))) return current;
    const kv = await this.store.update(key, encodeObject(next), currentRv).catch((e) => mapStoreError(e, t, name));
    const updated = decodeObject(kv);
    await this.notify(t, updated, false);
    return updated;
  }

  async patch(t: ResourceType, namespace: string | undefined, name: string, patchType: string, patch: unknown, opts: { status?: boolean; dryRun?: boolean; user?: UserInfo } = {}): Promise<KubeObject> {
    const st = this.storageType(t);
    if (st !== t) return this.patchConverted(t, st, namespace, name, patchType, patch, opts);
    for (let attempt = 0; ; attempt++) {
      const current = await this.get(t, namespace, name);
      const obj = this.applyPatchTo(t, current, name, patchType, patch);
      const rv = obj.metadata.resourceVersion;
      const precondition = rv !== undefined && rv !== current.metadata.resourceVersion;
      let expected: number | undefined;
      if (precondition) {
        if (typeof rv !== 'string' || !/^[0-9]+$/.test(rv)) throw errors.badRequest(`invalid resourceVersion "${String(rv)}"`);
        expected = Number(rv);
      }
      try {
        return await this.replace(t, current, obj, expected, opts);
      } catch (err) {
        // Patches without a precondition retry against the newest version when they lose a race.
        if (!precondition && attempt < 5 && err instanceof ApiError && err.reason === 'Conflict') continue;
        throw err;
      }
    }
  }

  /** The patched object, checked like a request body: a patch that cannot apply is 422, a renamed object 400. */
  private applyPatchTo(t: ResourceType, current: KubeObject, name: string, patchType: string, patch: unknown): KubeObject {
    let patched: unknown;
    try {
      patched = applyPatch(patchType, current, patch);
    } catch (err) {
      if (err instanceof PatchError) throw new ApiError(422, 'Invalid', `the patch could not be applied: ${err.message}`, { name, kind: t.kind });
      throw err;
    }
    // A JSON patch can put a deep value at a deep path: the result is bounded like a request body.
    if (nestedDeeperThan(patched, MAX_BODY_DEPTH)) throw new ApiError(422, 'Invalid', `the patched object nests deeper than ${MAX_BODY_DEPTH} levels`, { name, kind: t.kind });
    const obj = this.checkBody(t, patched);
    if (obj.metadata.name !== name) throw errors.badRequest(`the name of the object (${String(obj.metadata.name)}) does not match the name on the URL (${name})`);
    return obj;
  }

  /** Patch in a non-storage version: read, convert, patch, convert back, replace (with a precondition). */
  private async patchConverted(t: ResourceType, st: ResourceType, namespace: string | undefined, name: string, patchType: string, patch: unknown, opts: { status?: boolean; dryRun?: boolean; user?: UserInfo }): Promise<KubeObject> {
    for (let attempt = 0; ; attempt++) {
      const current = await this.get(t, namespace, name);
      const obj = this.applyPatchTo(t, current, name, patchType, patch);
      const precondition = obj.metadata.resourceVersion !== current.metadata.resourceVersion;
      if (!precondition) obj.metadata.resourceVersion = current.metadata.resourceVersion;
      try {
        return await this.update(t, namespace, name, obj, opts);
      } catch (err) {
        if (!precondition && attempt < 5 && err instanceof ApiError && err.reason === 'Conflict') continue;
        throw err;
      }
    }
  }

  /**
   * Deletes every object of every namespaced type in `namespace` (objects with finalizers are only
   * marked). Done synchronously before the namespace itself goes; no namespace controller yet.
   */
  private async emptyNamespace(namespace: string): Promise<void> {
    const seen = new Set<string>();
    for (const served of this.registry.all()) {
      // Every version of a custom resource shares one storage type: empty it once.
      const type = this.storageType(served);
      if (!type.namespaced || seen.has(`${type.group}/${type.plural}`)) continue;
      seen.add(`${type.group}/${type.plural}`);
      let startKey: string | undefined;
      for (;;) {
        const page = await this.store.list(typePrefix(type, namespace), { limit: 500, startKey }).catch((e) => mapStoreError(e, type));
        for (const kv of page.items) {
          const obj = decodeObject(kv);
          try {
            await this.delete(type, namespace, obj.metadata.name!);
          } catch (err) {
            if (!(err instanceof ApiError && err.reason === 'NotFound')) throw err;
          }
        }
        if (!page.more || !page.continueKey) break;
        startKey = page.continueKey;
      }
    }
  }

  /** Deletes, or (finalizers pending) marks for deletion. Returns the object as deleted/marked. */
  async delete(t: ResourceType, namespace: string | undefined, name: string, opts: { expected?: number; expectedUid?: string; dryRun?: boolean } = {}): Promise<{ object: KubeObject; pending: boolean }> {
    const st = this.storageType(t);
    if (st !== t) {
      const out = await this.delete(st, namespace, name, opts);
      // A completed delete only reports name/uid: no conversion needed (nor wanted: it cannot fail now).
      return { object: out.pending ? await this.convertOne(t, out.object) : { ...out.object, apiVersion: groupVersion(t) }, pending: out.pending };
    }
    for (let attempt = 0; ; attempt++) {
      const current = await this.get(t, namespace, name);
      const rv = Number(current.metadata.resourceVersion);
      if (opts.expected !== undefined && opts.expected !== rv) throw errors.conflict(t.group, t.plural, name, 'the object has been modified; please apply your changes to the latest version and try again');
      if (opts.expectedUid !== undefined && opts.expectedUid !== current.metadata.uid) throw errors.conflict(t.group, t.plural, name, `Precondition failed: UID in precondition: ${opts.expectedUid}, UID in object meta: ${current.metadata.uid}`);
      const key = objectKey(t, current.metadata.namespace, name);
      const finalizers = current.metadata.finalizers ?? [];
      if (opts.dryRun) return { object: current, pending: finalizers.length > 0 };
      try {
        if (finalizers.length > 0) {
          if (current.metadata.deletionTimestamp) return { object: current, pending: true };
          const marked: KubeObject = { ...current, metadata: { ...current.metadata, deletionTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), deletionGracePeriodSeconds: 0 } };
          const kv = await this.store.update(key, encodeObject(marked), rv);
          const object = decodeObject(kv);
          await this.notify(t, object, false);
          return { object, pending: true };
        }
        if (t.plural === 'namespaces' && t.group === '') await this.emptyNamespace(name);
        await this.store.delete(key, rv);
        await this.notify(t, current, true);
        return { object: current, pending: false };
      } catch (err) {
        if (err instanceof StoreError && err.code === 'CONFLICT' && opts.expected === undefined && attempt < 5) continue;
        mapStoreError(err, t, name);
      }
    }
  }
}

function stripVolatile(o: KubeObject): unknown {
  const { resourceVersion: _rv, ...meta } = o.metadata;
  void _rv;
  return { ...o, metadata: meta };
}
