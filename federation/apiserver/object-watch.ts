// The in-process watch of one resource type: store events decoded, filtered by selectors and (for
// custom resources) converted to the version asked for, delivered in revision order. Both the HTTP
// watch and in-process informers (the federation controller) use it, so conversion of an event is
// shared by every watcher of that version: a webhook is called once per event, not once per watcher.
import type { Event, StoreError } from '../store/types.js';
import { ApiError, errors } from './errors.js';
import { matches, type Resources } from './resources.js';
import type { FieldRequirement, LabelRequirement } from './selectors.js';
import { decodeObject, typePrefix, type KubeObject } from './storage.js';
import type { ResourceType } from './types.js';

export type ObjectEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface ObjectEvent {
  type: ObjectEventType;
  object: KubeObject;
  /** Store revision of the write (for DELETED: of the delete). */
  revision: number;
}

export interface ObjectWatchOptions {
  namespace?: string;
  labels?: LabelRequirement[];
  fields?: FieldRequirement[];
  /** Deliver every write after this revision. */
  fromRevision: number;
}

export interface ObjectWatch {
  /** Every store event up to this revision has been delivered (or filtered out): safe for BOOKMARKs. */
  readonly revision: number;
  cancel(): void;
}

/** Classifies a store event for a filtered watcher; null when the watcher does not see it. */
export function classifyEvent(e: Event, labels: LabelRequirement[], fields: FieldRequirement[]): { type: ObjectEventType; object: KubeObject } | null {
  if (e.type === 'DELETE') {
    if (!e.prevKv) return null;
    const old = decodeObject(e.prevKv, e.revision);
    return matches(old, labels, fields) ? { type: 'DELETED', object: old } : null;
  }
  const obj = decodeObject(e.kv);
  const now = matches(obj, labels, fields);
  if (!e.prevKv) return now ? { type: 'ADDED', object: obj } : null;
  const before = matches(decodeObject(e.prevKv), labels, fields);
  if (now && before) return { type: 'MODIFIED', object: obj };
  if (now) return { type: 'ADDED', object: obj };
  if (before) return { type: 'DELETED', object: { ...obj } };
  return null;
}

/** A store error that ends a watch, as the API error a client should see. */
export function watchEndError(err: StoreError, fromRevision: number, lastRevision: number): ApiError {
  if (err.code === 'COMPACTED') return new ApiError(410, 'Expired', `too old resource version: ${fromRevision} (${lastRevision})`);
  if (err.code === 'ENCRYPTION_FAILED') return errors.internal(`Internal error occurred: ${err.message}`);
  // The store error stays the cause: the server logs and counts it as a storage refusal.
  const unavailable = new ApiError(503, 'ServiceUnavailable', `watch ended: ${err.code}`);
  unavailable.cause = err;
  return unavailable;
}

/**
 * Watches objects of `t` (any served version). Events are shared, read-only objects. onError ends
 * the watch (compaction: 410 Expired; conversion failure: 500; store failure: 503).
 */
export function watchObjects(resources: Resources, t: ResourceType, opts: ObjectWatchOptions, onEvent: (e: ObjectEvent) => void, onError: (err: ApiError) => void): ObjectWatch {
  const labels = opts.labels ?? [];
  const fields = opts.fields ?? [];
  let delivered = opts.fromRevision;
  let ended = false;
  // Conversion is asynchronous: events are chained so they still arrive in revision order.
  let chain: Promise<void> = Promise.resolve();
  const fail = (err: ApiError): void => {
    if (ended) return;
    ended = true;
    watch.cancel();
    onError(err);
  };
  const storeType = resources.versions.storageType(t);
  const watch = resources.store.watch(
    typePrefix(storeType, opts.namespace),
    opts.fromRevision,
    (e) => {
      const event = classifyEvent(e, labels, fields);
      if (!t.crd) {
        delivered = e.revision;
        if (event && !ended) onEvent({ ...event, revision: e.revision });
        return;
      }
      const converting = event ? resources.versions.convertShared(t, event.object, `${e.kv.key}@${e.revision}`) : null;
      chain = chain.then(async () => {
        if (ended) return;
        if (event && converting) {
          let object: KubeObject;
          try {
            object = await converting;
          } catch (err) {
            return fail(err instanceof ApiError ? err : errors.internal('conversion failed'));
          }
          if (ended) return;
          onEvent({ type: event.type, object, revision: e.revision });
        }
        delivered = e.revision;
      });
    },
    (err) => fail(watchEndError(err, opts.fromRevision, delivered)),
  );
  return {
    get revision() {
      return delivered;
    },
    cancel() {
      ended = true;
      watch.cancel();
    },
  };
}


