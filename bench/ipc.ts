// Request/response over Node's IPC channel between the benchmark and its helper processes
// (memory probe, agent swarm). One command at a time per call; every call has a deadline, and a
// helper exits as soon as the channel to its parent goes away.
import type { ManagedChild } from './system.js';

interface Request {
  id: number;
  cmd: string;
  args: unknown;
}

interface Reply {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

interface Waiting {
  resolve(value: unknown): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

/** Parent side: calls commands on a ManagedChild started with `ipc: true`. */
export class IpcClient {
  private nextId = 1;
  private readonly waiting = new Map<number, Waiting>();

  constructor(private readonly child: ManagedChild) {
    child.process.on('message', (message: Reply) => {
      const call = this.waiting.get(message.id);
      if (!call) return;
      this.waiting.delete(message.id);
      clearTimeout(call.timer);
      if (message.ok) call.resolve(message.result);
      else call.reject(new Error(message.error ?? 'helper command failed'));
    });
    child.process.once('close', () => {
      for (const [id, call] of this.waiting) {
        this.waiting.delete(id);
        clearTimeout(call.timer);
        call.reject(child.failure('exited during a command'));
      }
    });
  }

  call<T>(cmd: string, args: unknown, timeoutMs: number): Promise<T> {
    if (this.child.hasExited || !this.child.process.connected) return Promise.reject(this.child.failure(`not running (command ${cmd})`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(this.child.failure(`command ${cmd} did not finish within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, { resolve: resolve as (value: unknown) => void, reject, timer });
      const request: Request = { id, cmd, args };
      this.child.process.send(request, (error) => {
        if (!error) return;
        this.waiting.delete(id);
        clearTimeout(timer);
        reject(error);
      });
    });
  }
}

export type Handlers = Record<string, (args: never) => Promise<unknown>>;

/** Child side: answers the parent's commands; exits when the parent goes away. */
export function serveIpc(handlers: Handlers): void {
  const send = process.send?.bind(process);
  if (!send) {
    process.stderr.write('this helper must be started by the benchmark (it needs an IPC channel)\n');
    process.exit(2);
  }
  process.on('disconnect', () => process.exit(0));
  process.on('message', (message: Request) => {
    const handler = handlers[message.cmd] as ((args: unknown) => Promise<unknown>) | undefined;
    const work = handler ? handler(message.args) : Promise.reject(new Error(`unknown command ${message.cmd}`));
    work.then(
      (result) => send({ id: message.id, ok: true, result } satisfies Reply),
      (error: unknown) => send({ id: message.id, ok: false, error: error instanceof Error ? error.message : String(error) } satisfies Reply),
    );
  });
}

/** Polls `condition` with short timers until it holds; throws after `timeoutMs`. */
export async function pollUntil(condition: () => boolean, timeoutMs: number, what: string, intervalMs = 10): Promise<void> {
  const giveUpAt = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() >= giveUpAt) throw new Error(`${what}: not reached within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Full GCs with macrotask turns in between, so that finalizers and weak callbacks run. Needs --expose-gc. */
export async function collectGarbage(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc');
  for (let i = 0; i < 4; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    gc();
  }
}

export interface MemorySample {
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  rss: number;
}

export async function sampleMemory(): Promise<MemorySample> {
  await collectGarbage();
  const { heapUsed, external, arrayBuffers, rss } = process.memoryUsage();
  return { heapUsed, external, arrayBuffers, rss };
}
