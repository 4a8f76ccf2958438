// Cluster health as KubeFed defines it (pure): probe results counted against failure/success
// thresholds, plus two inputs KubeFed lacks — the agent link dropping (Offline at once) and a
// malformed KubeFedCluster/Secret (ConfigMalformed) — and the status.conditions they produce.
export interface HealthThresholds {
  failureThreshold: number;
  successThreshold: number;
}

export type HealthPhase = 'Unknown' | 'Ready' | 'NotReady' | 'Offline' | 'ConfigMalformed';

export interface HealthState {
  phase: HealthPhase;
  reason: string;
  message: string;
}

export type ProbeResult = { ok: true } | { ok: false; reachable: boolean; message?: string };

const READY: HealthState = { phase: 'Ready', reason: 'ClusterReady', message: '/healthz responded with ok' };

export class HealthTracker {
  private state: HealthState = { phase: 'Unknown', reason: '', message: '' };
  private failures = 0;
  private successes = 0;

  constructor(private thresholds: HealthThresholds) {}

  get current(): HealthState {
    return this.state;
  }

  setThresholds(thresholds: HealthThresholds): void {
    this.thresholds = thresholds;
  }

  /** A probe result. The first one decides at once; later ones must reach their threshold to flip the state. */
  probed(result: ProbeResult): HealthState {
    const first = this.state.phase === 'Unknown' || this.state.phase === 'ConfigMalformed';
    if (result.ok) {
      this.successes++;
      this.failures = 0;
      if (this.state.phase !== 'Ready' && (first || this.state.phase === 'Offline' || this.successes >= this.thresholds.successThreshold)) this.state = READY;
      return this.state;
    }
    this.failures++;
    this.successes = 0;
    const failed: HealthState = result.reachable
      ? { phase: 'NotReady', reason: 'ClusterNotReady', message: result.message ? `/healthz responded without ok: ${result.message}` : '/healthz responded without ok' }
      : { phase: 'Offline', reason: 'ClusterNotReachable', message: result.message ? `cluster is not reachable: ${result.message}` : 'cluster is not reachable' };
    if (this.state.phase !== 'Ready' || this.failures >= this.thresholds.failureThreshold) this.state = failed;
    return this.state;
  }

  /** The cluster's last agent link went away: nothing can reach it, no threshold to wait for. */
  linkLost(): HealthState {
    this.successes = 0;
    this.failures = this.thresholds.failureThreshold;
    this.state = { phase: 'Offline', reason: 'ClusterNotReachable', message: 'cluster is not reachable: no agent link to the hub' };
    return this.state;
  }

  malformed(message: string): HealthState {
    this.successes = 0;
    this.failures = 0;
    this.state = { phase: 'ConfigMalformed', reason: 'ClusterConfigMalformed', message };
    return this.state;
  }
}

export interface ClusterCondition {
  type: 'Ready' | 'Offline' | 'ConfigMalformed';
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastProbeTime: string;
  lastTransitionTime?: string;
}

/** KubeFedCluster status.conditions for a health state; a condition's transition time moves only when its status does. */
export function clusterConditions(state: HealthState, previous: ClusterCondition[], now: string): ClusterCondition[] {
  const wanted: Array<Omit<ClusterCondition, 'lastProbeTime' | 'lastTransitionTime'>> = [];
  switch (state.phase) {
    case 'Ready':
      wanted.push({ type: 'Ready', status: 'True', reason: state.reason, message: state.message });
      wanted.push({ type: 'Offline', status: 'False', reason: 'ClusterReachable', message: 'cluster is reachable' });
      break;
    case 'NotReady':
      wanted.push({ type: 'Ready', status: 'False', reason: state.reason, message: state.message });
      wanted.push({ type: 'Offline', status: 'False', reason: 'ClusterReachable', message: 'cluster is reachable' });
      break;
    case 'Offline':
      wanted.push({ type: 'Ready', status: 'Unknown', reason: state.reason, message: state.message });
      wanted.push({ type: 'Offline', status: 'True', reason: state.reason, message: state.message });
      break;
    case 'ConfigMalformed':
      wanted.push({ type: 'Ready', status: 'False', reason: state.reason, message: state.message });
      wanted.push({ type: 'ConfigMalformed', status: 'True', reason: state.reason, message: state.message });
      break;
    case 'Unknown':
      return previous;
  }
  return wanted.map((c) => {
    const before = previous.find((p) => p.type === c.type);
    return { ...c, lastProbeTime: now, lastTransitionTime: before && before.status === c.status ? (before.lastTransitionTime ?? now) : now };
  });
}

/**
 * The conditions of a cluster whose tenant label disagrees with its agent's certificate: Ready is
 * False with reason TenantMismatch whatever the probes say; the other conditions stay.
 */
export function withTenantMismatch(conditions: ClusterCondition[], previous: ClusterCondition[], message: string, now: string): ClusterCondition[] {
  const before = previous.find((p) => p.type === 'Ready');
  const ready: ClusterCondition = { type: 'Ready', status: 'False', reason: 'TenantMismatch', message, lastProbeTime: now, lastTransitionTime: before && before.status === 'False' ? (before.lastTransitionTime ?? now) : now };
  return [ready, ...conditions.filter((c) => c.type !== 'Ready')];
}
