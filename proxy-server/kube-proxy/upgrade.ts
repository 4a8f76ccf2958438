// The upgrade pipe (exec, attach, port-forward; WebSocket and SPDY/3.1 alike — http2-proxy's ws()
// refuses POST and SPDY): the request goes to the member over a fresh TLS-over-tunnel connection
// with the same header rewriting as plain requests; the member's answer is relayed as it came — a
// 101 with its headers, then both directions spliced with no timeout; any other status with its
// body, so kubectl can fall back from WebSocket to SPDY. Either side closing closes the other,
// and with it the tunnel stream.
import https from 'node:https';
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { tunnelStreamIdOf, type DialSignalOption, type TunnelAgent } from '../../federation/controller/tunnel-agent.js';
import { memberTarget, type Admitted } from './admission.js';
import { CLIENT_CLOSED } from './audit.js';
import { outboundHeaders } from './headers.js';
import { rawStatusResponse, upstreamError } from './status.js';

/** A non-101 answer is buffered up to this (Status bodies are small) to relay it with a Content-Length. */
const MAX_REFUSAL_BODY = 1024 * 1024;

/** The response head as the member sent it: its status line and raw header lines, minus the framing ones we redo. */
function responseHead(res: http.IncomingMessage, drop: ReadonlySet<string>, extra: string[] = []): string {
  let head = `HTTP/1.1 ${res.statusCode} ${res.statusMessage ?? ''}\r\n`;
  for (let i = 0; i < res.rawHeaders.length; i += 2) if (!drop.has(res.rawHeaders[i]!.toLowerCase())) head += `${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}\r\n`;
  for (const line of extra) head += `${line}\r\n`;
  return `${head}\r\n`;
}

const NOTHING = new Set<string>();
const FRAMING = new Set(['transfer-encoding', 'content-length', 'connection', 'keep-alive']);

export function pipeUpgrade(req: http.IncomingMessage, client: Duplex, head: Buffer, a: Admitted, agent: TunnelAgent, finish: (status: number, sid: string | undefined) => void): void {
  const { host, port, hostHeader } = memberTarget(a);
  const headers = outboundHeaders(req.rawHeaders, a.identity, { token: a.cluster.config.token }, { upgrade: true });
  headers.host = hostHeader;
  // An upgrade request has no body of its own: what follows the head belongs to the new protocol.
  delete headers['content-length'];
  let sid: string | undefined;
  let settled = false;
  // A client gone while the member connection is being dialled cancels the dial.
  const dial = new AbortController();
  const options: https.RequestOptions & DialSignalOption = { agent, host, port, method: req.method, path: a.route.memberUrl, headers, dialSignal: dial.signal };
  const upstream = https.request(options);
  upstream.once('socket', (socket) => (sid = tunnelStreamIdOf(socket)));
  const clientGone = (): void => {
    if (settled) return;
    settled = true;
    dial.abort();
    upstream.destroy();
    finish(CLIENT_CLOSED, sid);
  };
  client.once('close', clientGone);

  upstream.once('upgrade', (res: http.IncomingMessage, member: Duplex, memberHead: Buffer) => {
    settled = true;
    client.off('close', clientGone);
    sid = tunnelStreamIdOf(member) ?? sid;
    if (client.destroyed) {
      member.destroy();
      finish(CLIENT_CLOSED, sid);
      return;
    }
    client.write(responseHead(res, NOTHING));
    if (memberHead.length > 0) client.write(memberHead);
    if (head.length > 0) member.write(head);
    let open = 2;
    const closed = (): void => {
      if (--open === 0) finish(101, sid);
    };
    // No half-close games: exec and port-forward end with a close, and either end closing ends both.
    member.on('error', () => member.destroy());
    client.on('error', () => client.destroy());
    member.once('close', () => {
      // A member that ended cleanly may have sent its last bytes (the exit status, the tail of
      // kubectl cp's tar) just before closing: pipe() has passed its end on to the client, which
      // writes out what is still queued first. Only then, or at once if the member failed, is the
      // client closed.
      if (member.readableEnded && !client.destroyed && !client.writableFinished) client.once('finish', () => client.destroy());
      else client.destroy();
      closed();
    });
    client.once('close', () => {
      member.destroy();
      closed();
    });
    member.pipe(client);
    client.pipe(member);
  });

  upstream.once('response', (res: http.IncomingMessage) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_REFUSAL_BODY) upstream.destroy(new Error(`the member's non-101 answer is larger than ${MAX_REFUSAL_BODY} bytes`));
      else chunks.push(chunk);
    });
    res.once('end', () => {
      if (settled) return;
      settled = true;
      client.off('close', clientGone);
      const body = Buffer.concat(chunks);
      client.end(Buffer.concat([Buffer.from(responseHead(res, FRAMING, [`Content-Length: ${body.length}`, 'Connection: close']), 'latin1'), body]));
      finish(res.statusCode ?? 502, sid);
    });
  });

  upstream.once('error', (error: Error & { dialCode?: unknown }) => {
    if (settled) return;
    settled = true;
    client.off('close', clientGone);
    const e = upstreamError(a.cluster.name, error);
    client.end(rawStatusResponse(e));
    finish(e.code, sid);
  });
  upstream.end();
}
