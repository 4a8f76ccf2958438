// The pod lifecycle of member mode: a Resources hook that starts a created pod in the runtime and
// writes its status as a kubelet would (Running, ready containers, loopback pod IP), stops it when
// the object is deleted, and records a container's exit in its status.
import type { Logger } from '../../../common/log.js';
import { ApiError } from '../errors.js';
import type { Resources } from '../resources.js';
import type { KubeObject } from '../storage.js';
import type { ResourceType } from '../types.js';
import { podContainers, PodRuntime } from './runtime.js';

export const PODS: ResourceType = { group: '', version: 'v1', kind: 'Pod', plural: 'pods', singular: 'pod', namespaced: true, shortNames: ['po'], hasStatus: true };

function now(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}

/** The status of a pod that was just started (pure). The pod "listens" on loopback: see README. */
export function runningStatus(pod: KubeObject, startedAt: string): Record<string, unknown> {
  const containers = podContainers(pod);
  const images = new Map(((pod.spec as { containers?: Array<{ name?: string; image?: string }> })?.containers ?? []).map((c) => [c.name, c.image ?? '']));
  return {
    phase: 'Running',
    conditions: ['Initialized', 'Ready', 'ContainersReady', 'PodScheduled'].map((type) => ({ type, status: 'True', lastTransitionTime: startedAt })),
    hostIP: '127.0.0.1',
    hostIPs: [{ ip: '127.0.0.1' }],
    podIP: '127.0.0.1',
    podIPs: [{ ip: '127.0.0.1' }],
    startTime: startedAt,
    containerStatuses: containers.map((c) => ({
      name: c.name,
      image: images.get(c.name) ?? '',
      imageID: '',
      ready: true,
      started: true,
      restartCount: 0,
      state: { running: { startedAt } },
    })),
  };
}

/** The status after a container exited (pure): the pod ends when every container with a process has ended. */
export function exitedStatus(status: Record<string, unknown>, container: string, code: number, finishedAt: string): Record<string, unknown> {
  const statuses = ((status.containerStatuses as Array<Record<string, unknown>>) ?? []).map((s) => {
    if (s.name !== container) return s;
    const startedAt = (s.state as { running?: { startedAt?: string } } | undefined)?.running?.startedAt;
    return { ...s, ready: false, started: false, state: { terminated: { exitCode: code, reason: code === 0 ? 'Completed' : 'Error', startedAt, finishedAt } } };
  });
  const allEnded = statuses.length > 0 && statuses.every((s) => (s.state as { terminated?: unknown }).terminated !== undefined);
  const failed = statuses.some((s) => ((s.state as { terminated?: { exitCode?: number } }).terminated?.exitCode ?? 0) !== 0);
  return { ...status, containerStatuses: statuses, ...(allEnded ? { phase: failed ? 'Failed' : 'Succeeded' } : {}) };
}

export class Kubelet {
  readonly runtime: PodRuntime;

  constructor(
    private readonly resources: Resources,
    private readonly log: Logger,
    execEnabled: boolean,
  ) {
    this.runtime = new PodRuntime({ log, execEnabled, onContainerExit: (pod, c, code) => void this.containerExited(pod, c, code) });
    resources.hooks.push({
      written: async (t, obj, deleted) => {
        if (t.group !== '' || t.plural !== 'pods') return;
        const ns = obj.metadata.namespace ?? '';
        const name = obj.metadata.name ?? '';
        if (deleted) return this.runtime.stop(ns, name);
        if (this.runtime.has(obj)) return;
        this.runtime.start(obj);
        await this.writeStatus(obj, () => runningStatus(obj, now()));
      },
    });
  }

  /** Starts the pods already stored (a restarted member): their processes start again, as after a node reboot. */
  async resume(): Promise<void> {
    const stored = await this.resources.list(PODS, undefined, { labels: [], fields: [] });
    for (const pod of stored.items) {
      const phase = (pod.status as { phase?: string } | undefined)?.phase;
      if (this.runtime.has(pod) || pod.metadata.deletionTimestamp || phase === 'Succeeded' || phase === 'Failed') continue;
      this.runtime.start(pod);
      await this.writeStatus(pod, () => runningStatus(pod, now()));
    }
  }

  private async containerExited(pod: KubeObject, container: string, code: number): Promise<void> {
    await this.writeStatus(pod, (current) => exitedStatus((current.status as Record<string, unknown>) ?? {}, container, code, now()));
  }

  /** Writes the status of this very pod (same uid), retrying on conflicts; a pod gone meanwhile is fine. */
  private async writeStatus(pod: KubeObject, status: (current: KubeObject) => Record<string, unknown>): Promise<void> {
    const ns = pod.metadata.namespace ?? '';
    const name = pod.metadata.name ?? '';
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        const current = await this.resources.get(PODS, ns, name);
        if (current.metadata.uid !== pod.metadata.uid) return;
        await this.resources.update(PODS, ns, name, { ...current, status: status(current) }, { status: true });
        return;
      } catch (err) {
        if (err instanceof ApiError && err.reason === 'Conflict') continue;
        if (err instanceof ApiError && err.reason === 'NotFound') return;
        this.log.warn({ namespace: ns, pod: name, err: (err as Error).message }, 'pod status not written');
        return;
      }
    }
  }

  close(): void {
    this.runtime.close();
  }
}
