// Memory probe: embeds a ProxyServer in this process (nothing else of note lives here) and
// measures it on the benchmark's command over IPC. Started with `node --expose-gc`.
//
// Commands:
//   start {flags}                    parse proxy-server flags, start; → {agentPort}
//   waitLinks {count, timeoutMs}     until that many agent links are registered; → {links}
//   measure {}                       full GC, then process.memoryUsage(); → MemorySample
//   open {cluster, address, count, concurrency}
//                                    dial() that many streams and keep them idle; → OpenResult
//   closeStreams {timeoutMs}         destroy every stream opened; → {remaining}
//   stop {}                          stop the server (the benchmark then ends the process)
import type { DialedStream } from '../proxy-server/dialer.js';
import { createLogger } from '../common/log.js';
import { parseServerOptions } from '../proxy-server/options.js';
import { ProxyServer } from '../proxy-server/server.js';
import { pollUntil, sampleMemory, serveIpc } from './ipc.js';

export interface OpenResult {
  opened: number;
  failed: number;
  firstError?: string;
  ms: number;
}

/** Give up opening after this many failed dials: the measurement is void anyway. */
const MAX_FAILED_DIALS = 20;

let server: ProxyServer | undefined;
let streams: DialedStream[] = [];

function running(): ProxyServer {
  if (!server) throw new Error('server not started');
  return server;
}

function openStreamCount(): number {
  return running().agents.links().reduce((n, link) => n + link.session.streamCount, 0);
}

serveIpc({
  async start(args: { flags: string[] }) {
    if (server) throw new Error('already started');
    const options = parseServerOptions(args.flags);
    if (options === 'help') throw new Error('unexpected --help');
    server = new ProxyServer(options, createLogger('bench', 'silent'));
    const ports = await server.start();
    return { agentPort: ports.agentPort };
  },

  async waitLinks(args: { count: number; timeoutMs: number }) {
    const proxy = running();
    await pollUntil(() => proxy.agents.linkCount >= args.count, args.timeoutMs, `${args.count} agent links (have ${proxy.agents.linkCount})`);
    return { links: proxy.agents.linkCount };
  },

  measure: () => sampleMemory(),

  async open(args: { cluster: string; address: string; count: number; concurrency: number }): Promise<OpenResult> {
    const proxy = running();
    const started = performance.now();
    let next = 0;
    let failed = 0;
    let firstError: string | undefined;
    const opened: DialedStream[] = [];
    const worker = async (): Promise<void> => {
      while (next < args.count && failed < MAX_FAILED_DIALS) {
        next++;
        try {
          opened.push(await proxy.dial(args.cluster, args.address, { requester: 'bench' }));
        } catch (error) {
          failed++;
          firstError ??= (error as Error).message;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, args.concurrency) }, worker));
    streams.push(...opened);
    return { opened: opened.length, failed, firstError, ms: performance.now() - started };
  },

  async closeStreams(args: { timeoutMs: number }) {
    for (const stream of streams) stream.destroy();
    streams = [];
    await pollUntil(() => openStreamCount() === 0, args.timeoutMs, 'streams closed');
    return { remaining: openStreamCount() };
  },

  async stop() {
    const proxy = server;
    server = undefined;
    for (const stream of streams) stream.destroy();
    streams = [];
    await proxy?.stop(0);
    return {}; // the benchmark then ends this process
  },
});
