// Pure decisions of HA membership: which replicas are live, what agents are told, and which peer
// may take a dial this replica cannot serve. No I/O here: membership.ts feeds these from the store.
import type { ReplicaAddress } from '../../wire/messages.js';

/** One row of the membership table, as read from the store. */
export interface ReplicaRecord {
  /** The replica's --instance: also the `instance` of its HELLO, which agents dedupe by. */
  id: string;
  /** host:port agents (and peers) dial: the replica's --advertise-agent-address. */
  address: string;
  /** Store clock (milliseconds) of the replica's latest heartbeat. */
  heartbeatMs: number;
  /** Clusters the replica has at least one agent link for, as of that heartbeat. */
  clusters: string[];
}

/** A replica is live while its latest heartbeat is younger than the TTL (both on the store's clock). */
export function isLive(record: ReplicaRecord, nowMs: number, ttlMs: number): boolean {
  return nowMs - record.heartbeatMs < ttlMs;
}

/** The live replicas, ordered by id so that two readers of the same rows agree on the list. */
export function liveReplicas(records: readonly ReplicaRecord[], nowMs: number, ttlMs: number): ReplicaRecord[] {
  return records.filter((r) => isLive(r, nowMs, ttlMs)).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** What a REPLICAS frame carries: identity and address of every live replica (this one included). */
export function replicaAddresses(live: readonly ReplicaRecord[]): ReplicaAddress[] {
  return live.map(({ id, address }) => ({ id, address }));
}

/** Whether two announcements say the same thing (agents are told only about changes). */
export function sameAddresses(a: readonly ReplicaAddress[], b: readonly ReplicaAddress[]): boolean {
  return a.length === b.length && a.every((r, i) => r.id === b[i]!.id && r.address === b[i]!.address);
}

/**
 * The peer a dial for `cluster` may be forwarded to when this replica has no usable link for it:
 * a live replica other than `self` that reported an agent of the cluster. Among several, the one
 * with the freshest heartbeat (its cluster list is the most recent), then by id.
 */
export function forwardingPeer(cluster: string, live: readonly ReplicaRecord[], self: string): ReplicaRecord | null {
  let best: ReplicaRecord | null = null;
  for (const r of live) {
    if (r.id === self || !r.clusters.includes(cluster)) continue;
    if (!best || r.heartbeatMs > best.heartbeatMs || (r.heartbeatMs === best.heartbeatMs && r.id < best.id)) best = r;
  }
  return best;
}
