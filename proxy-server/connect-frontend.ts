// HTTP CONNECT frontend on top of dial(): for curl (-x / -p), kubectl's proxy-url and
// kube-apiserver's EgressSelectorConfiguration (HTTPConnect mode).
//
// Which cluster a request names, and whether its user may reach it: targets.ts.
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import fs from 'node:fs';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { ListenerGuard, type ListenerLimits } from '../common/listener-guard.js';
import { ALPN_H2_FIRST, serveHttp2, type Http2Listener } from '../common/http2-listener.js';
import { userIdentityFromPeer, type UserIdentity } from '../certs/identity.js';
import { DialError } from '../wire/errors.js';
import { splice } from '../wire/splice.js';
import { newStreamId, type DialFunction } from './dialer.js';
import type { ServerMetrics } from './metrics.js';
import type { RevocationGuard } from './revocation.js';
import { resolveConnectTarget } from './targets.js';
import { isStatusPath } from './status/routes.js';
import { sendStatus } from './status/respond.js';
import type { Decision } from '../federation/apiserver/rbac.js';
import type { KubeApiProxy } from './kube-proxy/proxy.js';

/** Bursts of clients (a controller starting up, a CI fan-out) must queue, not fail with EAGAIN. */
export const LISTEN_BACKLOG = 4096;

/** Bytes a client may send after its CONNECT head before the tunnel is up (a TLS ClientHello fits many times). */
const MAX_EARLY_BYTES = 64 * 1024;

export interface ConnectFrontendOptions {
  maxHeaderBytes: number;
  /** Handshake, header, idle and unauthenticated-connection limits of each listener. */
  limits: ListenerLimits;
  udsDefaultCluster: string | null;
  revocation?: RevocationGuard;
  /** Whether a TLS user may reach a cluster (targets.ts mayReach), asked before any dial. */
  mayReach: (who: UserIdentity, cluster: string) => Decision;
  /** The status page (status/status-page.ts), served to authenticated TLS users under /status. */
  status?: { serve(req: http.IncomingMessage, res: http.ServerResponse, who: UserIdentity): void };
  /** The Kubernetes API proxy (/clusters/<name>/…) for plain requests and upgrades on the TLS listener; absent: they get 405. */
  kubeProxy?: KubeApiProxy;
}

/** Watches, followed logs and the status page's event stream: requests that last until someone ends them. */
function isLongRequest(url: string | undefined): boolean {
  return /[?&](watch|follow)=(true|1)(&|$)/.test(url ?? '') || /\/watch\//.test(url ?? '') || (url ?? '').startsWith('/status/events');
}

/** `serial`: of the client certificate (TLS only), for revocation. */
type Principal = UserIdentity & { via: 'tls' | 'uds'; serial?: string };

export class ConnectFrontend {
  private readonly servers: http.Server[] = [];
  private readonly guards: ListenerGuard[] = [];
  /** h2 connections of the TLS listener (only with the Kubernetes API proxy). */
  private readonly http2: Http2Listener[] = [];
  /** Client sockets of established tunnels, closed on shutdown. */
  private readonly clients = new Set<Duplex>();
  /** Plain requests in flight that are expected to end soon (not watches or followed logs): shutdown waits for them. */
  private shortRequests = 0;
  private quiet: (() => void) | null = null;
  /** Set by stopAccepting(): one promise per listener, resolved when it has closed. */
  private closing: Promise<void>[] | null = null;

  constructor(
    private readonly dial: DialFunction,
    private readonly metrics: ServerMetrics,
    private readonly log: Logger,
    private readonly options: ConnectFrontendOptions,
  ) {}

  /** CONNECT over TLS; only client certificates of our CA that are not agent certificates. */
  listenTls(host: string, port: number, tlsContext: tls.SecureContextOptions): Promise<number> {
    // Client certificates are verified by the guard, so a refusal is logged with its reason.
    const server = https.createServer({
      ...tlsContext,
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
      maxHeaderSize: this.options.maxHeaderBytes,
      // /clusters clients that speak h2 (kubectl, client-go) multiplex their requests and watches
      // over one connection; CONNECT, upgrades and HTTP/1.1 clients are served as before.
      ...(this.options.kubeProxy ? { ALPNProtocols: ALPN_H2_FIRST } : {}),
    });
    this.setup(server, 'connect_tls', (req) => {
      const peer = (req.socket as tls.TLSSocket).getPeerCertificate();
      const identity = userIdentityFromPeer(peer);
      return identity ? { ...identity, via: 'tls', serial: peer.serialNumber } : null;
    });
    return this.listen(server, () => server.listen({ port, host, backlog: LISTEN_BACKLOG })).then(() => (server.address() as { port: number }).port);
  }

  /**
   * CONNECT over a Unix socket; whoever can open the file (mode 0660) may use it, to any cluster:
   * the file's owner and group are the authorization, RBAC is not asked.
   */
  async listenUnix(path: string): Promise<void> {
    fs.rmSync(path, { force: true });
    const server = http.createServer({ maxHeaderSize: this.options.maxHeaderBytes });
    this.setup(server, 'connect_uds', () => ({ user: 'system:unix-socket', groups: [], via: 'uds' }));
    await this.listen(server, () => server.listen({ path, backlog: LISTEN_BACKLOG }));
    fs.chmodSync(path, 0o660);
  }

  setSecureContext(tlsContext: tls.SecureContextOptions): void {
    for (const server of this.servers) if (server instanceof https.Server) server.setSecureContext(tlsContext);
  }

  /**
   * Shutdown, first step: the listeners take no new connections, idle keep-alive connections close,
   * and every response from now on says Connection: close, so each client's next request opens a
   * connection to another replica. Tunnels and requests in flight carry on.
   */
  stopAccepting(): void {
    if (this.closing) return;
    this.closing = this.servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
    for (const server of this.servers) server.closeIdleConnections();
  }

  /** Resolves when no short request is in flight, or at `deadline` (epoch ms). */
  async shortRequestsDone(deadline: number): Promise<void> {
    if (this.shortRequests === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.quiet = resolve;
      timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
    });
    clearTimeout(timer);
    this.quiet = null;
  }

  async close(): Promise<void> {
    this.stopAccepting();
    for (const socket of this.clients) socket.destroy();
    this.options.kubeProxy?.closeAll();
    for (const h2 of this.http2) h2.closeAll();
    for (const guard of this.guards) guard.closeUnauthenticated();
    // Proxied requests still open (watches) end with the listener.
    for (const server of this.servers) server.closeAllConnections();
    await Promise.all(this.closing!);
    for (const server of this.servers) server.closeAllConnections();
  }

  private listen(server: http.Server, start: () => void): Promise<void> {
    this.servers.push(server);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.once('listening', () => {
        server.off('error', reject);
        resolve();
      });
      start();
    });
  }

  private setup(server: http.Server | https.Server, frontend: 'connect_tls' | 'connect_uds', authenticate: (req: http.IncomingMessage) => Principal | null): ListenerGuard {
    const guard = new ListenerGuard({
      listener: frontend,
      limits: this.options.limits,
      registry: this.metrics.registry,
      log: this.log,
      // Optional at the handshake: /clusters requests may bring a bearer token instead. CONNECT
      // still requires a user certificate (checked below, refused as no_certificate without one).
      ...(frontend === 'connect_tls' ? { clientCertificate: 'optional' as const } : {}),
      // Malformed requests, oversized headers and slow heads get a status line from the guard.
      onAnswer: (status) => this.metrics.frontendRequests.inc({ frontend, status }),
    });
    this.guards.push(guard);
    server.on('connect', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      if (frontend === 'connect_tls' && !hasPeerCertificate(req)) {
        guard.refuse(req.socket, 'no_certificate', { frontend });
        socket.destroy();
        return;
      }
      const principal = authenticate(req);
      if (!principal) {
        // A valid agent certificate: answered (not reset) so the client learns why.
        guard.refused('not_a_user_certificate', req.socket, { frontend });
        this.answer(socket, frontend, 403, 'FORBIDDEN', 'client certificate carries no user identity (agent certificates cannot use this frontend)');
        return;
      }
      if (this.options.revocation?.refuses('connect_tls', principal.serial, { user: principal.user }, (fields) => guard.refused('revoked', req.socket, fields))) {
        this.answer(socket, frontend, 403, 'CERTIFICATE_REVOKED', `client certificate serial ${principal.serial?.toLowerCase()} is revoked`);
        return;
      }
      void this.handleConnect(req, socket, head, principal, frontend);
    });
    const kubeProxy = frontend === 'connect_tls' ? this.options.kubeProxy : undefined;
    // Plain requests on TLS: the status page (/status…), then the Kubernetes API proxy
    // (/clusters/<name>/…; other paths 404 as a Status); without the proxy, 405.
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      // Shutting down: this is the connection's last request.
      if (this.closing) res.setHeader('Connection', 'close');
      if (!isLongRequest(req.url)) {
        this.shortRequests++;
        res.once('close', () => {
          if (--this.shortRequests === 0) this.quiet?.();
        });
      }
      if (frontend === 'connect_tls' && this.options.status && isStatusPath(req.url)) return this.serveStatus(req, res, authenticate(req), guard);
      if (kubeProxy) return kubeProxy.handleRequest(req, res, guard);
      this.metrics.frontendRequests.inc({ frontend, status: 405 });
      res.writeHead(405, { 'content-type': 'text/plain', allow: 'CONNECT', connection: 'close' }).end('this endpoint only accepts CONNECT\n');
    });
    if (kubeProxy) server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => kubeProxy.handleUpgrade(req, socket, head, guard));
    if (kubeProxy && server instanceof https.Server) this.http2.push(serveHttp2(server, guard, { maxHeaderBytes: this.options.maxHeaderBytes }));
    guard.protect(server);
    return guard;
  }

  private async handleConnect(req: http.IncomingMessage, socket: Duplex, head: Buffer, principal: Principal, frontend: string): Promise<void> {
    const sid = newStreamId();
    // Errors on the client socket before the tunnel is up must not crash the process.
    const earlyError = (): void => void socket.destroy();
    socket.on('error', earlyError);
    const abort = new AbortController();
    socket.once('close', () => abort.abort());
    // While the dial is pending the client socket is read, so that a client that gives up is
    // seen at once (its FIN): the dial is cancelled and its pending slot freed, instead of being
    // held until --dial-timeout. A FIN before the 200 therefore cancels the tunnel: a CONNECT
    // client cannot half-close a tunnel that does not exist yet. Bytes sent early (a TLS
    // ClientHello) are kept, up to a bound, and go first into the tunnel.
    const early: Buffer[] = head.length > 0 ? [head] : [];
    let earlyBytes = head.length;
    const onEarlyData = (chunk: Buffer): void => {
      early.push(chunk);
      earlyBytes += chunk.length;
      if (earlyBytes >= MAX_EARLY_BYTES) socket.pause();
    };
    const onEarlyEnd = (): void => {
      abort.abort();
      socket.destroy();
    };
    socket.on('data', onEarlyData);
    socket.once('end', onEarlyEnd);
    try {
      const { cluster, address } = resolveConnectTarget(
        req.url ?? '',
        req.headers['proxy-authorization'],
        principal.via === 'uds' ? this.options.udsDefaultCluster : null,
      );
      if (principal.via === 'tls') this.authorize(principal, cluster);
      const tunnel = await this.dial(cluster, address, { sid, signal: abort.signal, requester: principal.user });
      socket.off('data', onEarlyData);
      socket.off('end', onEarlyEnd);
      socket.pause();
      if (socket.destroyed) {
        tunnel.destroy();
        return;
      }
      socket.off('error', earlyError);
      this.metrics.frontendRequests.inc({ frontend, status: 200 });
      socket.write(`HTTP/1.1 200 Connection Established\r\nTunnel-Stream-Id: ${sid}\r\n\r\n`);
      for (const chunk of early) tunnel.write(chunk);
      this.clients.add(socket);
      const untrack = this.options.revocation?.track('connect_tunnel', principal.serial, { user: principal.user, sid, cluster }, () => socket.destroy());
      splice(tunnel, socket, 'CLIENT_ERROR', () => {
        this.clients.delete(socket);
        untrack?.();
      });
    } catch (error) {
      socket.off('data', onEarlyData);
      socket.off('end', onEarlyEnd);
      const dialError = error instanceof DialError ? error : new DialError('DIAL_FAILED', (error as Error).message);
      // Dial failures are logged by the dialer and refusals by authorize(); a request that names
      // no usable cluster or address never got that far, so it is logged here, with the reason.
      if (dialError.code === 'BAD_TARGET') this.log.warn({ sid, frontend, user: principal.user, target: req.url, reason: dialError.message }, 'CONNECT refused: bad target');
      this.answer(socket, frontend, dialError.httpStatus, dialError.code, dialError.message, sid);
    }
  }

  /** The status page for a user of our CA (not an agent, not revoked); each answer counted by status. */
  private serveStatus(req: http.IncomingMessage, res: http.ServerResponse, principal: Principal | null, guard: ListenerGuard): void {
    res.once('close', () => this.metrics.frontendRequests.inc({ frontend: 'status', status: res.statusCode }));
    if (!principal) {
      guard.refused('not_a_user_certificate', req.socket, { frontend: 'status' });
      sendStatus(res, 403, 'Forbidden', 'client certificate carries no user identity (agent certificates cannot use the status page)');
      return;
    }
    if (this.options.revocation?.refuses('connect_tls', principal.serial, { user: principal.user }, (fields) => guard.refused('revoked', req.socket, fields))) {
      sendStatus(res, 403, 'Forbidden', `client certificate serial ${principal.serial?.toLowerCase()} is revoked`);
      return;
    }
    this.options.status!.serve(req, res, principal);
  }

  /** Throws DialError('FORBIDDEN') (403) unless RBAC lets this user `proxy` the cluster. */
  private authorize(principal: Principal, cluster: string): void {
    if (this.options.mayReach(principal, cluster).allowed) return;
    this.metrics.connectForbidden.inc();
    this.log.warn({ user: principal.user, groups: principal.groups, cluster }, 'CONNECT refused: user may not proxy this cluster');
    throw new DialError('FORBIDDEN', `user ${JSON.stringify(principal.user)} may not proxy cluster ${JSON.stringify(cluster)} (RBAC verb proxy on clusters.core.kubefed.io)`);
  }

  private answer(socket: Duplex, frontend: string, status: number, code: string, message: string, sid?: string): void {
    this.metrics.frontendRequests.inc({ frontend, status });
    if (socket.destroyed) return;
    const body = `${code}: ${message}\n`;
    const reason = http.STATUS_CODES[status] ?? 'Client Closed Request';
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\nTunnel-Error: ${code}\r\n` +
        (sid ? `Tunnel-Stream-Id: ${sid}\r\n` : '') +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
}

function hasPeerCertificate(req: http.IncomingMessage): boolean {
  const peer = (req.socket as tls.TLSSocket).getPeerCertificate?.();
  return peer !== undefined && peer !== null && Object.keys(peer).length > 0;
}
