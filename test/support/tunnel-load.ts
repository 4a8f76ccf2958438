// Load through the tunnel for fault tests and the soak: a few clients loop CONNECT → download of
// a fixed size from the byte service → verify. Every request ends in exactly one outcome:
//   ok         the whole download arrived;
//   typed      refused with a reason: a CONNECT answer with its Tunnel-Error code, or the proxy
//              socket's errno (ECONNREFUSED/ENOENT while the proxy-server is down);
//   cut        the tunneled connection broke mid-transfer (reset or early end) after a 200;
//   lost       no outcome within the bound (a hang) or wrong bytes: every fault test asserts 0.
import { connectVia, ConnectRefused, downloadRequest, type ProxyEndpoint } from './clients.js';
import type { Duplex } from 'node:stream';

export interface LoadOutcome {
  at: number;
  kind: 'ok' | 'typed' | 'cut' | 'lost';
  reason: string;
}

export interface LoadOptions {
  endpoint: ProxyEndpoint;
  cluster: string;
  /** host:port of the byte service as the agent dials it. */
  target: string;
  clients?: number;
  bytes?: number;
  /** A request with no outcome within this is 'lost'. */
  boundMs?: number;
}

export class TunnelLoad {
  readonly outcomes: LoadOutcome[] = [];
  private running: Promise<void>[] = [];
  private stopping = false;
  private readonly listeners = new Set<() => void>();

  constructor(private readonly options: LoadOptions) {}

  start(): void {
    if (this.running.length > 0) throw new Error('the load is running');
    this.stopping = false;
    this.running = Array.from({ length: this.options.clients ?? 2 }, () => this.loop());
  }

  /** Stops starting requests and waits for those in flight to end. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.running);
    this.running = [];
  }

  count(kind: LoadOutcome['kind'], since = 0): number {
    return this.outcomes.filter((o) => o.kind === kind && o.at >= since).length;
  }

  /** Failures by reason ("typed 503 NO_AGENT", "cut ECONNRESET", …). */
  reasons(): Record<string, number> {
    const result: Record<string, number> = {};
    for (const o of this.outcomes) if (o.kind !== 'ok') result[`${o.kind} ${o.reason}`] = (result[`${o.kind} ${o.reason}`] ?? 0) + 1;
    return result;
  }

  /** Resolves with the first outcome at or after `since` that matches (bounded). */
  next(match: (o: LoadOutcome) => boolean, since: number, boundMs = 20_000): Promise<LoadOutcome> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const found = this.outcomes.find((o) => o.at >= since && match(o));
        if (!found) return;
        cleanup();
        resolve(found);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no matching load outcome within ${boundMs} ms: ${JSON.stringify(this.reasons())}`));
      }, boundMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
      check();
    });
  }

  private record(kind: LoadOutcome['kind'], reason: string): void {
    this.outcomes.push({ at: Date.now(), kind, reason });
    for (const listener of [...this.listeners]) listener();
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      const { kind, reason } = await this.once();
      this.record(kind, reason);
      // After a refusal, pace (not synchronise): a dead proxy or agent is retried 50 times a second.
      if (kind !== 'ok') await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  private async once(): Promise<{ kind: LoadOutcome['kind']; reason: string }> {
    const bytes = this.options.bytes ?? 256 * 1024;
    const boundMs = this.options.boundMs ?? 15_000;
    let socket: Duplex | null = null;
    let timer: NodeJS.Timeout | undefined;
    const bounded = new Promise<{ kind: 'lost'; reason: string }>((resolve) => {
      timer = setTimeout(() => resolve({ kind: 'lost', reason: `no outcome within ${boundMs} ms` }), boundMs);
    });
    const attempt = (async (): Promise<{ kind: LoadOutcome['kind']; reason: string }> => {
      try {
        socket = await connectVia(this.options.endpoint, this.options.cluster, this.options.target);
      } catch (error) {
        if (error instanceof ConnectRefused) return { kind: 'typed', reason: `${error.status} ${error.code ?? 'no Tunnel-Error'}` };
        const code = (error as NodeJS.ErrnoException).code;
        // A proxy that died between accept and answer: the client sees the socket close or reset.
        return code ? { kind: 'typed', reason: code } : { kind: 'cut', reason: (error as Error).message };
      }
      const s: Duplex = socket;
      return new Promise((resolve) => {
        let received = 0;
        let corrupt = false;
        s.on('data', (chunk: Buffer) => {
          for (let i = 0; i < chunk.length && !corrupt; i++) if (chunk[i] !== expectedByte(received + i)) corrupt = true;
          received += chunk.length;
        });
        s.once('error', (error: NodeJS.ErrnoException) => resolve({ kind: 'cut', reason: error.code ?? error.message }));
        s.once('end', () => {
          if (corrupt) resolve({ kind: 'lost', reason: 'wrong bytes' });
          else if (received === bytes) resolve({ kind: 'ok', reason: '' });
          else resolve({ kind: 'cut', reason: 'early end' });
        });
        s.write(downloadRequest(bytes));
        s.resume();
      });
    })();
    try {
      return await Promise.race([attempt, bounded]);
    } finally {
      clearTimeout(timer);
      (socket as Duplex | null)?.destroy();
    }
  }
}

/** Byte i of the byte service's download pattern (clients.ts patternBlock, 64 KiB period). */
function expectedByte(i: number): number {
  const j = i % (64 * 1024);
  return (j * 31 + (j >> 8)) & 0xff;
}
