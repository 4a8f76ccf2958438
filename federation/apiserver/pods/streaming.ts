// pods/exec, pods/attach, pods/portforward and pods/log of member mode, spoken as kube-apiservers
// speak them (README "Pods in member mode"):
//   - SPDY/3.1 upgrade (POST, Upgrade: SPDY/3.1, X-Stream-Protocol-Version negotiated): exec and
//     attach (v5/v4.channel.k8s.io streams) and port-forward (portforward.k8s.io);
//   - WebSocket v5.channel.k8s.io / v4.channel.k8s.io: exec and attach;
//   - WebSocket SPDY/3.1+portforward.k8s.io: SPDY frames inside binary messages (port-forward);
//   - GET pods/<name>/log[?follow=true]: chunked text, written as the process writes it.
// Everything that can fail is checked before the 101, so refusals are Status bodies kubectl prints.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Registry } from 'prom-client';
import { WebSocketServer, createWebSocketStream, type WebSocket } from 'ws';
import type { Logger } from '../../../common/log.js';
import { ApiError, errors } from '../errors.js';
import type { Resources } from '../resources.js';
import type { ResourceRoute } from '../routes.js';
import type { KubeObject } from '../storage.js';
import { runAttach, runExec, type ExecStatus, type SessionEnd, type SessionIo } from './exec.js';
import { PODS, type Kubelet } from './kubelet.js';
import { PodStreamMetrics, type StreamKind, type StreamProtocol } from './metrics.js';
import { tailLines } from './output-log.js';
import { servePortForward } from './portforward.js';
import { chooseContainer } from './runtime.js';
import { SpdySession, type SpdyStream } from './spdy-session.js';
import { WS_EXEC_PROTOCOLS, webSocketSessionIo } from './ws-channels.js';

export const SPDY_EXEC_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'] as const;
export const PORT_FORWARD_PROTOCOL = 'portforward.k8s.io';
export const WS_PORT_FORWARD_PROTOCOL = 'SPDY/3.1+portforward.k8s.io';
/** How long the client has to open its streams after the 101 (kubelet's default stream creation timeout). */
export const STREAM_CREATION_TIMEOUT_MS = 30_000;

type UpgradeKind = 'exec' | 'attach' | 'portforward';

/** Is this a pods subresource served here? */
export function podStreamKind(route: ResourceRoute): UpgradeKind | 'log' | null {
  if (route.group !== '' || route.version !== 'v1' || route.plural !== 'pods' || route.name === undefined || route.namespace === undefined) return null;
  const s = route.subresource;
  return s === 'exec' || s === 'attach' || s === 'portforward' || s === 'log' ? s : null;
}

/** The offered protocols of repeated (or comma-joined) headers, in the client's order (pure). */
export function offeredProtocols(header: string | string[] | undefined): string[] {
  const values = Array.isArray(header) ? header : header === undefined ? [] : [header];
  return values.flatMap((v) => v.split(',')).map((p) => p.trim()).filter((p) => p !== '');
}

/** The first protocol of the client's that the server speaks (kube's negotiation), or null. */
export function negotiate(offered: string[], supported: readonly string[]): string | null {
  return offered.find((p) => supported.includes(p)) ?? null;
}

function flag(q: URLSearchParams, name: string): boolean {
  const v = q.get(name);
  return v === 'true' || v === '1';
}

/** Writes a Status answer on a socket that was not upgraded, then closes it. */
export function answerUpgradeError(socket: Duplex, err: ApiError): void {
  const body = JSON.stringify(err.toStatus());
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${err.code} ${STATUS_CODES[err.code] ?? ''}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-cache, private\r\nConnection: close\r\n\r\n${body}`,
  );
}

export interface PodStreamingOptions {
  resources: Resources;
  kubelet: Kubelet;
  log: Logger;
  metrics: Registry;
  streamCreationTimeoutMs?: number;
}

export class PodStreaming {
  private readonly wss: WebSocketServer;
  private readonly chosenProtocol = new WeakMap<IncomingMessage, string>();
  private readonly metrics: PodStreamMetrics;
  private readonly live = new Set<{ destroy(): void }>();

  constructor(private readonly options: PodStreamingOptions) {
    this.metrics = PodStreamMetrics.of(options.metrics);
    this.wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 16 * 1024 * 1024 });
    // The subprotocol is chosen here and written by us: ws validates Sec-WebSocket-Protocol as RFC 6455
    // tokens, and kubectl's "SPDY/3.1+portforward.k8s.io" has a '/', which ws would refuse with 400.
    this.wss.on('headers', (headers: string[], req: IncomingMessage) => {
      const chosen = this.chosenProtocol.get(req);
      if (chosen) headers.push(`Sec-WebSocket-Protocol: ${chosen}`);
    });
  }

  private get runtime() {
    return this.options.kubelet.runtime;
  }

  private refuse(kind: StreamKind, reason: string, err: ApiError): ApiError {
    this.metrics.refusals.inc({ kind, reason });
    return err;
  }

  private async pod(route: ResourceRoute): Promise<KubeObject> {
    return this.options.resources.get(PODS, route.namespace, route.name!);
  }

  /**
   * An Upgrade request for pods/exec|attach|portforward (already authenticated and authorized).
   * Throws an ApiError for anything refused before the upgrade; the caller writes it.
   */
  async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, route: ResourceRoute, url: URL): Promise<void> {
    const kind = podStreamKind(route);
    if (kind === null || kind === 'log') throw errors.badRequest(`${route.subresource ?? 'this resource'} does not upgrade`);
    const q = url.searchParams;
    const upgrade = (req.headers.upgrade ?? '').toLowerCase();
    const websocket = upgrade === 'websocket';
    if (!websocket && upgrade !== 'spdy/3.1') throw this.refuse(kind, 'protocol', errors.badRequest(`unsupported upgrade "${req.headers.upgrade ?? ''}": expected SPDY/3.1 or websocket`));
    const pod = await this.pod(route);
    const podName = pod.metadata.name ?? '';
    if (!this.runtime.execEnabled) {
      throw this.refuse(kind, 'disabled', errors.forbidden(`pods "${podName}" is forbidden: exec, attach and port-forward are disabled on this member API server (start it with --enable-pod-exec)`));
    }
    const phase = (pod.status as { phase?: string } | undefined)?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') throw this.refuse(kind, 'completed', errors.badRequest(`cannot ${kind} into a container in a completed pod; current phase is ${phase}`));

    // Every log line of the session, the SPDY session's own included, carries its id.
    const sessionLog = this.options.log.child({ session: randomBytes(6).toString('hex'), kind, namespace: route.namespace, pod: podName });
    if (kind === 'portforward') return this.upgradePortForward(req, socket, head, pod, websocket, sessionLog);

    const container = chooseContainer(pod, q.get('container'));
    if ('error' in container) throw this.refuse(kind, 'container', errors.badRequest(container.error));
    const want = { stdin: flag(q, 'stdin'), stdout: flag(q, 'stdout'), stderr: flag(q, 'stderr'), tty: flag(q, 'tty') };
    if (!want.stdin && !want.stdout && !want.stderr) throw this.refuse(kind, 'streams', errors.badRequest('you must specify at least 1 of stdin, stdout, stderr'));
    const command = q.getAll('command');
    if (kind === 'exec' && command.length === 0) throw this.refuse(kind, 'command', errors.badRequest('you must specify at least one command for the container'));
    const proc = kind === 'attach' ? this.runtime.container(pod, container.name) : undefined;
    if (kind === 'attach' && !proc) {
      throw this.refuse(kind, 'no_process', errors.badRequest(`container ${container.name} of pod ${podName} has no running process to attach to (its spec has no command)`));
    }

    let protocol: string;
    let io: SessionIo;
    let protocolLabel: StreamProtocol;
    if (websocket) {
      const chosen = negotiate(offeredProtocols(req.headers['sec-websocket-protocol']), WS_EXEC_PROTOCOLS);
      if (!chosen) throw this.refuse(kind, 'protocol', errors.badRequest(`unable to upgrade: none of the offered WebSocket subprotocols is supported: ${WS_EXEC_PROTOCOLS.join(', ')}`));
      protocol = chosen;
      protocolLabel = chosen === 'v5.channel.k8s.io' ? 'websocket_v5' : 'websocket_v4';
      const ws = await this.acceptWebSocket(req, socket, head, chosen);
      io = webSocketSessionIo(ws, chosen, want);
    } else {
      const chosen = this.negotiateSpdy(req, SPDY_EXEC_PROTOCOLS, kind);
      protocol = chosen;
      protocolLabel = 'spdy';
      const session = this.acceptSpdy(socket, head, chosen, sessionLog);
      io = await this.spdySessionIo(session, want, sessionLog);
    }
    const log = sessionLog.child({ protocol, container: container.name });
    this.metrics.sessions.inc({ kind, protocol: protocolLabel });
    this.metrics.open.inc({ kind });
    const started = Date.now();
    log.info({ command: kind === 'exec' ? command : undefined, tty: want.tty, stdin: want.stdin }, `${kind} session started`);
    try {
      let end: SessionEnd;
      let pid: number | undefined;
      if (kind === 'exec') {
        const child = this.runtime.exec(pod, container.name, command, want.tty);
        pid = child?.pid;
        if (!child) {
          io.finish(failure(`pod ${podName} is not running here`));
          end = { exitCode: null, why: 'not_started' };
        } else {
          end = await runExec(child, command, io, log);
        }
      } else {
        end = await runAttach(proc!, io, log);
      }
      // pid: the exec child's process group, gone by now (a test checks that nothing outlives a session).
      const why = end.exitCode === null ? end.why : undefined;
      log.info({ exitCode: end.exitCode, clientGone: why === 'client_gone', notStarted: why === 'not_started', pid, ms: Date.now() - started }, `${kind} session ended`);
    } finally {
      this.metrics.open.dec({ kind });
    }
  }

  private negotiateSpdy(req: IncomingMessage, supported: readonly string[], kind: StreamKind): string {
    const offered = offeredProtocols(req.headers['x-stream-protocol-version']);
    const chosen = negotiate(offered, supported);
    if (!chosen) {
      throw this.refuse(kind, 'protocol', errors.forbidden(`unable to upgrade: unable to negotiate protocol: client supports [${offered.join(' ')}], server supports [${supported.join(' ')}]`));
    }
    return chosen;
  }

  private acceptSpdy(socket: Duplex, head: Buffer, protocol: string, log: Logger): SpdySession {
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: ${protocol}\r\n\r\n`);
    const raw = socket as Duplex & { setNoDelay?(v: boolean): void; setTimeout?(ms: number): void };
    raw.setNoDelay?.(true);
    raw.setTimeout?.(0);
    if (head.length > 0) socket.unshift(head);
    const session = new SpdySession(socket, { log });
    this.track(session);
    return session;
  }

  private acceptWebSocket(req: IncomingMessage, socket: Duplex, head: Buffer, protocol: string): Promise<WebSocket> {
    this.chosenProtocol.set(req, protocol);
    delete req.headers['sec-websocket-protocol'];
    (socket as Duplex & { setTimeout?(ms: number): void }).setTimeout?.(0);
    return new Promise((resolve) => {
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        this.track({ destroy: () => ws.terminate(), once: (e: 'close', f: () => void) => ws.once(e, f) });
        resolve(ws);
      });
    });
  }

  private track(thing: { destroy(): void; once(event: 'close', f: () => void): unknown }): void {
    this.live.add(thing);
    thing.once('close', () => this.live.delete(thing));
  }

  /** Waits for the streams a SPDY exec/attach client opens (error, and stdin/stdout/stderr/resize as asked). */
  private spdySessionIo(session: SpdySession, want: { stdin: boolean; stdout: boolean; stderr: boolean; tty: boolean }, log: Logger): Promise<SessionIo> {
    const expected = new Set(['error']);
    if (want.stdin) expected.add('stdin');
    if (want.stdout) expected.add('stdout');
    if (want.stderr && !want.tty) expected.add('stderr');
    if (want.tty) expected.add('resize');
    const streams = new Map<string, SpdyStream>();
    let finished = false;
    const closed = new Promise<void>((resolve) => session.once('close', () => (finished ? undefined : resolve())));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        log.info({ got: [...streams.keys()], expected: [...expected] }, 'spdy session closed: streams not opened in time');
        session.destroy();
      }, this.options.streamCreationTimeoutMs ?? STREAM_CREATION_TIMEOUT_MS);
      session.once('close', () => {
        clearTimeout(timer);
        reject(new Error('client closed before opening its streams'));
      });
      session.on('stream', (stream: SpdyStream) => {
        stream.on('error', () => {});
        const type = stream.header('streamtype') ?? '';
        if (!expected.has(type) || streams.has(type)) {
          stream.destroy();
          return;
        }
        streams.set(type, stream);
        // Streams the server only writes to are ended by the client at once: their readable side must still drain.
        if (type !== 'stdin' && type !== 'resize') stream.resume();
        if (streams.size < expected.size) return;
        clearTimeout(timer);
        const errorStream = streams.get('error')!;
        resolve({
          stdin: streams.get('stdin') ?? null,
          stdout: streams.get('stdout') ?? null,
          stderr: streams.get('stderr') ?? null,
          resize: streams.get('resize') ?? null,
          closed,
          finish(status: ExecStatus): void {
            finished = true;
            errorStream.end(JSON.stringify(status), () => session.close());
          },
        });
      });
    });
  }

  private async upgradePortForward(req: IncomingMessage, socket: Duplex, head: Buffer, pod: KubeObject, websocket: boolean, sessionLog: Logger): Promise<void> {
    let session: SpdySession;
    let protocolLabel: StreamProtocol;
    if (websocket) {
      const offered = offeredProtocols(req.headers['sec-websocket-protocol']);
      if (!offered.includes(WS_PORT_FORWARD_PROTOCOL)) {
        throw this.refuse('portforward', 'protocol', errors.badRequest(`unable to upgrade: port-forward over WebSocket needs the ${WS_PORT_FORWARD_PROTOCOL} subprotocol`));
      }
      const ws = await this.acceptWebSocket(req, socket, head, WS_PORT_FORWARD_PROTOCOL);
      const stream = createWebSocketStream(ws, { allowHalfOpen: false });
      stream.on('error', () => {});
      session = new SpdySession(stream, { log: sessionLog });
      protocolLabel = 'websocket_spdy';
    } else {
      this.negotiateSpdy(req, [PORT_FORWARD_PROTOCOL], 'portforward');
      session = this.acceptSpdy(socket, head, PORT_FORWARD_PROTOCOL, sessionLog);
      protocolLabel = 'spdy';
    }
    const log = sessionLog.child({ protocol: protocolLabel });
    this.metrics.sessions.inc({ kind: 'portforward', protocol: protocolLabel });
    this.metrics.open.inc({ kind: 'portforward' });
    const started = Date.now();
    log.info('portforward session started');
    let connections = 0;
    servePortForward(session, pod.metadata.name ?? '', pod.metadata.uid ?? '', log, {
      connection: (result, bytesIn, bytesOut) => {
        connections++;
        this.metrics.forwardedConnections.inc({ result });
        this.metrics.forwardedBytes.inc({ direction: 'to_pod' }, bytesIn);
        this.metrics.forwardedBytes.inc({ direction: 'from_pod' }, bytesOut);
      },
    });
    session.once('close', () => {
      this.metrics.open.dec({ kind: 'portforward' });
      log.info({ connections, ms: Date.now() - started }, 'portforward session ended');
    });
  }

  /** GET pods/<name>/log: the container's output; with follow=true, streamed until it ends or the client leaves. */
  async serveLog(req: IncomingMessage, res: ServerResponse, route: ResourceRoute, url: URL): Promise<void> {
    const q = url.searchParams;
    const pod = await this.pod(route);
    const container = chooseContainer(pod, q.get('container'));
    if ('error' in container) throw this.refuse('log', 'container', errors.badRequest(container.error));
    const output = this.runtime.output(pod, container.name);
    if (!output) throw errors.badRequest(`container "${container.name}" in pod "${pod.metadata.name}" is not running here`);
    const tailText = q.get('tailLines');
    if (tailText !== null && !/^-?[0-9]+$/.test(tailText)) throw errors.badRequest(`invalid tailLines "${tailText}"`);
    let snapshot = output.snapshot();
    if (tailText !== null && Number(tailText) >= 0) snapshot = tailLines(snapshot, Number(tailText));
    const follow = flag(q, 'follow');
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Cache-Control': 'no-cache, private' });
    res.socket?.setNoDelay(true);
    if (snapshot.length > 0) res.write(snapshot);
    if (!follow || output.ended) {
      res.end();
      return;
    }
    res.flushHeaders();
    this.metrics.sessions.inc({ kind: 'log', protocol: 'http' });
    this.metrics.open.inc({ kind: 'log' });
    const onData = (chunk: Buffer): void => {
      res.write(chunk);
    };
    const stop = (): void => {
      output.off('data', onData);
      output.off('end', onEnd);
      this.metrics.open.dec({ kind: 'log' });
    };
    const onEnd = (): void => {
      stop();
      res.end();
    };
    output.on('data', onData);
    output.once('end', onEnd);
    // The response's close, not the socket's: over HTTP/2 the connection outlives a follower that leaves.
    res.once('close', () => {
      if (!res.writableEnded) stop();
    });
  }

  /** The end of a failed upgrade: a refusal before the 101 is answered with its Status; after it, the connection just closes. */
  upgradeFailed(socket: Duplex, err: unknown): void {
    if (err instanceof ApiError && !socket.destroyed) {
      answerUpgradeError(socket, err);
      return;
    }
    if (!(err instanceof ApiError)) this.options.log.debug({ err: (err as Error).message }, 'pod stream session failed');
    socket.destroy();
  }

  /** Server shutdown: every open session goes. */
  close(): void {
    for (const s of [...this.live]) s.destroy();
    this.live.clear();
    this.wss.close();
  }
}

function failure(message: string): ExecStatus {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: 'InternalError', code: 500 };
}

