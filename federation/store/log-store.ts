// What both SQL backends share above the row level: the write entry points funnel into one
// transactional write(), and watches are served by the backend's WatchHub.
import type { WriteRequest } from './log.js';
import type { Event, KeyValue, StoreError, Watch } from './types.js';
import type { WatchHub } from './watch-hub.js';

export abstract class LogStore {
  protected abstract readonly hub: WatchHub;
  protected abstract write(request: WriteRequest): Promise<KeyValue>;

  create(key: string, value: Buffer): Promise<KeyValue> {
    return this.write({ kind: 'create', key, value });
  }

  update(key: string, value: Buffer, expectedModRevision: number): Promise<KeyValue> {
    return this.write({ kind: 'update', key, value, expectedModRevision });
  }

  delete(key: string, expectedModRevision?: number): Promise<KeyValue> {
    return this.write({ kind: 'delete', key, expectedModRevision });
  }

  watch(prefix: string, fromRevision: number, onEvent: (e: Event) => void, onError: (e: StoreError) => void): Watch {
    return this.hub.watch(prefix, fromRevision, onEvent, onError);
  }
}
