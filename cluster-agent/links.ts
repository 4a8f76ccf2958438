// One link per hub replica (HA hubs). The agent's main link goes to --server (typically a load
// balancer in front of the replicas); every hub that supports it answers with the live replica
// set (REPLICAS: identity and advertised address of each). For each replica the main link does not
// already reach, a keeper holds one more link to that replica's own address, so a dial on any
// replica finds this agent locally.
//
// Dedupe is by replica identity (the `instance` of the hub's HELLO): when the main link lands on a
// replica a keeper already holds, that keeper's link drains (its streams finish) and the keeper
// stops; when the main link moves elsewhere, a keeper is started for the replica it left if that
// replica is still live. A keeper whose replica leaves the set drains its link and stops. Keepers
// reconnect with the agent's backoff.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { formatHostPort, parseHostPort, type HostPort } from '../common/address.js';
import type { ReplicaAddress } from '../wire/messages.js';
import type { MuxSession } from '../wire/session.js';

/** What the links need of the agent that owns them. */
export interface LinkHost {
  /** Opens a link (not the main one) to `address` and resolves once the hub's HELLO arrived. */
  open(address: HostPort): Promise<MuxSession>;
  /** Drains a link locally: no new dials, closed once its streams are done (or at the drain deadline). */
  retire(session: MuxSession, reason: string): void;
  /** The replica the main link is on now (HELLO instance), or null while it is down or draining. */
  mainReplica(): string | null;
  backoff(attempt: number): number;
  log: Logger;
}

export interface ReplicaLinkState {
  id: string;
  address: string;
  /** Held by the main link (through --server) rather than a keeper. */
  main: boolean;
  linked: boolean;
}

/** The replicas to hold keeper links to: every announced one except the one the main link is on. Pure. */
export function keeperTargets(announced: readonly ReplicaAddress[], mainReplica: string | null): Map<string, string> {
  const targets = new Map<string, string>();
  for (const r of announced) if (r.id !== mainReplica) targets.set(r.id, r.address);
  return targets;
}

class ReplicaKeeper {
  session: MuxSession | null = null;
  private stopped = false;
  private readonly stopSignal = new AbortController();
  private wake: (() => void) | null = null;
  readonly running: Promise<void>;

  constructor(
    readonly id: string,
    readonly address: string,
    private readonly host: LinkHost,
  ) {
    this.running = this.run();
  }

  /** Drains this replica's link and ends the loop. */
  stop(reason: string): void {
    if (this.stopped) return;
    this.stopped = true;
    this.stopSignal.abort();
    this.wake?.();
    if (this.session && !this.session.isClosed) this.host.retire(this.session, reason);
  }

  /** A renewed certificate: drain the current link; the loop opens the next one with the new certificate. */
  rotate(): void {
    this.wake?.();
  }

  private async run(): Promise<void> {
    const log = this.host.log.child({ replica: this.id, address: this.address });
    const target = parseHostPort(this.address);
    if (!target) {
      log.warn({}, 'replica address is not host:port; not linking to it');
      return;
    }
    let attempt = 0;
    while (!this.stopped) {
      try {
        const session = await this.host.open(target);
        const instance = session.peerHello?.instance;
        if (this.stopped || instance !== this.id) {
          this.host.retire(session, this.stopped ? 'replica left' : 'wrong replica');
          if (this.stopped) break;
          throw new Error(`${formatHostPort(target)} answered as replica ${JSON.stringify(instance)}, not ${JSON.stringify(this.id)}`);
        }
        attempt = 0;
        this.session = session;
        log.info({}, 'replica link established');
        await new Promise<void>((resolve) => {
          session.once('close', () => resolve());
          session.once('goaway', () => resolve());
          this.wake = resolve;
        });
        this.wake = null;
        this.session = null;
        if (!session.isClosed) this.host.retire(session, this.stopped ? 'replica left' : 'replica link replaced');
      } catch (error) {
        log.warn({ err: (error as Error).message, code: (error as { code?: string }).code, attempt }, 'replica link attempt failed');
      }
      if (this.stopped) break;
      await sleep(this.host.backoff(attempt++), undefined, { signal: this.stopSignal.signal }).catch(() => undefined);
    }
  }
}

export class ReplicaLinks {
  private announced: ReplicaAddress[] = [];
  private readonly keepers = new Map<string, ReplicaKeeper>();
  private stopped = false;

  constructor(private readonly host: LinkHost) {}

  /** A REPLICAS frame arrived on any link: the latest list wins. */
  update(replicas: ReplicaAddress[]): void {
    if (this.stopped) return;
    this.announced = replicas;
    this.reconcile();
  }

  /** Starts and stops keepers so that every announced replica is reached exactly once. */
  reconcile(): void {
    if (this.stopped) return;
    const targets = keeperTargets(this.announced, this.host.mainReplica());
    for (const [id, keeper] of this.keepers) {
      const address = targets.get(id);
      if (address === keeper.address) continue;
      keeper.stop(address === undefined ? (this.announced.some((r) => r.id === id) ? 'main link reaches this replica' : 'replica left') : 'replica moved');
      this.keepers.delete(id);
    }
    for (const [id, address] of targets) {
      if (!this.keepers.has(id)) this.keepers.set(id, new ReplicaKeeper(id, address, this.host));
    }
  }

  rotate(): void {
    for (const keeper of this.keepers.values()) keeper.rotate();
  }

  /** Every announced replica and whether this agent holds a link to it. */
  states(): ReplicaLinkState[] {
    const main = this.host.mainReplica();
    return this.announced.map(({ id, address }) => {
      const keeper = this.keepers.get(id);
      return { id, address, main: id === main, linked: id === main || (keeper?.session !== null && keeper?.session !== undefined && !keeper.session.isClosed) };
    });
  }

  /** The replica a keeper's link goes to (for debug state), or undefined for the main link. */
  replicaOf(session: MuxSession): string | undefined {
    for (const keeper of this.keepers.values()) if (keeper.session === session) return keeper.id;
    return undefined;
  }

  /** Stops every keeper (their links are drained by the agent); resolves when their loops ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    const keepers = [...this.keepers.values()];
    this.keepers.clear();
    for (const keeper of keepers) keeper.stop('agent shutting down');
    await Promise.all(keepers.map((k) => k.running));
  }
}
