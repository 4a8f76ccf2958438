// Checks on a running proxy-server, through its admin state and its log.
import { strict as assert } from 'node:assert';
import type { LoggedProcess, ServerProcess } from './processes.js';

/**
 * Asserts the server holds no streams and no pending dials, and exactly the agents of the given
 * clusters (none by default): what a test must leave behind once its traffic is done.
 */
export async function assertServerIdle(server: ServerProcess, { agents = [] as string[] } = {}): Promise<void> {
  const state = await server.state();
  assert.deepEqual(
    state.agents.map((agent) => agent.cluster),
    agents,
    agents.length === 0 ? 'the registry is empty after the agents left' : `only the agents of ${agents.join(', ')} are registered`,
  );
  assert.equal(state.streams, 0, 'every stream was forgotten by the server');
  assert.equal(state.pendingDials, 0, 'no dial is left pending on the server');
}

/** Stops an agent process (SIGTERM unless told) and waits for the server to unregister its `cluster`. */
export async function stopAgent(server: ServerProcess, agent: LoggedProcess, cluster: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const since = server.mark;
  await agent.kill(signal);
  await server.agentUnregistered(cluster, since);
}
