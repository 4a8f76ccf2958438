// Member mode's pods: the core/v1 pods type, the kubelet stand-in that runs them, and the
// streaming subresources (exec, attach, port-forward, log).
import type { Registry } from 'prom-client';
import type { Logger } from '../../../common/log.js';
import type { Resources } from '../resources.js';
import { Kubelet, PODS } from './kubelet.js';
import { PodStreaming } from './streaming.js';

export interface MemberPods {
  streaming: PodStreaming;
  close(): void;
}

export async function installPods(resources: Resources, options: { log: Logger; metrics: Registry; execEnabled: boolean }): Promise<MemberPods> {
  if (!resources.registry.lookup(PODS.group, PODS.version, PODS.plural)) resources.registry.add(PODS);
  const log = options.log.child({ component: 'pods' });
  const kubelet = new Kubelet(resources, log, options.execEnabled);
  await kubelet.resume();
  const streaming = new PodStreaming({ resources, kubelet, log, metrics: options.metrics });
  return {
    streaming,
    close(): void {
      streaming.close();
      kubelet.close();
    },
  };
}
