// Agent swarm: many ClusterAgent links to one proxy-server from one process, for the idle-agent
// memory test. Every link uses the same agent certificate (several agents of one cluster is a
// supported configuration), so no per-link key generation is needed. Started with
// `node --expose-gc` by the benchmark; commands over IPC:
//
//   connect {flags, count, batch, timeoutMs}
//         starts `count` more agents with these cluster-agent flags, `batch` at a time, each batch
//         connected before the next starts; → {agents, connected}
//   measure {}   full GC, then process.memoryUsage(); → MemorySample
//   stop {timeoutMs}   drains every agent (bounded); → {}
import { ClusterAgent } from '../cluster-agent/agent.js';
import { parseAgentOptions } from '../cluster-agent/options.js';
import { createLogger } from '../common/log.js';
import { pollUntil, sampleMemory, serveIpc } from './ipc.js';

const agents: ClusterAgent[] = [];
const log = createLogger('bench-swarm', 'silent');

function connectedCount(list: ClusterAgent[]): number {
  return list.filter((agent) => agent.status().connected).length;
}

serveIpc({
  async connect(args: { flags: string[]; count: number; batch: number; timeoutMs: number }) {
    const options = parseAgentOptions(args.flags);
    if (options === 'help') throw new Error('unexpected --help');
    const giveUpAt = Date.now() + args.timeoutMs;
    for (let started = 0; started < args.count; ) {
      const size = Math.min(Math.max(1, args.batch), args.count - started);
      const batch = Array.from({ length: size }, () => new ClusterAgent(options, log));
      agents.push(...batch);
      for (const agent of batch) agent.start();
      started += size;
      // Ramping in batches keeps a burst of TLS handshakes from running into handshake timeouts.
      await pollUntil(() => connectedCount(batch) === size, Math.max(1, giveUpAt - Date.now()), `agents ${started - size + 1}..${started} connected`, 20);
    }
    return { agents: agents.length, connected: connectedCount(agents) };
  },

  measure: () => sampleMemory(),

  async stop(args: { timeoutMs: number }) {
    const draining = Promise.all(agents.map((agent) => agent.drain(0)));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([draining, new Promise((resolve) => (timer = setTimeout(resolve, args.timeoutMs)))]);
    clearTimeout(timer);
    return {};
  },
});
