// Watch streaming: newline-delimited JSON events {"type", "object"} over a chunked response.
// Without a resourceVersion (or "0") the current state is sent first as ADDED events.
import type { ServerResponse } from 'node:http';
import type { Event, Store, StoreError } from '../store/types.js';
import { ApiError, errors, statusOf } from './errors.js';
import { matches, Resources } from './resources.js';
import type { FieldRequirement, LabelRequirement } from './selectors.js';
import { decodeObject, typePrefix, type KubeObject } from './storage.js';
import { groupVersion, type ResourceType } from './types.js';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface WatchOptions {
  namespace?: string;
  labels: LabelRequirement[];
  fields: FieldRequirement[];
  /** Start after this revision; undefined or 0: send the current state first. */
  fromRevision?: number;
  bookmarks: boolean;
  bookmarkIntervalMs: number;
  timeoutSeconds?: number;
  /** Turns each event object into what the client asked for (e.g. a one-row Table). */
  render: (obj: KubeObject) => unknown;
}

/** Classifies a store event for a filtered watcher; null when the watcher does not see it. */
export function classifyEvent(e: Event, labels: LabelRequirement[], fields: FieldRequirement[]): { type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: KubeObject } | null {
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

export async function serveWatch(res: ServerResponse, store: Store, resources: Resources, t: ResourceType, opts: WatchOptions): Promise<void> {
  let from = opts.fromRevision ?? 0;
  const initial: KubeObject[] = [];
  if (from === 0) {
    const listed = await resources.list(t, opts.namespace, { labels: opts.labels, fields: opts.fields });
    initial.push(...listed.items);
    from = Number(listed.resourceVersion);
  } else {
    const current = await store.currentRevision();
    if (from > current) throw errors.tooLargeResourceVersion(from);
  }
  res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' });
  res.flushHeaders();
  let lastRevision = from;
  let closed = false;
  const send = (type: WatchEventType, object: unknown): void => {
    if (closed) return;
    res.write(`${JSON.stringify({ type, object })}\n`);
  };
  for (const obj of initial) send('ADDED', opts.render(obj));

  const timers: NodeJS.Timeout[] = [];
  const finish = (): void => {
    if (closed) return;
    closed = true;
    watch.cancel();
    for (const timer of timers) clearInterval(timer);
    res.end();
  };
  // Custom resources are stored in their storage version: events are converted in order.
  let chain: Promise<void> = Promise.resolve();
  const watch = store.watch(
    typePrefix(t, opts.namespace),
    from,
    (e) => {
      lastRevision = e.revision;
      const event = classifyEvent(e, opts.labels, opts.fields);
      if (!event) return;
      if (!t.crd) return send(event.type, opts.render(event.object));
      chain = chain.then(async () => {
        if (closed) return;
        try {
          send(event.type, opts.render(await resources.convertOne(t, event.object)));
        } catch (err) {
          send('ERROR', err instanceof ApiError ? err.toStatus() : statusOf(500, 'InternalError', 'conversion failed'));
          finish();
        }
      });
    },
    (err: StoreError) => {
      const status =
        err.code === 'COMPACTED'
          ? statusOf(410, 'Expired', `too old resource version: ${from} (${lastRevision})`)
          : statusOf(503, 'ServiceUnavailable', `watch ended: ${err.code}`);
      send('ERROR', status);
      finish();
    },
  );
  if (opts.bookmarks) {
    timers.push(
      setInterval(() => {
        const bookmark = (): void => send('BOOKMARK', { kind: t.kind, apiVersion: groupVersion(t), metadata: { resourceVersion: String(lastRevision) } });
        if (t.crd) chain = chain.then(bookmark);
        else bookmark();
      }, opts.bookmarkIntervalMs),
    );
  }
  if (opts.timeoutSeconds !== undefined && opts.timeoutSeconds > 0) {
    const timer = setTimeout(finish, opts.timeoutSeconds * 1000);
    timers.push(timer);
  }
  res.on('close', finish);
}
