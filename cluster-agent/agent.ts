// ClusterAgent: keeps one live outbound link to the proxy-server, answers its dials, and drains
// on shutdown. When the server announces GOAWAY (it is restarting), the agent opens a fresh link
// at once and lets the old one finish its streams, so a rolling restart drops nothing.
import fs from 'node:fs';
import tls from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { MuxSession } from '../wire/session.js';
import { PROTOCOL_VERSION } from '../wire/frames.js';
import { DialError } from '../wire/errors.js';
import type { OpenMessage } from '../wire/messages.js';
import type { TunnelStream } from '../wire/stream.js';
import { splice } from '../wire/splice.js';
import { openCarrier, type CarrierOptions } from './connector.js';
import { dialDestination } from './destination.js';
import type { AgentOptions } from './options.js';

export interface AgentStatus {
  connected: boolean;
  draining: boolean;
  links: number;
  streams: number;
  reconnects: number;
}

/** Exponential backoff with ±20 % jitter so agents of a restarted server do not return in step. */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number, random = Math.random): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(base * (0.8 + 0.4 * random()));
}

function createSecureContext(options: AgentOptions): tls.SecureContext {
  return tls.createSecureContext({ ca: fs.readFileSync(options.caFile), cert: fs.readFileSync(options.certFile), key: fs.readFileSync(options.keyFile) });
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

  constructor(
    private readonly options: AgentOptions,
    private readonly log: Logger,
  ) {
    this.carrierOptions = {
      kind: options.carrier,
      server: options.server,
      serverName: options.serverName,
      secureContext: createSecureContext(options),
      proxy: options.proxy,
      timeoutMs: options.connectTimeoutMs,
    };
  }

  /** Re-reads CA, certificate and key (SIGHUP); the next link uses them, the current one keeps its own. */
  reloadCertificates(): void {
    this.carrierOptions.secureContext = createSecureContext(this.options);
  }

  status(): AgentStatus {
    let streams = 0;
    for (const session of this.sessions) streams += session.streamCount;
    const current = this.current;
    return {
      connected: current !== null && !current.isClosed && !current.remoteDraining,
      draining: this.draining,
      links: this.sessions.size,
      streams,
      reconnects: this.reconnects,
    };
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
    await this.running;
  }

  private async connectLoop(): Promise<void> {
    const { options, log } = this;
    const signal = this.stopController.signal;
    let attempt = 0;
    while (!signal.aborted) {
      try {
        const session = await this.establish();
        attempt = 0;
        // Wait until this link dies or the server asks us to move on, then get a new one.
        await new Promise<void>((resolve) => {
          session.once('close', () => resolve());
          session.once('goaway', () => resolve());
          signal.addEventListener('abort', () => resolve(), { once: true });
        });
        if (signal.aborted) break;
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

  private async establish(): Promise<MuxSession> {
    const { options } = this;
    const carrier = await openCarrier(this.carrierOptions);
    const session = new MuxSession({
      role: 'agent',
      carrier: carrier.stream,
      coalesceWrites: carrier.coalesceWrites,
      window: options.windowBytes,
      keepaliveIntervalMs: options.keepaliveIntervalMs,
      keepaliveTimeoutMs: options.keepaliveTimeoutMs,
      maxStreams: options.maxStreams,
      instance: options.instance,
    });
    this.sessions.add(session);
    session.on('open', (stream, target) => this.handleOpen(session, stream, target));
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
    const log = this.log.child({ server: session.peerHello?.instance, carrier: options.carrier });
    log.info('link established');
    this.current = session;
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

  private handleOpen(session: MuxSession, stream: TunnelStream, target: OpenMessage): void {
    const log = this.log.child({ sid: target.sid, target: `${target.host}:${target.port}` });
    const abort = new AbortController();
    stream.once('close', () => abort.abort());
    const timeoutMs = Math.min(target.timeoutMs, this.options.dialTimeoutMs);
    const started = performance.now();
    dialDestination(target.host, target.port, this.options.policy, timeoutMs, abort.signal).then(
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
