// The leak check for child processes. The mocha process's own check (leaks.ts) cannot see what a
// proxy-server or cluster-agent child holds, and every suite stops its children before that
// check runs. So each graceful kill() of a child (common/spawn.ts setStopCheck, installed by
// root-hooks.ts for every suite) first asks the child, through its admin or health listener,
// what it still holds — streams, pending dials, agent links, sockets — and fails the test if
// anything beyond the expected long-lived things is left once a bounded wait has let closing
// things finish: the hub's agent links and listeners, the federation controller's member watches,
// the agent's one current link and the destination sockets of streams its hub still has open.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { setTimeout as pause } from 'node:timers/promises';
import type { AgentDebugState } from '../../cluster-agent/agent.js';
import type { DebugState } from '../../proxy-server/admin.js';
import { runningProcesses, type LoggedProcess } from '../../common/spawn.js';
import { getJson } from './processes.js';

type AgentState = AgentDebugState & { resources: Record<string, number> };

/** How long closing streams and sockets get to finish before what is left counts as leaked. */
const SETTLE_MS = 5000;
/** Requesters whose streams live as long as the hub: the controller's member watches. */
const LONG_LIVED_REQUESTERS = new Set(['federation-controller']);
/** The mysql2 pools of a hub with a MySQL store keep up to this many idle connections (store 10, HA membership 2, replicas' used-token ledger 2). */
const MYSQL_POOL = 14;

interface Endpoint {
  port: number;
  path: string;
  /** The network namespace the child runs in (`ip netns exec NS node …`), or null. */
  netns: string | null;
}

function netnsOf(process: LoggedProcess): string | null {
  const args = process.child.spawnargs;
  return args[0] === 'ip' && args[1] === 'netns' && args[2] === 'exec' ? (args[3] ?? null) : null;
}

function hubEndpoint(process: LoggedProcess): Endpoint | null {
  const ready = process.lines.find((l) => l.msg === 'proxy-server ready');
  return typeof ready?.adminPort === 'number' ? { port: ready.adminPort, path: '/debug/agents', netns: netnsOf(process) } : null;
}

function agentEndpoint(process: LoggedProcess): Endpoint | null {
  const started = process.lines.find((l) => l.msg === 'cluster-agent started');
  return typeof started?.healthPort === 'number' ? { port: started.healthPort, path: '/debug/state', netns: netnsOf(process) } : null;
}

async function read<T>(endpoint: Endpoint): Promise<T> {
  if (!endpoint.netns) return (await getJson(endpoint.port, endpoint.path)) as T;
  // Inside a member's namespace only a process in that namespace reaches 127.0.0.1.
  const url = `http://127.0.0.1:${endpoint.port}${endpoint.path}`;
  const stdout = await new Promise<string>((resolve, reject) =>
    execFile('ip', ['netns', 'exec', endpoint.netns!, 'curl', '-sS', '--max-time', '5', url], (error, out) => (error ? reject(error) : resolve(out))),
  );
  return JSON.parse(stdout) as T;
}

/** A stopped (SIGSTOP) child cannot answer; the test froze it on purpose. */
function isFrozen(process: LoggedProcess): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${process.pid}/stat`, 'utf8');
    return /^\d+ \(.*\) T/.test(stat);
  } catch {
    return false;
  }
}

/** What a hub holds beyond its links, listeners and the controller's watches (empty: nothing). */
export function hubLeaks(state: DebugState, options: { mysqlStore: boolean }): string[] {
  const problems: string[] = [];
  if (state.pendingDials > 0) problems.push(`${state.pendingDials} pending dials`);
  for (const [requester, n] of Object.entries(state.streamsByRequester)) {
    if (!LONG_LIVED_REQUESTERS.has(requester)) problems.push(`${n} open streams of requester ${requester}`);
  }
  // One socket per agent link, one for this very request, the store's pool.
  const allowed = state.agents.length + 1 + (options.mysqlStore ? MYSQL_POOL : 0);
  const sockets = state.resources.TCPSocketWrap ?? 0;
  if (sockets > allowed) problems.push(`${sockets} TCP sockets (links + this request${options.mysqlStore ? ' + MySQL pool' : ''}: ${allowed})`);
  return problems;
}

/** What an agent holds beyond its current link and the streams its hub still has open to it. */
export function agentLeaks(state: AgentState, hubStreams: number): string[] {
  const problems: string[] = [];
  if (state.pendingDials > 0) problems.push(`${state.pendingDials} pending destination dials`);
  // With HA hubs, one more link per replica (links.ts) is expected while it is not draining.
  const stale = state.links.filter((link) => !link.current && !(link.replica !== undefined && !link.localDraining && !link.remoteDraining));
  if (stale.length > 0) problems.push(`${stale.length} links besides the current one and the replica links (${stale.map((l) => `${l.streams} streams`).join(', ')})`);
  if (state.streams > hubStreams) problems.push(`${state.streams} streams, the hub has ${hubStreams} open to it`);
  // The link, one destination socket per stream, this very request.
  const allowed = state.links.length + state.streams + 1;
  const sockets = state.resources.TCPSocketWrap ?? 0;
  if (sockets > allowed) problems.push(`${sockets} TCP sockets (links + streams + this request: ${allowed})`);
  return problems;
}

/** Streams the running hubs have open on links of the agent called `instance`. */
async function hubStreamsTo(instance: string): Promise<number> {
  let total = 0;
  for (const other of runningProcesses()) {
    const endpoint = hubEndpoint(other);
    if (!endpoint || isFrozen(other)) continue;
    const state = await read<DebugState>(endpoint).catch(() => null);
    for (const link of state?.agents ?? []) if (link.instance === instance) total += link.streams;
  }
  return total;
}

async function leaksOf(process: LoggedProcess): Promise<{ problems: string[]; state: unknown } | null> {
  const hub = hubEndpoint(process);
  if (hub) {
    const state = await read<DebugState>(hub);
    return { problems: hubLeaks(state, { mysqlStore: process.child.spawnargs.some((a) => a.startsWith('mysql://')) }), state };
  }
  const agent = agentEndpoint(process);
  if (agent) {
    const state = await read<AgentState>(agent);
    return { problems: agentLeaks(state, await hubStreamsTo(state.instance)), state };
  }
  return null;
}

/** The child's TCP sockets as ss(8) lists them, for the failure message. */
function socketsOf(process: LoggedProcess): Promise<string> {
  const netns = netnsOf(process);
  const [command, args] = netns ? ['ip', ['netns', 'exec', netns, 'ss', '-tnpa']] : ['ss', ['-tnpa']];
  return new Promise((resolve) =>
    execFile(command, args, (error, out) =>
      resolve(error ? `(ss failed: ${error.message})` : out.split('\n').filter((line) => line.includes(`pid=${process.pid},`)).join('\n')),
    ),
  );
}

/** The stop check: waits (bounded) for the child to hold only what it may, and throws naming what it still holds. */
export async function assertChildIdle(process: LoggedProcess, { settleMs = SETTLE_MS } = {}): Promise<void> {
  if (isFrozen(process)) return;
  const deadline = Date.now() + settleMs;
  for (;;) {
    if (!process.running) return;
    let found: { problems: string[]; state: unknown } | null;
    try {
      found = await leaksOf(process);
    } catch (error) {
      if (!process.running) return;
      found = { problems: [`its debug endpoint did not answer: ${(error as Error).message}`], state: null };
    }
    if (!found || found.problems.length === 0) return;
    if (Date.now() >= deadline) {
      const sockets = await socketsOf(process);
      throw new Error(`${process.name} (pid ${process.pid}) still holds, ${settleMs} ms after its test: ${found.problems.join('; ')}\n${JSON.stringify(found.state)}\n${sockets}`);
    }
    await pause(50);
  }
}
