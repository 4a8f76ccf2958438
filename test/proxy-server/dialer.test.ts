// dial() of an in-process ProxyServer over a real cluster-agent process: a caller's AbortSignal
// cancels a pending dial (the pending count drops at once and the agent learns it), and a
// per-call timeout ends a dial the agent never answers with DIAL_TIMEOUT, and a dial whose link
// dies before the agent answers is served by another link of the cluster.
import { strict as assert } from 'node:assert';
import net from 'node:net';
import { createLogger } from '../../common/log.js';
import { parseServerOptions } from '../../proxy-server/options.js';
import { MAX_DIAL_ATTEMPTS, retryOnAnotherLink } from '../../proxy-server/dialer.js';
import { ProxyServer } from '../../proxy-server/server.js';
import { DialError } from '../../wire/errors.js';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';
import { testPki } from '../support/pki.js';
import { spawnAgent, type LoggedProcess } from '../support/processes.js';

async function pendingDials(proxy: ProxyServer): Promise<number> {
  const metric = await proxy.metrics.registry.getSingleMetric('fedtunnel_pending_dials')!.get();
  return metric.values[0]?.value ?? 0;
}

describe('proxy-server: retryOnAnotherLink', function () {
  it('retries only a link that went away before the answer, within the attempts, time and signal', function () {
    assert.equal(retryOnAnotherLink(new DialError('LINK_LOST', 'x'), 1, 1000, false), true);
    assert.equal(retryOnAnotherLink(new DialError('AGENT_DRAINING', 'x'), 1, 1000, false), true);
    for (const code of ['CONNECTION_REFUSED', 'DIAL_TIMEOUT', 'STREAM_LIMIT', 'POLICY_DENIED', 'CANCELLED', 'NO_AGENT'] as const) {
      assert.equal(retryOnAnotherLink(new DialError(code, 'x'), 1, 1000, false), false, code);
    }
    assert.equal(retryOnAnotherLink(new Error('plain'), 1, 1000, false), false);
    assert.equal(retryOnAnotherLink(new DialError('LINK_LOST', 'x'), MAX_DIAL_ATTEMPTS, 1000, false), false, 'attempts spent');
    assert.equal(retryOnAnotherLink(new DialError('LINK_LOST', 'x'), 1, 0, false), false, 'no time left');
    assert.equal(retryOnAnotherLink(new DialError('LINK_LOST', 'x'), 1, 1000, true), false, 'the caller gave up');
  });
});

describe('proxy-server: dialer over a real agent', function () {
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let proxy: ProxyServer;
  let agent: LoggedProcess;
  let agentPort: number;

  before(async function () {
    baseline = await resourceBaseline();
    const pki = testPki();
    const options = parseServerOptions(['--ca', pki.ca.cert, '--cert', pki.server.cert, '--key', pki.server.key, '--agent-listen', '127.0.0.1:0', '--instance', 'dialer-test']);
    if (options === 'help') throw new Error('unexpected help');
    proxy = new ProxyServer(options, createLogger('proxy-server', 'silent'));
    ({ agentPort } = await proxy.start());
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

  it('a dial pending on a link that dies is served by another link of the cluster, not failed with LINK_LOST', async function () {
    const destination = net.createServer((socket) => {
      socket.on('error', () => undefined); // the agent may reset it once the stream is done
      socket.end('hello from the destination\n');
    });
    await new Promise<void>((resolve) => destination.listen(0, '127.0.0.1', resolve));
    const port = (destination.address() as net.AddressInfo).port;
    agent.signal('SIGSTOP'); // the OPEN waits unanswered on the only link
    const dial = proxy.dial('alpha', `127.0.0.1:${port}`, { requester: 'test' });
    assert.equal(await pendingDials(proxy), 1);
    const other = spawnAgent({ cluster: 'alpha', server: { agentPort }, allow: ['127.0.0.1:*'], extraArgs: ['--instance', 'agent-alpha-2', '--keepalive-timeout', '60000'] });
    try {
      await other.waitForLog((l) => l.msg === 'link established');
      assert.equal(proxy.agents.summary().filter((l) => l.cluster === 'alpha').length, 2, 'the hub holds both links');
      await agent.kill('SIGKILL'); // the first link dies with the OPEN unanswered
      const stream = await dial;
      const chunks: Buffer[] = [];
      for await (const chunk of stream) chunks.push(chunk as Buffer);
      assert.equal(Buffer.concat(chunks).toString(), 'hello from the destination\n');
      const retries = await proxy.metrics.registry.getSingleMetric('fedtunnel_dial_retries_total')!.get();
      assert.deepEqual(retries.values.map((v) => [v.labels.reason, v.value]), [['LINK_LOST', 1]]);
    } finally {
      agent = other; // after() stops whichever agent serves alpha now
      destination.close();
    }
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
