// A small HTTP/2 reverse proxy (Node http2 on both sides), the kind of L7 hop an agent behind an
// HTTP/2-only egress gateway goes through: it terminates the agent's TLS (verifying its client
// certificate against the test CA), opens its own TLS connection to the hub with its own client
// certificate (the front-proxy identity), and relays each request and its body both ways. With
// `forwardAgentCertificate` it passes on the agent certificate it verified, as the hub's front-proxy
// scheme expects; whatever a client sends in that header itself is dropped.
import http2 from 'node:http2';
import type net from 'node:net';
import type tls from 'node:tls';
import { FORWARDED_AGENT_CERT_HEADER } from '../../wire/http2-carrier.js';

export interface H2ReverseProxyOptions {
  upstreamPort: number;
  /** CA that client (agent) and upstream (hub) certificates are verified against. */
  ca: Buffer;
  /** Served to agents. */
  serverCert: { cert: Buffer; key: Buffer };
  /** Presented to the hub. */
  clientCert: { cert: Buffer; key: Buffer };
  forwardAgentCertificate: boolean;
}

export interface H2ReverseProxy {
  port: number;
  /** `<method> <path>` of every request relayed. */
  readonly requests: string[];
  /** Closes the listener and every session both ways. */
  close(): Promise<void>;
}

/** Like any proxy, it raises HTTP/2's 64 KiB default windows, or it would be the bottleneck. */
const WINDOW = 1024 * 1024;
const SETTINGS: http2.Settings = { initialWindowSize: WINDOW, maxFrameSize: 65_535 };
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'host', FORWARDED_AGENT_CERT_HEADER]);

export async function startH2ReverseProxy(options: H2ReverseProxyOptions): Promise<H2ReverseProxy> {
  const requests: string[] = [];
  const sessions = new Set<http2.Http2Session>();
  const server = http2.createSecureServer({ ...options.serverCert, ca: options.ca, requestCert: true, rejectUnauthorized: true, settings: SETTINGS });
  server.on('session', (down: http2.ServerHttp2Session) => {
    sessions.add(down);
    down.on('error', () => undefined);
    down.setLocalWindowSize(WINDOW);
    // One upstream connection per downstream connection: an agent's link fails alone.
    const up = http2.connect(`https://127.0.0.1:${options.upstreamPort}`, {
      ca: options.ca,
      ...options.clientCert,
      servername: 'localhost',
      settings: SETTINGS,
    });
    sessions.add(up);
    up.on('error', () => undefined);
    up.once('connect', () => up.setLocalWindowSize(WINDOW));
    up.once('close', () => {
      sessions.delete(up);
      down.destroy();
    });
    down.once('close', () => {
      sessions.delete(down);
      up.destroy();
    });
    down.on('stream', (stream, headers) => relay(stream, headers, up, down.socket as unknown as tls.TLSSocket));
  });

  function relay(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, up: http2.ClientHttp2Session, socket: tls.TLSSocket): void {
    requests.push(`${headers[':method']} ${headers[':path']}`);
    const forwarded: http2.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(headers)) {
      if (value === undefined || HOP_BY_HOP.has(name) || (name.startsWith(':') && name !== ':method' && name !== ':path')) continue;
      forwarded[name] = value;
    }
    if (options.forwardAgentCertificate) forwarded[FORWARDED_AGENT_CERT_HEADER] = socket.getPeerCertificate().raw.toString('base64');
    const upstream = up.request(forwarded, { endStream: false });
    stream.on('error', () => undefined);
    upstream.on('error', () => undefined);
    upstream.once('response', (answer) => {
      const headersBack: http2.OutgoingHttpHeaders = {};
      for (const [name, value] of Object.entries(answer)) if (value !== undefined && !HOP_BY_HOP.has(name)) headersBack[name] = value;
      if (!stream.destroyed) stream.respond(headersBack);
      upstream.pipe(stream);
    });
    stream.pipe(upstream);
    // A reset on either side resets the other (after a clean end, pipe has ended both).
    const mirrorReset = (from: http2.Http2Stream, to: http2.Http2Stream) => () => {
      const code = from.rstCode ?? http2.constants.NGHTTP2_NO_ERROR;
      if (!to.destroyed && (code !== http2.constants.NGHTTP2_NO_ERROR || !from.readableEnded)) to.close(code === 0 ? http2.constants.NGHTTP2_CANCEL : code);
    };
    upstream.once('close', mirrorReset(upstream, stream));
    stream.once('close', mirrorReset(stream, upstream));
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const session of sessions) session.destroy();
        server.close(() => resolve());
      }),
  };
}
