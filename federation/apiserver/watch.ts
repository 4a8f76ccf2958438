// The HTTP watch: a chunked stream of JSON events ({type, object}) over the in-process object
// watch, with BOOKMARKs and timeoutSeconds. Without a resourceVersion (or "0") the current state is
// sent first as ADDED events.
import type { ServerResponse } from 'node:http';
import type { Store } from '../store/types.js';
import { errors, type ApiError } from './errors.js';
import { watchObjects } from './object-watch.js';
import type { Resources } from './resources.js';
import type { FieldRequirement, LabelRequirement } from './selectors.js';
import type { KubeObject } from './storage.js';
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
  /** Told once the response has started (the watch is open). */
  opened?: () => void;
  /** Told once why an opened watch ended (with the error sent to the client, if that was why). */
  ended?: (reason: WatchEndReason, error?: ApiError) => void;
  /**
   * Aborted when the server shuts down: the watch then ends cleanly (the response's last chunk, no
   * ERROR event), as kube-apiserver does, so the client watches again from the resourceVersion it
   * has seen, on another replica.
   */
  shutdown?: AbortSignal;
}

export type WatchEndReason = 'client closed' | 'timeout' | 'error' | 'server shutdown';

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
  opts.opened?.();
  let closed = false;
  const send = (type: WatchEventType, object: unknown): void => {
    if (closed) return;
    res.write(`${JSON.stringify({ type, object })}\n`);
  };
  for (const obj of initial) send('ADDED', opts.render(obj));

  const timers: NodeJS.Timeout[] = [];
  const finish = (reason: WatchEndReason, error?: ApiError): void => {
    if (closed) return;
    closed = true;
    opts.shutdown?.removeEventListener('abort', onShutdown);
    opts.ended?.(reason, error);
    watch.cancel();
    for (const timer of timers) clearInterval(timer);
    res.end();
  };
  const watch = watchObjects(
    resources,
    t,
    { namespace: opts.namespace, labels: opts.labels, fields: opts.fields, fromRevision: from },
    (e) => send(e.type, opts.render(e.object)),
    (err) => {
      send('ERROR', err.toStatus());
      finish('error', err);
    },
  );
  if (opts.bookmarks) {
    timers.push(setInterval(() => send('BOOKMARK', { kind: t.kind, apiVersion: groupVersion(t), metadata: { resourceVersion: String(watch.revision) } }), opts.bookmarkIntervalMs));
  }
  if (opts.timeoutSeconds !== undefined && opts.timeoutSeconds > 0) timers.push(setTimeout(() => finish('timeout'), opts.timeoutSeconds * 1000));
  res.on('close', () => finish('client closed'));
  function onShutdown(): void {
    // A last bookmark tells a client that asked for them how far this watch got.
    if (opts.bookmarks) send('BOOKMARK', { kind: t.kind, apiVersion: groupVersion(t), metadata: { resourceVersion: String(watch.revision) } });
    finish('server shutdown');
  }
  if (opts.shutdown?.aborted) onShutdown();
  else opts.shutdown?.addEventListener('abort', onShutdown);
}
