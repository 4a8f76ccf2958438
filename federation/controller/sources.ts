// Where informers read from: the federation's own store, in process (no HTTP, no re-decoding per
// watcher), and member clusters, through their MemberClient (every byte over the tunnel).
import { watchObjects } from '../apiserver/object-watch.js';
import type { Resources } from '../apiserver/resources.js';
import { parseLabelSelector } from '../apiserver/selectors.js';
import type { ResourceType } from '../apiserver/types.js';
import type { TargetType } from '../kubefed/api.js';
import type { ListWatch } from './informer.js';
import type { MemberClient } from './member-client.js';

export function localListWatch(resources: Resources, t: ResourceType, namespace?: string): ListWatch {
  return {
    async list() {
      const out = await resources.list(t, namespace, { labels: [], fields: [] });
      return { items: out.items, resourceVersion: out.resourceVersion };
    },
    watch(resourceVersion, onEvent, onEnd) {
      const w = watchObjects(resources, t, { namespace, fromRevision: Number(resourceVersion) }, (e) => onEvent(e.type, e.object), (err) => onEnd(err));
      return { stop: () => w.cancel() };
    },
  };
}

export function memberListWatch(client: MemberClient, t: TargetType, labelSelector: string): ListWatch {
  parseLabelSelector(labelSelector); // fails early on a bad selector
  return {
    list: () => client.list(t, { labelSelector }),
    watch(resourceVersion, onEvent, onEnd) {
      return client.watch(t, { labelSelector, resourceVersion }, onEvent, onEnd);
    },
  };
}
