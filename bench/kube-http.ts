// A minimal Kubernetes JSON client for the benchmark: requests and watches over mutual TLS, with
// keep-alive. The benchmark talks to the federation API server (and reads members directly to
// time what arrived there); the controller under test reaches members only through the tunnel.
import fs from 'node:fs';
import https from 'node:https';
import readline from 'node:readline';

export interface KubeHttpOptions {
  base: string;
  ca: string;
  cert: string;
  key: string;
}

export class KubeHttp {
  private readonly agent: https.Agent;
  private readonly base: URL;

  constructor(options: KubeHttpOptions) {
    this.base = new URL(options.base);
    this.agent = new https.Agent({ keepAlive: true, maxSockets: 32, ca: fs.readFileSync(options.ca), cert: fs.readFileSync(options.cert), key: fs.readFileSync(options.key), servername: 'localhost' });
  }

  request<T = unknown>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
    return new Promise((resolve, reject) => {
      const text = body === undefined ? undefined : JSON.stringify(body);
      const req = https.request(
        { host: this.base.hostname, port: this.base.port, path, method, agent: this.agent, headers: { Accept: 'application/json', ...(text ? { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(text) } : {}) } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const out = Buffer.concat(chunks).toString('utf8');
            if ((res.statusCode ?? 0) >= 300) reject(new Error(`${method} ${path}: HTTP ${res.statusCode}: ${out.slice(0, 300)}`));
            else resolve(out ? (JSON.parse(out) as T) : (undefined as T));
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(text);
    });
  }

  /**
   * Streams watch events of `path` (a list path; ?watch=1 is added) until stop(). A watch the
   * server ends is resumed from the last resourceVersion seen, so no event is lost.
   */
  watch(path: string, onEvent: (type: string, obj: { metadata: { name: string; namespace?: string; resourceVersion?: string }; [k: string]: unknown }) => void): { stop(): void } {
    let stopped = false;
    let lastRv = '';
    let req: ReturnType<typeof https.request> | null = null;
    const start = (): void => {
      const sep = path.includes('?') ? '&' : '?';
      const rv = lastRv ? `&resourceVersion=${lastRv}` : '';
      req = https.request({ host: this.base.hostname, port: this.base.port, path: `${path}${sep}watch=1${rv}`, agent: false, ca: this.agent.options.ca, cert: this.agent.options.cert, key: this.agent.options.key, servername: 'localhost' }, (res) => {
        const lines = readline.createInterface({ input: res });
        lines.on('line', (line) => {
          const e = JSON.parse(line) as { type: string; object: { metadata: { name: string; resourceVersion?: string } } };
          if (e.object?.metadata?.resourceVersion) lastRv = e.object.metadata.resourceVersion;
          if (e.type !== 'BOOKMARK') onEvent(e.type, e.object);
        });
        lines.on('error', () => undefined);
        res.on('error', () => undefined);
        res.on('close', () => {
          if (!stopped) setImmediate(start);
        });
      });
      req.on('error', () => {
        if (!stopped) setTimeout(start, 100);
      });
      req.end();
    };
    start();
    return {
      stop: () => {
        stopped = true;
        req?.destroy();
      },
    };
  }

  close(): void {
    this.agent.destroy();
  }
}
