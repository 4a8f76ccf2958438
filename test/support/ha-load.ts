// Continuous load against hub replicas behind a load balancer, for the rolling-restart test and
// the HA soak: short CONNECT downloads, federation writes (each acknowledged resourceVersion
// kept), and a watch that resumes from the last resourceVersion it saw whenever the replica
// serving it ends it. Every failure is recorded with what the client saw, classified
// (common/request-failures.ts) so a test can tell clean failures from hangs and garbage; every
// request has a deadline, so a hang shows up as a failure instead of stalling its loop.
import fs from 'node:fs';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import { classifyFailure, ClosedEarly, RequestTimeout, UnexpectedStatus, type ClassifiedFailure } from '../../common/request-failures.js';
import { connectVia, downloadRequest, readAll } from './clients.js';
import { mastersCert } from '../federation/apiserver/harness.js';
import { testPki } from './pki.js';

export interface Failure {
  kind: 'connect' | 'write' | 'watch';
  at: number;
  error: ClassifiedFailure;
}

export interface LoadResult {
  connects: number;
  writes: number;
  failures: Failure[];
  /** resourceVersion of every acknowledged write. */
  acked: Map<string, string>;
  /** name → resourceVersion of every ADDED event the watch delivered. */
  seen: Map<string, string>;
  duplicates: number;
  /** Watch responses that ended with their last chunk (the server ended them cleanly) / that broke. */
  watchCleanEnds: number;
  watchBreaks: number;
}

/** Federated writes: FederatedConfigMaps placed nowhere (the controller has nothing to propagate). */
const CM = '/apis/types.kubefed.io/v1beta1/namespaces/default/federatedconfigmaps';
const DOWNLOAD_BYTES = 4096;
/** A short request with no complete answer by then hangs (a replica's drain takes a few seconds at most). */
const REQUEST_TIMEOUT_MS = 15_000;

export function tlsOptions(): https.RequestOptions {
  const pki = testPki();
  const admin = mastersCert();
  return { host: '127.0.0.1', agent: false, ca: fs.readFileSync(pki.ca.cert), cert: fs.readFileSync(admin.cert), key: fs.readFileSync(admin.key) };
}

export function call(port: number, method: string, path: string, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request({ ...tlsOptions(), port, method, path, headers: body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {} }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on('error', reject);
    });
    req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new RequestTimeout(`${method} ${path}: no answer within ${REQUEST_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

export class HaLoad {
  readonly result: LoadResult = { connects: 0, writes: 0, failures: [], acked: new Map(), seen: new Map(), duplicates: 0, watchCleanEnds: 0, watchBreaks: 0 };
  private stopping = false;
  private readonly loops: Promise<void>[] = [];
  private watchRequest: import('node:http').ClientRequest | null = null;
  private lastRv = '0';
  private prefix = `load-${Date.now().toString(36)}`;

  constructor(
    private readonly ports: { connectPort: number; federationPort: number },
    private readonly target: { cluster: string; service: string },
  ) {}

  /** Starts the loops; the watch is open (from the current resourceVersion) when this resolves. */
  async start(): Promise<void> {
    const list = await call(this.ports.federationPort, 'GET', CM);
    if (list.status !== 200) throw new Error(`initial list: ${list.status} ${list.body}`);
    this.lastRv = (JSON.parse(list.body) as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
    const opened = new Promise<void>((resolve) => this.loops.push(this.watchLoop(resolve)));
    await opened;
    this.loops.push(this.connectLoop(), this.writeLoop());
  }

  /** Ends the loops; the watch is given until every acknowledged write has been seen (bounded). */
  async stop(timeoutMs = 10_000): Promise<LoadResult> {
    this.stopping = true;
    const deadline = Date.now() + timeoutMs;
    // Let the watch catch up with the last writes before closing it.
    await Promise.all(this.loops.slice(1));
    while ([...this.result.acked.keys()].some((name) => !this.result.seen.has(name)) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    this.watchRequest?.destroy();
    await this.loops[0];
    return this.result;
  }

  private fail(kind: Failure['kind'], error: unknown): void {
    this.result.failures.push({ kind, at: Date.now(), error: classifyFailure(error) });
  }

  private async connectLoop(): Promise<void> {
    while (!this.stopping) {
      try {
        await this.download();
        this.result.connects++;
      } catch (err) {
        this.fail('connect', err);
      }
    }
  }

  /** One CONNECT download, failed with RequestTimeout past the deadline (the socket is destroyed, also one that comes late). */
  private async download(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    let socket: Duplex | null = null;
    let late = false;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        late = true;
        const error = new RequestTimeout(`CONNECT download: no complete answer within ${REQUEST_TIMEOUT_MS} ms`);
        socket?.destroy(error);
        reject(error);
      }, REQUEST_TIMEOUT_MS);
    });
    const connecting = connectVia({ tlsPort: this.ports.connectPort }, this.target.cluster, this.target.service);
    connecting.then((s) => late && s.destroy(), () => undefined);
    try {
      socket = await Promise.race([connecting, deadline]);
      socket.write(downloadRequest(DOWNLOAD_BYTES));
      const got = await Promise.race([readAll(socket), deadline]);
      if (got.length !== DOWNLOAD_BYTES) throw new ClosedEarly(`short download: ${got.length} of ${DOWNLOAD_BYTES} bytes`);
    } finally {
      clearTimeout(timer);
    }
  }

  private async writeLoop(): Promise<void> {
    let i = 0;
    while (!this.stopping) {
      const name = `${this.prefix}-${i++}`;
      try {
        const res = await call(this.ports.federationPort, 'POST', CM, JSON.stringify({ apiVersion: 'types.kubefed.io/v1beta1', kind: 'FederatedConfigMap', metadata: { name }, spec: { template: { data: { i: String(i) } }, placement: { clusters: [] } } }));
        if (res.status !== 201) this.fail('write', new UnexpectedStatus(res.status, res.body));
        else {
          this.result.acked.set(name, (JSON.parse(res.body) as { metadata: { resourceVersion: string } }).metadata.resourceVersion);
          this.result.writes++;
        }
      } catch (err) {
        this.fail('write', err);
      }
    }
  }

  /** One watch after another, each from the last resourceVersion seen, until stop(). */
  private async watchLoop(opened: () => void): Promise<void> {
    let first = true;
    while (!(this.stopping && [...this.result.acked.keys()].every((n) => this.result.seen.has(n)))) {
      const ended = await new Promise<'clean' | 'broken'>((resolve) => {
        const req = https.request({ ...tlsOptions(), port: this.ports.federationPort, method: 'GET', path: `${CM}?watch=1&allowWatchBookmarks=true&resourceVersion=${this.lastRv}` }, (res) => {
          if (res.statusCode !== 200) {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (body += c));
            res.on('end', () => {
              this.fail('watch', new UnexpectedStatus(res.statusCode ?? 0, body));
              resolve('broken');
            });
            return;
          }
          if (first) {
            first = false;
            opened();
          }
          let buffered = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            buffered += chunk;
            let nl: number;
            while ((nl = buffered.indexOf('\n')) >= 0) {
              const line = buffered.slice(0, nl);
              buffered = buffered.slice(nl + 1);
              if (!line) continue;
              const e = JSON.parse(line) as { type: string; object: { metadata: { name: string; resourceVersion: string } } };
              if (e.type === 'ERROR') {
                // The object of an ERROR event is a Status; classified like an error response carrying it.
                this.fail('watch', new UnexpectedStatus((e.object as unknown as { code?: number }).code ?? 0, JSON.stringify(e.object)));
                continue;
              }
              this.lastRv = e.object.metadata.resourceVersion;
              if (e.type === 'ADDED') {
                if (this.result.seen.has(e.object.metadata.name)) this.result.duplicates++;
                this.result.seen.set(e.object.metadata.name, e.object.metadata.resourceVersion);
              }
            }
          });
          res.on('end', () => resolve('clean'));
          res.on('aborted', () => resolve('broken'));
          res.on('error', () => resolve('broken'));
        });
        this.watchRequest = req;
        req.on('error', (err) => {
          if (!this.stopping) this.fail('watch', err);
          resolve('broken');
        });
        req.end();
      });
      this.watchRequest = null;
      if (this.stopping && ended === 'broken') return; // closed by stop()
      if (ended === 'clean') this.result.watchCleanEnds++;
      else this.result.watchBreaks++;
    }
  }
}
