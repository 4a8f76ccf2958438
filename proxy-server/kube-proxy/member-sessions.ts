// HTTP/2 to one member's API server, as kubectl speaks it to a kube-apiserver: every plain
// /clusters request and watch for that member is a stream of one h2 session over one
// TLS-over-tunnel connection, so an idle watch costs the hub an h2 stream (a few hundred bytes)
// instead of a TLS connection, its buffers and a tunnel stream. A further session is dialed only
// when the member's SETTINGS_MAX_CONCURRENT_STREAMS is reached (Node would queue the request
// forever: a watch never frees its stream). A session that dies with its tunnel link, or that the
// member ends with GOAWAY, takes no new streams; the next request dials a new one.
//
// A member that does not choose h2 in ALPN (an HTTP/1.1-only server) is remembered, and the
// caller uses its HTTP/1.1 keep-alive pool instead (acquire() resolves null).
import http2 from 'node:http2';
import type tls from 'node:tls';
import type { Logger } from 'pino';
import type { MemberConfig } from '../../federation/controller/member-config.js';
import { dialMemberTls, tunnelStreamIdOf, type ClusterDial } from '../../federation/controller/tunnel-agent.js';

/** Per-stream receive window: a slow client holds at most this at the hub per request. */
const STREAM_WINDOW = 1024 * 1024;
/** Connection receive window: big enough that a few stalled clients do not stall the others. */
const SESSION_WINDOW = 32 * 1024 * 1024;
/** A session with no stream for this long is closed by the hub, before a member's idle timeout (60 s by default) races a new request. */
export const IDLE_SESSION_MS = 30_000;

export interface MemberSession {
  session: http2.ClientHttp2Session;
  /** Tunnel stream id under the session, for request logs. */
  sid: string | undefined;
  /** Opens a stream on this session and counts it. */
  request(headers: http2.OutgoingHttpHeaders, options?: http2.ClientSessionRequestOptions): http2.ClientHttp2Stream;
}

interface Entry extends MemberSession {
  open: number;
  idleTimer: NodeJS.Timeout | undefined;
}

export class MemberSessions {
  private readonly entries = new Set<Entry>();
  /** The session dial in progress, shared by every request waiting for it. */
  private dialing: SharedDial | null = null;
  private http1Only = false;
  private retired = false;

  constructor(
    private readonly config: MemberConfig,
    private readonly dial: ClusterDial,
    private readonly options: { dialTimeoutMs: number; requester: string; log: Logger },
  ) {}

  /** Open sessions (tests, metrics). */
  get sessionCount(): number {
    return this.entries.size;
  }

  /**
   * A session with room for one more stream (dialing one if needed), or null if the member speaks
   * only HTTP/1.1. `signal`: the caller went away; a session dial that every waiter has left is
   * cancelled (like an HTTP/1.1 dial of a client that leaves) instead of running into --dial-timeout.
   */
  async acquire(signal?: AbortSignal): Promise<MemberSession | null> {
    for (;;) {
      const now = this.ready();
      if (now !== undefined) return now;
      // One dial at a time: a burst of requests shares the session it brings.
      const dial = (this.dialing ??= this.startDial());
      const entry = await dial.wait(signal);
      if (entry === null) return null;
      if (usable(entry)) return entry;
      // Full already, or gone: look again (bounded by the dials that can fail).
      if (entry.session.destroyed) throw Object.assign(new Error(`HTTP/2 session to ${this.config.cluster} closed as it opened`), { code: 'ERR_HTTP2_SESSION_CLOSED' });
    }
  }

  /**
   * Without waiting: a session with room for one more stream, null if the member speaks only
   * HTTP/1.1, undefined if one must be dialed first (acquire()). Nearly every request finds one,
   * and then needs no abort signal kept for the life of the request (a watch's: hours).
   */
  ready(): MemberSession | null | undefined {
    if (this.http1Only) return null;
    for (const entry of this.entries) if (usable(entry)) return entry;
    return undefined;
  }

  private startDial(): SharedDial {
    const controller = new AbortController();
    const result = this.open(controller.signal).finally(() => {
      if (this.dialing === shared) this.dialing = null;
    });
    const shared = new SharedDial(result, controller);
    return shared;
  }

  /** The config changed or the cluster left: no new streams; open ones (watches) run to their end, then each session closes. */
  retire(): void {
    this.retired = true;
    for (const entry of this.entries) entry.session.close();
  }

  /** Hub shutdown: every session and its streams end now. */
  destroy(): void {
    this.retired = true;
    for (const entry of this.entries) entry.session.destroy();
  }

  private async open(signal: AbortSignal): Promise<Entry | null> {
    const c = this.config;
    const socket = await dialMemberTls(c, this.dial, { dialTimeoutMs: this.options.dialTimeoutMs, requester: this.options.requester, alpn: ['h2', 'http/1.1'], signal });
    await handshake(socket);
    if (socket.alpnProtocol !== 'h2') {
      this.options.log.info({ cluster: c.cluster, alpn: socket.alpnProtocol }, 'kube-proxy: member does not speak HTTP/2; using HTTP/1.1 connections');
      this.http1Only = true;
      socket.destroy();
      return null;
    }
    if (this.retired) {
      socket.destroy();
      throw Object.assign(new Error(`cluster ${c.cluster} was reconfigured`), { code: 'ERR_HTTP2_SESSION_CLOSED' });
    }
    const session = http2.connect(c.server, { createConnection: () => socket, settings: { enablePush: false, initialWindowSize: STREAM_WINDOW } });
    session.setLocalWindowSize(SESSION_WINDOW);
    const entry: Entry = {
      session,
      sid: tunnelStreamIdOf(socket),
      open: 0,
      idleTimer: undefined,
      request: (headers, options) => {
        if (entry.idleTimer) clearTimeout(entry.idleTimer);
        entry.idleTimer = undefined;
        entry.open++;
        const stream = session.request(headers, options);
        // ('close' is emitted once: on() spares the once() wrapper an open watch would keep.)
        stream.on('close', () => {
          if (--entry.open === 0 && !session.closed) entry.idleTimer = setTimeout(() => session.close(), IDLE_SESSION_MS);
        });
        return stream;
      },
    };
    this.entries.add(entry);
    session.on('error', (err: Error) => this.options.log.warn({ cluster: c.cluster, sid: entry.sid, err: err.message }, 'kube-proxy: HTTP/2 session to member failed'));
    session.once('goaway', () => this.options.log.debug({ cluster: c.cluster, sid: entry.sid }, 'kube-proxy: member sent GOAWAY'));
    session.once('close', () => {
      if (entry.idleTimer) clearTimeout(entry.idleTimer);
      this.entries.delete(entry);
    });
    entry.idleTimer = setTimeout(() => session.close(), IDLE_SESSION_MS);
    return entry;
  }
}

/** Whether a session takes one more stream: alive, not told GOAWAY, below the member's stream limit. */
function usable(entry: Entry): boolean {
  const { session } = entry;
  if (session.closed || session.destroyed) return false;
  const limit = session.remoteSettings.maxConcurrentStreams ?? Infinity;
  return entry.open < limit;
}

function handshake(socket: tls.TLSSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (err: Error): void => {
      socket.off('secureConnect', done);
      socket.off('close', closed);
      socket.destroy();
      reject(err);
    };
    const closed = (): void => fail(Object.assign(new Error('the member closed the connection during the TLS handshake'), { code: 'ECONNRESET' }));
    const done = (): void => {
      socket.off('error', fail);
      socket.off('close', closed);
      resolve();
    };
    socket.once('secureConnect', done);
    socket.once('error', fail);
    socket.once('close', closed);
  });
}

/** One session dial and the requests waiting for it; the last waiter to leave cancels it. */
class SharedDial {
  private waiters = 0;

  constructor(
    private readonly result: Promise<Entry | null>,
    private readonly controller: AbortController,
  ) {
    // A cancelled dial rejects with no waiter left to see it.
    result.catch(() => undefined);
  }

  wait(signal?: AbortSignal): Promise<Entry | null> {
    if (!signal) {
      this.waiters++;
      return this.result.finally(() => this.waiters--);
    }
    if (signal.aborted) return Promise.reject(abortError());
    this.waiters++;
    return new Promise((resolve, reject) => {
      let waiting = true;
      const leave = (): void => {
        waiting = false;
        this.waiters--;
        signal.removeEventListener('abort', onAbort);
      };
      const onAbort = (): void => {
        leave();
        if (this.waiters === 0) this.controller.abort();
        reject(abortError());
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.result.then(
        (entry) => {
          if (!waiting) return;
          leave();
          resolve(entry);
        },
        (err: unknown) => {
          if (!waiting) return;
          leave();
          reject(err);
        },
      );
    });
  }
}

function abortError(): Error {
  return Object.assign(new Error('the client went away'), { code: 'ABORT_ERR', name: 'AbortError' });
}
