// ClusterAgent: keeps one live outbound link to the proxy-server, answers its dials, and drains
// on shutdown. When the server announces GOAWAY (it is restarting), the agent opens a fresh link
// at once and lets the old one finish its streams, so a rolling restart drops nothing.
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import tls from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { MuxSession } from '../wire/session.js';
import { FEATURE_REPLICAS, PROTOCOL_VERSION } from '../wire/frames.js';
import { DialError } from '../wire/errors.js';
import type { OpenMessage } from '../wire/messages.js';
import type { TunnelStream } from '../wire/stream.js';
import { splice } from '../wire/splice.js';
import { openCarrier, type CarrierOptions } from './connector.js';
import { ReplicaLinks, type ReplicaLinkState } from './links.js';
import type { HostPort } from '../common/address.js';
import { dialDestination } from './destination.js';
import type { AgentOptions } from './options.js';

export interface AgentStatus {
  connected: boolean;
  draining: boolean;
  links: number;
  streams: number;
  reconnects: number;
  /** HA hubs: every replica the hub announced and whether this agent holds a link to it (empty: a single hub). */
  replicas: ReplicaLinkState[];
}

/** /debug/state: what this agent holds open, so a test can tell a leak from the expected link. */
export interface AgentDebugState {
  instance: string;
  /** Every link not yet closed; `current` is the one new dials arrive on, the others are draining. */
  links: Array<{ current: boolean; streams: number; remoteDraining: boolean; localDraining: boolean; replica?: string }>;
  streams: number;
  /** Destination dials in progress (OPEN received, not yet accepted or refused). */
  pendingDials: number;
}

/** Exponential backoff with ±20 % jitter so agents of a restarted server do not return in step. */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number, random = Math.random): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(base * (0.8 + 0.4 * random()));
}

/** The TLS context of new links, and the serial of the certificate in it (logged with each link). */
function createSecureContext(options: AgentOptions): { context: tls.SecureContext; serial: string } {
  const cert = fs.readFileSync(options.certFile);
  const context = tls.createSecureContext({ ca: fs.readFileSync(options.caFile), cert, key: fs.readFileSync(options.keyFile) });
  return { context, serial: new X509Certificate(cert).serialNumber.toLowerCase() };
}

export class ClusterAgent {
  private readonly sessions = new Set<MuxSession>();
  /** The link new dials arrive on; older ones are draining. */
  private current: MuxSession | null = null;
  private readonly stopController = new AbortController();
  private readonly carrierOptions: CarrierOptions;
  private running: Promise<void> | null = null;
  private reconnects = 0;
  private draining = false;
  private pendingDials = 0;
  private certSerial: string;
  /** The certificate serial each link was opened with, for the logs of its drain. */
  private readonly linkSerials = new WeakMap<MuxSession, string>();
  /** Set while the connect loop waits on a healthy link: asks it for a new link (renewed certificate). */
  private wakeForRotation: (() => void) | null = null;
  /** HA hubs: one more link to each replica the main link does not reach (links.ts). */
  private readonly replicaLinks: ReplicaLinks;

  constructor(
    private readonly options: AgentOptions,
    private readonly log: Logger,
  ) {
    const { context, serial } = createSecureContext(options);
    this.certSerial = serial;
    this.carrierOptions = {
      kind: options.carrier,
      server: options.server,
      serverName: options.serverName,
      secureContext: context,
      proxy: options.proxy,
      timeoutMs: options.connectTimeoutMs,
    };
    this.replicaLinks = new ReplicaLinks({
      open: (address) => this.establish(address),
      retire: (session, reason) => this.retire(session, reason),
      mainReplica: () => {
        const current = this.current;
        return current && !current.isClosed && !current.remoteDraining && !current.localDraining ? (current.peerHello?.instance ?? null) : null;
      },
      backoff: (attempt) => backoffDelay(attempt, options.backoffInitialMs, options.backoffMaxMs),
      log: log.child({ part: 'replica-links' }),
    });
  }

  /** Re-reads CA, certificate and key (SIGHUP); the next link uses them, the current one keeps its own. */
  reloadCertificates(): void {
    const { context, serial } = createSecureContext(this.options);
    this.carrierOptions.secureContext = context;
    this.certSerial = serial;
  }

  /**
   * After a renewal: re-reads the certificate, opens a new link with it and then drains the old
   * one locally (GOAWAY: the hub sends it no new dials; its open streams finish), so no stream is
   * dropped. While the agent is between links the next one uses the new certificate anyway.
   */
  rotateLink(): void {
    this.reloadCertificates();
    this.wakeForRotation?.();
    this.replicaLinks.rotate();
  }

  status(): AgentStatus {
    let streams = 0;
    for (const session of this.sessions) streams += session.streamCount;
    const current = this.current;
    const replicas = this.replicaLinks.states();
    return {
      // Any usable link serves dials: with HA hubs the main one may be between replicas.
      connected: (current !== null && !current.isClosed && !current.remoteDraining) || replicas.some((r) => r.linked),
      draining: this.draining,
      links: this.sessions.size,
      streams,
      reconnects: this.reconnects,
      replicas,
    };
  }

  debugState(): AgentDebugState {
    const links = [...this.sessions].map((session) => ({
      current: session === this.current,
      streams: session.streamCount,
      remoteDraining: session.remoteDraining,
      localDraining: session.localDraining,
      replica: session === this.current ? session.peerHello?.instance : this.replicaLinks.replicaOf(session),
    }));
    return { instance: this.options.instance, links, streams: links.reduce((n, link) => n + link.streams, 0), pendingDials: this.pendingDials };
  }

  start(): void {
    this.running ??= this.connectLoop();
  }

  /**
   * SIGTERM: tell the server we are going away (it sends no new dials), let open streams finish
   * until the deadline, then close. Resolves when every link is closed.
   */
  async drain(timeoutMs = this.options.drainTimeoutMs): Promise<void> {
    this.draining = true;
    this.stopController.abort();
    const keepersStopped = this.replicaLinks.stop();
    for (const session of this.sessions) session.goAway('agent shutting down');
    const deadline = Date.now() + timeoutMs;
    while (this.sessions.size > 0) {
      const busy = [...this.sessions].filter((s) => s.streamCount > 0);
      for (const session of this.sessions) if (session.streamCount === 0) session.end();
      if (busy.length > 0 && Date.now() >= deadline) {
        for (const session of busy) session.destroy(new Error('drain deadline passed'));
      }
      await Promise.race([
        ...[...this.sessions].map((s) => new Promise((resolve) => s.once('close', resolve))),
        sleep(Math.max(1, Math.min(100, deadline - Date.now()))),
      ]);
    }
    await keepersStopped;
    await this.running;
  }

  private async connectLoop(): Promise<void> {
    const { options, log } = this;
    const signal = this.stopController.signal;
    let attempt = 0;
    /** The link a rotation replaces: drained once its successor is up (or kept serving if that fails). */
    let replaced: MuxSession | null = null;
    while (!signal.aborted) {
      try {
        const session = await this.establish();
        attempt = 0;
        if (replaced) this.retire(replaced, 'certificate renewed');
        replaced = null;
        // The main link's replica is known now: a keeper holding a link to it drains (dedupe).
        this.replicaLinks.reconcile();
        // Wait until this link dies, the server asks us to move on, or a renewal wants a new link.
        let onAbort = (): void => undefined;
        const rotate = await new Promise<boolean>((resolve) => {
          session.once('close', () => resolve(false));
          session.once('goaway', () => resolve(false));
          onAbort = () => resolve(false);
          signal.addEventListener('abort', onAbort, { once: true });
          this.wakeForRotation = () => resolve(true);
        });
        // Each link adds one: removed so that many renewals do not pile listeners up on the signal.
        signal.removeEventListener('abort', onAbort);
        this.wakeForRotation = null;
        if (signal.aborted) break;
        // The main link is going: keepers take over the replicas it reached until it is back.
        if (!rotate) this.replicaLinks.reconcile();
        if (rotate && !session.isClosed) {
          replaced = session;
          continue;
        }
      } catch (error) {
        // A typed refusal (e.g. CERTIFICATE_REVOKED) carries its code so the operator sees why, not just "closed".
        log.warn({ err: (error as Error).message, code: (error as { code?: string }).code, attempt }, 'link attempt failed');
      }
      if (signal.aborted) break;
      const delay = backoffDelay(attempt++, options.backoffInitialMs, options.backoffMaxMs);
      this.reconnects++;
      log.info({ delayMs: delay }, 'reconnecting');
      await sleep(delay, undefined, { signal }).catch(() => undefined);
    }
  }

  /** Opens a link to --server (the main link), or to one replica's own address (links.ts), and waits for the HELLO. */
  private async establish(replicaAddress?: HostPort): Promise<MuxSession> {
    const { options } = this;
    // A replica's certificate is checked against the same name as the main link's (--server-name).
    const carrier = await openCarrier(replicaAddress ? { ...this.carrierOptions, server: replicaAddress } : this.carrierOptions);
    const session = new MuxSession({
      role: 'agent',
      carrier: carrier.stream,
      coalesceWrites: carrier.coalesceWrites,
      window: options.windowBytes,
      keepaliveIntervalMs: options.keepaliveIntervalMs,
      keepaliveTimeoutMs: options.keepaliveTimeoutMs,
      maxStreams: options.maxStreams,
      instance: options.instance,
      features: [FEATURE_REPLICAS],
    });
    this.sessions.add(session);
    session.on('open', (stream, target) => this.handleOpen(session, stream, target));
    // After the HELLO's continuation has made this the main link (both may arrive in one read), so the
    // replica the main link is on is known when the keepers are reconciled.
    session.on('replicas', (message) => setImmediate(() => this.replicaLinks.update(message.replicas)));
    try {
      await new Promise<void>((resolve, reject) => {
        session.once('hello', (hello) => {
          if (hello.version !== PROTOCOL_VERSION) reject(new Error(`server speaks protocol version ${hello.version}, want ${PROTOCOL_VERSION}`));
          else resolve();
        });
        session.once('close', (error) => reject(error ?? new Error('link closed during handshake')));
      });
    } catch (error) {
      session.destroy(error as Error);
      this.sessions.delete(session);
      throw error;
    }
    const log = this.log.child({ server: session.peerHello?.instance, carrier: options.carrier, ...(replicaAddress ? { replicaLink: true } : {}) });
    log.info({ serial: this.certSerial }, 'link established');
    this.linkSerials.set(session, this.certSerial);
    if (!replicaAddress) this.current = session;
    session.on('goaway', (reason, code) => {
      if (code === undefined) log.info({ reason }, 'server going away; its streams may finish');
      else log.warn({ reason, code }, 'server closed the link');
    });
    session.once('close', (error) => {
      this.sessions.delete(session);
      if (this.current === session) this.current = null;
      log.info({ reason: error?.message ?? 'closed' }, 'link closed');
    });
    return session;
  }

  /** Local drain of a replaced link: no new dials (GOAWAY), closed once its streams are done or at the drain deadline. */
  private retire(session: MuxSession, reason: string): void {
    if (session.isClosed) return;
    session.goAway(reason);
    const log = this.log.child({ serial: this.linkSerials.get(session) });
    log.info({ reason, streams: session.streamCount }, 'old link draining');
    const deadline = Date.now() + this.options.drainTimeoutMs;
    const check = (): void => {
      if (session.isClosed) return;
      if (session.streamCount === 0) {
        log.info({ reason }, 'old link drained');
        session.end();
      } else if (Date.now() >= deadline) {
        log.warn({ reason, streams: session.streamCount }, 'old link drain deadline passed');
        session.destroy(new Error('drain deadline passed'));
      } else {
        setTimeout(check, 100).unref();
      }
    };
    check();
  }

  private handleOpen(session: MuxSession, stream: TunnelStream, target: OpenMessage): void {
    const log = this.log.child({ sid: target.sid, target: `${target.host}:${target.port}` });
    const abort = new AbortController();
    stream.once('close', () => abort.abort());
    const timeoutMs = Math.min(target.timeoutMs, this.options.dialTimeoutMs);
    const started = performance.now();
    this.pendingDials++;
    dialDestination(target.host, target.port, this.options.policy, timeoutMs, abort.signal).finally(() => this.pendingDials--).then(
      (socket) => {
        if (stream.destroyed) {
          socket.destroy();
          return;
        }
        session.accept(stream);
        log.debug({ ms: Math.round(performance.now() - started) }, 'destination connected');
        splice(stream, socket, 'DESTINATION_ERROR', (result) => {
          log.debug({ toDestination: result.bytesFromSocket === 0 ? undefined : result.bytesFromSocket, err: result.error?.message }, 'stream closed');
        });
      },
      (error: Error) => {
        const dialError = error instanceof DialError ? error : new DialError('DIAL_FAILED', error.message);
        log.info({ code: dialError.code, err: dialError.message }, 'dial refused');
        session.reject(stream, dialError.code, dialError.message);
      },
    );
  }
}
