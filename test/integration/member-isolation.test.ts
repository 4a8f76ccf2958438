// The federation harness's isolation: members in their own network namespaces are reachable only
// through their agents. From the test process (root namespace) nothing answers at a member's API
// address, while kubectl through the hub's CONNECT frontend and the agent works; without the agent
// the member is unreachable, with it back it answers again.
import { strict as assert } from 'node:assert';
import net from 'node:net';
import { startFederation, type Federation } from '../support/federation-harness.js';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';
import { mysqlUnreachable } from '../support/mysql.js';

/** Connects once; resolves with the error code, or 'connected' (then closes the socket). */
function tryConnect(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.setTimeout(3000);
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve('ETIMEDOUT');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      socket.destroy();
      resolve(error.code ?? error.message);
    });
  });
}

describe('federation harness: member isolation (network namespaces)', function () {
  this.timeout(120_000);
  let fed: Federation;
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;

  before(async function () {
    baseline = await resourceBaseline();
    fed = await startFederation({ members: ['iso-a', 'iso-b'], isolation: 'netns' });
  });

  after(async function () {
    await fed?.stop();
    await assertNoLeakedResources(baseline);
  });

  it('nothing listens at a member API address in the root namespace', async function () {
    for (const m of Object.values(fed.members)) {
      assert.ok(m.netns, `${m.name} runs in a namespace`);
      assert.match(m.apiAddress, /^127\.0\.0\.1:\d+$/);
      const port = Number(m.apiAddress.split(':')[1]);
      const result = await tryConnect('127.0.0.1', port);
      assert.ok(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH'].includes(result), `${m.name}: connect to ${m.apiAddress} from the root namespace gave ${result}`);
    }
  });

  it('kubectl reaches each member through the hub and its agent, and each member has its own store', async function () {
    for (const name of ['iso-a', 'iso-b']) {
      const r = await fed.kubectlMember(name, ['get', 'ns', '-o', 'name']);
      assert.equal(r.code, 0, `${name}: ${r.stderr}`);
      assert.match(r.stdout, /namespace\/default/);
    }
    const created = await fed.kubectlMember('iso-a', ['create', 'configmap', 'only-in-a', '-n', 'default', '--from-literal=k=v']);
    assert.equal(created.code, 0, created.stderr);
    assert.equal((await fed.kubectlMember('iso-a', ['get', 'configmap', 'only-in-a', '-n', 'default', '-o', 'jsonpath={.data.k}'])).stdout, 'v');
    const other = await fed.kubectlMember('iso-b', ['get', 'configmap', 'only-in-a', '-n', 'default']);
    assert.notEqual(other.code, 0);
    assert.match(other.stderr, /NotFound|not found/);
    const federation = await fed.kubectl('federation', ['get', 'ns', 'default', '-o', 'name']);
    assert.equal(federation.code, 0, federation.stderr);
  });

  it('without its agent a member is unreachable with a clear error; with the agent back it answers, data intact', async function () {
    await fed.stopAgent('iso-a');
    assert.equal(fed.members['iso-a']!.agent, null);
    const down = await fed.kubectlMember('iso-a', ['get', 'ns']);
    assert.notEqual(down.code, 0, 'kubectl must fail while the agent is away');
    assert.match(down.stderr, /Service Unavailable|Bad Gateway/, `unclear error: ${down.stderr}`);
    // The other member is not affected.
    assert.equal((await fed.kubectlMember('iso-b', ['get', 'ns', 'default', '-o', 'name'])).code, 0);

    await fed.startAgent('iso-a');
    const back = await fed.kubectlMember('iso-a', ['get', 'configmap', 'only-in-a', '-n', 'default', '-o', 'jsonpath={.data.k}']);
    assert.equal(back.code, 0, back.stderr);
    assert.equal(back.stdout, 'v', 'the member API server kept its store across the agent restart');
  });

  it('a SIGKILLed agent is noticed too, and the hub restarts on the same ports with every agent back', async function () {
    await fed.stopAgent('iso-b', 'SIGKILL');
    await fed.startAgent('iso-b');
    const before = { ...fed.hub.ports };
    await fed.stopHub();
    await fed.startHub();
    assert.deepEqual(fed.hub.ports, before);
    for (const name of ['iso-a', 'iso-b']) {
      const r = await fed.kubectlMember(name, ['get', 'ns', 'default', '-o', 'name']);
      assert.equal(r.code, 0, `${name} after the hub restart: ${r.stderr}`);
    }
  });
});

describe('federation harness: loopback members, hub store on MySQL', function () {
  this.timeout(120_000);
  let fed: Federation | undefined;
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;

  before(async function () {
    const unreachable = await mysqlUnreachable();
    if (unreachable) {
      process.stdout.write(`      MySQL not reachable (${unreachable}): skipped\n`);
      this.skip();
    }
    baseline = await resourceBaseline();
    fed = await startFederation({ members: ['lo-a'], isolation: 'loopback', store: 'mysql' });
  });

  after(async function () {
    if (!fed) return;
    await fed.stop();
    await assertNoLeakedResources(baseline);
  });

  it('serves the federation from MySQL across a hub restart, and the member through its agent', async function () {
    const f = fed!;
    assert.equal(f.members['lo-a']!.netns, null);
    assert.equal((await f.kubectl('federation', ['create', 'namespace', 'kept'])).code, 0);
    await f.stopHub();
    await f.startHub();
    const kept = await f.kubectl('federation', ['get', 'namespace', 'kept', '-o', 'name']);
    assert.equal(kept.code, 0, kept.stderr);
    const member = await f.kubectlMember('lo-a', ['get', 'ns', 'default', '-o', 'name']);
    assert.equal(member.code, 0, member.stderr);
  });
});
