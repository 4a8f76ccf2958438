// Clients of the hub's status page (/status on the CONNECT TLS port) with a test user's
// certificate: one-shot GETs, a server-sent-event reader that waits for a condition, and a
// loopback HTTP → hub forwarder that presents the certificate for a browser (headless Chromium
// cannot pick a client certificate without a managed policy and an NSS database: the forwarder
// stands in for the browser's certificate store; everything behind it is the real hub).
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { testPki } from './pki.js';

function tlsOf(user: string, certOf?: string): https.RequestOptions {
  const pki = testPki();
  const identity = certOf ? pki.agents[certOf]! : pki.users[user]!;
  return { ca: fs.readFileSync(pki.ca.cert), cert: fs.readFileSync(identity.cert), key: fs.readFileSync(identity.key), servername: 'localhost' };
}

export interface StatusResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request to the hub as `user` (or with the agent certificate of cluster `agentOf`). */
export function statusRequest(port: number, path: string, options: { user?: string; agentOf?: string; method?: string } = {}): Promise<StatusResponse> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path, method: options.method ?? 'GET', agent: false, ...tlsOf(options.user ?? 'root', options.agentOf) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

export interface StatusEvent {
  event: string;
  data: unknown;
}

/** An open /status/events stream; keeps every event and lets a test wait for one that matches. */
export class StatusEvents {
  readonly events: StatusEvent[] = [];
  private waiters: Array<() => void> = [];
  private res: http.IncomingMessage | undefined;
  private req: http.ClientRequest | undefined;
  ended = false;

  static open(port: number, user: string): Promise<StatusEvents> {
    const stream = new StatusEvents();
    return new Promise((resolve, reject) => {
      stream.req = https.get({ host: '127.0.0.1', port, path: '/status/events', agent: false, ...tlsOf(user) }, (res) => {
        stream.res = res;
        if (res.statusCode !== 200) return reject(new Error(`status ${res.statusCode}`));
        res.setEncoding('utf8');
        let buffer = '';
        res.on('data', (chunk: string) => {
          buffer += chunk;
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const event = /^event: (.*)$/m.exec(block)?.[1];
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (event && data) stream.push({ event, data: JSON.parse(data) });
          }
        });
        res.on('close', () => {
          stream.ended = true;
          stream.wake();
        });
        resolve(stream);
      });
      stream.req.on('error', reject);
    });
  }

  private push(event: StatusEvent): void {
    this.events.push(event);
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Waits (bounded) for an event after index `from` that satisfies `match`; returns it. */
  async waitFor(match: (e: StatusEvent) => boolean, what: string, { from = 0, timeoutMs = 15_000 } = {}): Promise<StatusEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.slice(from).find(match);
      if (found) return found;
      if (this.ended) throw new Error(`event stream ended while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  close(): Promise<void> {
    if (this.ended) return Promise.resolve();
    return new Promise((resolve) => {
      this.res!.once('close', () => resolve());
      this.req!.destroy();
    });
  }
}

/**
 * A plain-HTTP loopback forwarder to the hub's status endpoints that presents `user`'s client
 * certificate. Streams both ways unbuffered (server-sent events pass through as they come).
 */
export async function statusForwarder(hubPort: number, user: string): Promise<{ url: string; close(): Promise<void> }> {
  const tls = tlsOf(user);
  const upstreams = new Set<http.ClientRequest>();
  const server = http.createServer((req, res) => {
    const upstream = https.request({ host: '127.0.0.1', port: hubPort, path: req.url, method: req.method, headers: { accept: req.headers.accept ?? '*/*' }, agent: false, ...tls }, (answer) => {
      res.writeHead(answer.statusCode!, answer.headers);
      answer.pipe(res);
    });
    upstreams.add(upstream);
    upstream.once('close', () => upstreams.delete(upstream));
    upstream.on('error', () => res.destroy());
    res.once('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const u of upstreams) u.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
