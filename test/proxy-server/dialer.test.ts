// dial() of an in-process ProxyServer over a real cluster-agent process: a caller's AbortSignal
// cancels a pending dial (the pending count drops at once and the agent learns it), and a
// per-call timeout ends a dial the agent never answers with DIAL_TIMEOUT.
import { strict as assert } from 'node:assert';
import { createLogger } from '../../common/log.js';
import { parseServerOptions } from '../../proxy-server/options.js';
import { ProxyServer } from '../../proxy-server/server.js';
import { DialError } from '../../wire/errors.js';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';
import { testPki } from '../support/pki.js';
import { spawnAgent, type LoggedProcess } from '../support/processes.js';

async function pendingDials(proxy: ProxyServer): Promise<number> {
  const metric = await proxy.metrics.registry.getSingleMetric('fedtunnel_pending_dials')!.get();
  return metric.values[0]?.value ?? 0;
}

describe('proxy-server: dialer over a real agent', function () {
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let proxy: ProxyServer;
  let agent: LoggedProcess;

  before(async function () {
    baseline = await resourceBaseline();
    const pki = testPki();
    const options = parseServerOptions(['--ca', pki.ca.cert, '--cert', pki.server.cert, '--key', pki.server.key, '--agent-listen', '127.0.0.1:0', '--instance', 'dialer-test']);
    if (options === 'help') throw new Error('unexpected help');
    proxy = new ProxyServer(options, createLogger('proxy-server', 'silent'));
    const { agentPort } = await proxy.start();
    const connected = new Promise<void>((resolve) => proxy.agents.onChange((cluster, up) => up && cluster === 'alpha' && resolve()));
    agent = spawnAgent({ cluster: 'alpha', server: { agentPort }, allow: ['127.0.0.1:*'], extraArgs: ['--keepalive-timeout', '60000'] });
    await connected;
  });

  after(async function () {
    agent?.signal('SIGCONT');
    await agent?.kill();
    await proxy?.stop();
    await assertNoLeakedResources(baseline);
  });

  afterEach(function () {
    agent.signal('SIGCONT');
  });

  it('a caller aborting a pending dial gets CANCELLED at once; the agent is told', async function () {
    agent.signal('SIGSTOP'); // the OPEN waits unanswered in the agent's socket
    const abort = new AbortController();
    const dial = proxy.dial('alpha', '127.0.0.1:9', { signal: abort.signal, sid: 'abort-me', requester: 'test' });
    assert.equal(await pendingDials(proxy), 1);
    abort.abort();
    await assert.rejects(dial, (error: unknown) => error instanceof DialError && error.code === 'CANCELLED');
    assert.equal(await pendingDials(proxy), 0);
    // The sender writes queued frames on the next tick, which runs only after this chain of
    // promises settles: let the event loop turn once so the RESET is in the agent's socket before
    // it wakes (otherwise it may read the OPEN alone, and port 9 refuses before the RESET lands).
    await new Promise((resolve) => setImmediate(resolve));
    const since = agent.mark;
    agent.signal('SIGCONT');
    // The OPEN and its RESET reach the agent together: it drops the dial instead of connecting.
    const dropped = await agent.waitForLog((l) => l.msg === 'dial refused' && l.sid === 'abort-me', { since });
    assert.equal(dropped.code, 'CANCELLED');
  });

  it('a per-call timeout below the server default ends an unanswered dial with DIAL_TIMEOUT', async function () {
    agent.signal('SIGSTOP');
    const started = performance.now();
    await assert.rejects(proxy.dial('alpha', '127.0.0.1:9', { timeoutMs: 300, requester: 'test' }), (error: unknown) => error instanceof DialError && error.code === 'DIAL_TIMEOUT');
    const ms = performance.now() - started;
    // The agent gets 300 ms; the server waits one second more for its answer. The server
    // default (--dial-timeout) is far longer.
    assert.ok(ms >= 300 && ms < 5000, `timed out after ${Math.round(ms)} ms`);
    assert.equal(await pendingDials(proxy), 0);
  });
});
