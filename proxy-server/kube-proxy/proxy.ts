// The hub's Kubernetes API proxy: https://hub/clusters/<name>/<Kubernetes API path> on the CONNECT
// TLS listener. Plain requests go through http2-proxy's web() over the cluster's keep-alive pool
// of TLS-over-tunnel connections (watches and logs -f stream unbuffered, no hub timeout; a client
// that goes away destroys its member request and with it the tunnel stream). Upgrades (exec,
// attach, port-forward, WebSocket or SPDY) take upgrade.ts's pipe. Every refusal is a Status.
import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import type { Registry } from 'prom-client';
import http2Proxy from 'http2-proxy';
import type { ListenerGuard } from '../../common/listener-guard.js';
import { tunnelStreamIdOf, type DialSignalOption } from '../../federation/controller/tunnel-agent.js';
import { Admission, memberTarget, type AdmissionOptions, type Admitted } from './admission.js';
import { AuditTrail, CLIENT_CLOSED } from './audit.js';
import { outboundHeaders } from './headers.js';
import { KubeProxyMetrics } from './metrics.js';
import { isClustersUrl } from './route.js';
import { KubeProxyError, rawStatusResponse, sendStatus, upstreamError } from './status.js';
import { pipeUpgrade } from './upgrade.js';

export interface KubeApiProxyOptions extends AdmissionOptions {
  registry: Registry;
}

export class KubeApiProxy {
  private readonly admission: Admission;
  private readonly metrics: KubeProxyMetrics;
  private readonly audit: AuditTrail;
  /** Upgraded connections (exec, port-forward…), closed on shutdown. */
  private readonly upgraded = new Set<Duplex>();

  constructor(private readonly options: KubeApiProxyOptions) {
    this.admission = new Admission(options);
    this.metrics = KubeProxyMetrics.of(options.registry);
    this.audit = new AuditTrail(options.log, this.metrics);
  }

  static handles(url: string | undefined): boolean {
    return isClustersUrl(url ?? '');
  }

  /** Closes every upgraded connection (the listener's close() does not see them). */
  closeAll(): void {
    for (const socket of this.upgraded) socket.destroy();
  }

  handleRequest(req: http.IncomingMessage, res: http.ServerResponse, guard: ListenerGuard): void {
    this.admission.admit(req, guard).then(
      (admitted) => this.forward(req, res, admitted),
      (error: unknown) => this.refuse(error, (e) => sendStatus(res, e)),
    );
  }

  handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, guard: ListenerGuard): void {
    socket.on('error', () => socket.destroy());
    this.admission.admit(req, guard).then(
      (admitted) => {
        if (socket.destroyed) return;
        const finish = this.audit.begin(this.auditRecord(admitted), req.socket);
        this.upgraded.add(socket);
        socket.once('close', () => this.upgraded.delete(socket));
        pipeUpgrade(req, socket, head, admitted, this.options.clusters()!.upgradeAgent(admitted.cluster), finish);
      },
      (error: unknown) => this.refuse(error, (e) => socket.end(rawStatusResponse(e))),
    );
  }

  private refuse(error: unknown, answer: (e: KubeProxyError) => void): void {
    const e = error instanceof KubeProxyError ? error : new KubeProxyError('InternalError', `internal error: ${(error as Error).message}`, 500);
    if (e.code >= 500) this.options.log.error({ err: e.message }, 'kube-proxy: request failed before forwarding');
    this.metrics.refusals.inc({ reason: e.reason, code: String(e.code) });
    answer(e);
  }

  private auditRecord(a: Admitted): Parameters<AuditTrail['begin']>[0] {
    return { user: a.identity.user, groups: a.identity.groups, ...(a.impersonatedBy ? { impersonatedBy: a.impersonatedBy } : {}), cluster: a.cluster.name, verb: a.verb, path: a.route.memberPath };
  }

  private forward(req: http.IncomingMessage, res: http.ServerResponse, admitted: Admitted): void {
    const directory = this.options.clusters()!;
    const agent = directory.pool(admitted.cluster);
    const { host, port, hostHeader } = memberTarget(admitted);
    const headers = outboundHeaders(req.rawHeaders, admitted.identity, { token: admitted.cluster.config.token });
    headers.host = hostHeader;
    const finish = this.audit.begin(this.auditRecord(admitted), req.socket);
    let sid: string | undefined;
    // A client gone before its member connection exists cancels the pending dial.
    const dial = new AbortController();
    let connected = false;
    res.once('close', () => {
      if (!connected) dial.abort();
      finish(res.writableFinished ? res.statusCode : CLIENT_CLOSED, sid);
    });
    http2Proxy.web(
      req,
      res,
      {
        hostname: host,
        port,
        // The identity headers are ours, built from the raw client headers after every stripping
        // rule (headers.ts): http2-proxy's own copy, with its hop-by-hop handling, is not used.
        onReq: (_req: http.IncomingMessage, _options: http.RequestOptions) => {
          const options: https.RequestOptions & DialSignalOption = { agent, host, port, method: req.method, path: admitted.route.memberUrl, headers, dialSignal: dial.signal };
          const upstream = https.request(options);
          upstream.once('socket', (socket) => {
            connected = true;
            sid = tunnelStreamIdOf(socket) ?? sid;
          });
          return Promise.resolve(upstream);
        },
        // (http2-proxy's typings call the member's response a ServerResponse; it is an IncomingMessage.)
        onRes: (_req: http.IncomingMessage, out: http.ServerResponse, upstreamRes: unknown) => {
          const proxyRes = upstreamRes as http.IncomingMessage;
          sid = tunnelStreamIdOf(proxyRes.socket) ?? sid;
          out.writeHead(proxyRes.statusCode ?? 502, proxyRes.statusMessage, proxyRes.headers);
          // A streaming answer (watch, logs -f: no Content-Length) must reach the client before
          // its first event; a sized one goes out with its body, one TLS record instead of two.
          if (proxyRes.headers['content-length'] === undefined) out.flushHeaders();
          proxyRes.pipe(out);
          return Promise.resolve();
        },
      },
      (error: Error | null) => {
        if (!error || res.destroyed || req.destroyed) return;
        if (res.headersSent) {
          res.destroy();
          return;
        }
        const e = upstreamError(admitted.cluster.name, error as Error & { dialCode?: unknown });
        this.options.log.warn({ cluster: admitted.cluster.name, user: admitted.identity.user, sid, err: error.message, code: e.code }, 'kube-proxy: member unreachable');
        sendStatus(res, e);
      },
    );
  }
}
