// This replica's side of HA membership: a heartbeat into the membership table every
// --replica-heartbeat, a fresh view of the live replicas after each one, and a 'change' event
// when the set agents should link to changes. Decisions are in liveness.ts; this file is the I/O.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ReplicaAddress } from '../../wire/messages.js';
import { forwardingPeer, liveReplicas, replicaAddresses, sameAddresses, type ReplicaRecord } from './liveness.js';
import type { MembershipStore } from './membership-store.js';

export interface MembershipOptions {
  /** This replica's identity (--instance). */
  id: string;
  /** host:port agents and peers dial to reach this replica (--advertise-agent-address). */
  address: string;
  heartbeatMs: number;
  /** A replica whose heartbeat is older than this is gone. */
  ttlMs: number;
  /** Clusters this replica has agent links for now (written with every heartbeat). */
  clusters: () => string[];
  log: Logger;
  registry: Registry;
}

export interface MembershipEvents {
  /** The live replica set changed (ids or addresses): agents are told the new list. */
  change: [ReplicaAddress[]];
}

export class ReplicaMembership extends EventEmitter<MembershipEvents> {
  private liveSet: ReplicaRecord[] = [];
  private announced: ReplicaAddress[] = [];
  private seen = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private round: Promise<void> | null = null;
  private again = false;
  private stopped = false;
  private readonly failures: Counter;

  constructor(
    private readonly store: MembershipStore,
    private readonly options: MembershipOptions,
  ) {
    super();
    const registers = [options.registry];
    const self = this;
    new Gauge({
      name: 'fedtunnel_replicas_live',
      help: 'Hub replicas with a heartbeat younger than --replica-ttl, as this replica last read them (itself included)',
      registers,
      collect() {
        this.set(self.liveSet.length);
      },
    });
    this.failures = new Counter({ name: 'fedtunnel_replica_heartbeat_failures_total', help: 'Membership heartbeats or reads that failed (store unreachable)', registers });
  }

  /** The first heartbeat and read: a replica that cannot reach the membership table does not start. */
  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => this.nudge(), this.options.heartbeatMs);
  }

  /** Runs a heartbeat soon (clusters changed); rounds never overlap, a request during one runs one more. */
  nudge(): void {
    if (this.stopped) return;
    if (this.round) {
      this.again = true;
      return;
    }
    this.round = this.beat()
      .catch((error: Error) => {
        this.failures.inc();
        this.options.log.warn({ err: error.message }, 'replica heartbeat failed; keeping the last view');
      })
      .finally(() => {
        this.round = null;
        if (this.again) {
          this.again = false;
          this.nudge();
        }
      });
  }

  /** Live replicas (this one included once its first heartbeat is read back), by id. */
  live(): readonly ReplicaRecord[] {
    return this.liveSet;
  }

  /** What agents are told: every live replica's id and address. */
  announcement(): ReplicaAddress[] {
    return this.announced;
  }

  /** A live peer that reported an agent of `cluster`, or null. */
  peerFor(cluster: string): ReplicaRecord | null {
    return forwardingPeer(cluster, this.liveSet, this.options.id);
  }

  /** Whether any replica ever had an agent of `cluster`. */
  hasSeen(cluster: string): boolean {
    return this.seen.has(cluster);
  }

  /** Stops heartbeats and removes this replica's row, so agents drop it without waiting for the TTL. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.round;
    try {
      await this.store.leave(this.options.id);
    } catch (error) {
      this.options.log.warn({ err: (error as Error).message }, 'could not remove this replica from the membership table; it ages out after the TTL');
    }
    await this.store.close();
  }

  private async beat(): Promise<void> {
    const { id, address, clusters, ttlMs } = this.options;
    await this.store.heartbeat({ id, address, clusters: [...clusters()].sort() });
    const snapshot = await this.store.read();
    if (this.stopped) return;
    this.liveSet = liveReplicas(snapshot.replicas, snapshot.nowMs, ttlMs);
    this.seen = new Set(snapshot.seenClusters);
    const next = replicaAddresses(this.liveSet);
    if (!sameAddresses(next, this.announced)) {
      this.announced = next;
      this.options.log.info({ replicas: next }, 'live replica set changed');
      this.emit('change', next);
    }
  }
}
