// The one dial contract: dial(cluster, "host:port") → a Duplex to that address inside the
// cluster, or a DialError with a stable code. The CONNECT frontend uses it today; the Kubernetes
// API proxy and the federation controller will use exactly this.
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { parseHostPort } from '../common/address.js';
import { DialError } from '../wire/errors.js';
import type { SpliceableStream } from '../wire/splice.js';
import type { AgentLink, AgentRegistry } from './registry.js';
import type { ServerMetrics } from './metrics.js';

export interface DialOptions {
  /** Overrides the server's dial timeout (never above it). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Correlation id; generated when absent. */
  sid?: string;
  /** Who asked, for logs. */
  requester?: string;
  /** Only this replica's own agent links: never forward to a peer (a dial a peer forwarded to us). */
  local?: boolean;
}

/** A tunnel stream, or a stream piped through a peer replica (HA fallback): a Duplex either way. */
export type DialedStream = SpliceableStream;

export type DialFunction = (cluster: string, address: string, options?: DialOptions) => Promise<DialedStream>;

/** HA: forwards a dial this replica has no link for to a live peer that has one (proxy-server/replicas/). */
export interface DialForwarder {
  /** The peer to forward a dial for `cluster` to, or null when no live peer reported an agent of it. */
  peerFor(cluster: string): { id: string; address: string } | null;
  forward(peer: { id: string; address: string }, request: { cluster: string; address: string; sid: string; timeoutMs: number; requester: string }, signal?: AbortSignal): Promise<DialedStream>;
}

/** Why a replica may hand a dial to a peer: it has no usable link of its own for the cluster. */
const FORWARDABLE = new Set(['NO_AGENT', 'UNKNOWN_CLUSTER', 'AGENT_DRAINING']);

/** Attempts per dial when links go away under it: the first link and at most two others. */
export const MAX_DIAL_ATTEMPTS = 3;

/**
 * Whether a failed OPEN may be tried again on another link. Only when the link itself went away
 * before the agent answered — its GOAWAY crossed our OPEN (AGENT_DRAINING) or it closed
 * (LINK_LOST): no byte of the client has gone anywhere yet, the destination at most saw a
 * connection that is then closed. An agent replacing its link (HA relink, certificate renewal)
 * ends an idle link right after its GOAWAY, so without this a dial in that instant fails with 502.
 * Errors about the destination or limits are the answer, not a reason to retry.
 */
export function retryOnAnotherLink(error: unknown, attempt: number, remainingMs: number, aborted: boolean): boolean {
  if (aborted || attempt >= MAX_DIAL_ATTEMPTS || remainingMs <= 0) return false;
  return error instanceof DialError && (error.code === 'AGENT_DRAINING' || error.code === 'LINK_LOST');
}

export function newStreamId(): string {
  return randomBytes(6).toString('base64url');
}

export class Dialer {
  private pending = 0;
  /** Set on HA replicas (--advertise-agent-address). */
  forwarder: DialForwarder | null = null;
  /** Open streams by requester ("connect", "federation-controller", …): long-lived ones are told apart from leaks. */
  private readonly open = new Map<string, number>();

  constructor(
    private readonly agents: AgentRegistry,
    private readonly metrics: ServerMetrics,
    private readonly log: Logger,
    private readonly limits: { dialTimeoutMs: number; maxPendingDials: number },
    /** Told of every failed dial (the status page shows each cluster's latest). */
    private readonly onFailure?: (cluster: string, error: DialError) => void,
  ) {}

  get pendingDials(): number {
    return this.pending;
  }

  openStreamsByRequester(): Record<string, number> {
    return Object.fromEntries(this.open);
  }

  readonly dial: DialFunction = async (cluster, address, options = {}) => {
    const started = performance.now();
    const sid = options.sid ?? newStreamId();
    const log = this.log.child({ sid, cluster, target: address });
    try {
      const target = parseHostPort(address);
      if (!target) throw new DialError('BAD_TARGET', `not a host:port: ${JSON.stringify(address)}`);
      if (this.pending >= this.limits.maxPendingDials) {
        throw new DialError('TOO_MANY_PENDING', `${this.pending} dials pending (limit ${this.limits.maxPendingDials})`);
      }
      const timeoutMs = Math.min(options.timeoutMs ?? this.limits.dialTimeoutMs, this.limits.dialTimeoutMs);
      let stream: DialedStream | undefined;
      let via: Record<string, unknown> = {};
      this.pending++;
      this.metrics.pendingDials.inc();
      try {
        for (let attempt = 1; ; attempt++) {
          const remainingMs = Math.round(timeoutMs - (performance.now() - started));
          const link = this.pickOrPeer(cluster, options.local === true);
          try {
            if ('peer' in link) {
              via = { peer: link.peer.id };
              stream = await this.forward(link.peer, { cluster, address, sid, timeoutMs: remainingMs, requester: options.requester ?? 'unnamed' }, options.signal);
            } else {
              via = { link: link.linkId };
              stream = await link.session.open(target.host, target.port, { sid, timeoutMs: remainingMs, signal: options.signal });
            }
            break;
          } catch (error) {
            const leftMs = timeoutMs - (performance.now() - started);
            if (!retryOnAnotherLink(error, attempt, leftMs, options.signal?.aborted === true)) throw error;
            const code = (error as DialError).code;
            this.metrics.redials.inc({ reason: code });
            log.info({ ...via, code, attempt }, 'link went away before the agent answered; dialing on another link');
          }
        }
      } finally {
        this.pending--;
        this.metrics.pendingDials.dec();
      }
      const seconds = (performance.now() - started) / 1000;
      this.metrics.dials.inc({ cluster, result: 'ok' });
      this.metrics.dialDuration.observe({ result: 'ok' }, seconds);
      log.info({ ...via, requester: options.requester, ms: Math.round(seconds * 1000) }, 'stream open');
      this.observeStream(stream, cluster, options.requester ?? 'unnamed', started, log);
      return stream;
    } catch (error) {
      const dialError = error instanceof DialError ? error : new DialError('DIAL_FAILED', (error as Error).message);
      this.metrics.dials.inc({ cluster, result: dialError.code });
      this.metrics.dialDuration.observe({ result: dialError.code }, (performance.now() - started) / 1000);
      log.info({ code: dialError.code, requester: options.requester, err: dialError.message }, 'dial failed');
      this.onFailure?.(cluster, dialError);
      throw dialError;
    }
  };

  /** This replica's best link for the cluster; without one, a live peer that has one (unless local only). */
  private pickOrPeer(cluster: string, localOnly: boolean): AgentLink | { peer: { id: string; address: string } } {
    try {
      return this.agents.pick(cluster);
    } catch (error) {
      if (localOnly || !this.forwarder || !(error instanceof DialError) || !FORWARDABLE.has(error.code)) throw error;
      const peer = this.forwarder.peerFor(cluster);
      if (!peer) throw error;
      return { peer };
    }
  }

  private async forward(peer: { id: string; address: string }, request: Parameters<DialForwarder['forward']>[1], signal?: AbortSignal): Promise<DialedStream> {
    try {
      const stream = await this.forwarder!.forward(peer, request, signal);
      this.metrics.forwardedDials.inc({ result: 'ok' });
      return stream;
    } catch (error) {
      this.metrics.forwardedDials.inc({ result: error instanceof DialError ? error.code : 'DIAL_FAILED' });
      throw error;
    }
  }

  private observeStream(stream: DialedStream, cluster: string, requester: string, opened: number, log: Logger): void {
    this.open.set(requester, (this.open.get(requester) ?? 0) + 1);
    stream.once('close', () => {
      const left = this.open.get(requester)! - 1;
      if (left === 0) this.open.delete(requester);
      else this.open.set(requester, left);
      this.metrics.streamBytes.inc({ cluster, direction: 'to_agent' }, stream.bytesSent);
      this.metrics.streamBytes.inc({ cluster, direction: 'from_agent' }, stream.bytesReceived);
      this.metrics.streamDuration.observe({ cluster }, (performance.now() - opened) / 1000);
      log.info({ sent: stream.bytesSent, received: stream.bytesReceived, err: stream.errored?.message }, 'stream closed');
    });
  }
}
