// Real kubectl (1.27: SPDY for everything; 1.33: WebSocket v5 exec, WebSocket-tunnelled SPDY
// port-forward) against a member cluster reached only through the hub, over each frontend: the
// CONNECT frontend (`proxy-url`) and the hub's API proxy (`server: https://hub/clusters/<name>`).
// For each combination: get and apply, a watch held open across the hub's idle and header
// timeouts (with bookmarks flowing), logs -f, exec (stdin, stdout, stderr, exit code, -it with a
// resize on a pseudo-terminal), port-forward with parallel connections and 32 MiB, cp both ways,
// and a kubectl killed mid-exec or mid-port-forward leaving no stream on the hub or the agent.
import { strict as assert } from 'node:assert';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import type http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';
import { DIST } from '../support/paths.js';
import { freePort } from '../support/ports.js';
import { startKubeThroughHub, type Frontend, type KubeThroughHub } from '../support/kube-through-hub.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** The hub's listener limits for this suite: a watch must outlive several of them. */
const HUB_LIMIT_MS = 1000;
/** The member's BOOKMARK period: bookmarks are the clock of the idle hold (no sleeping). */
const BOOKMARK_MS = 500;
/** Where the pod "svc" listens inside the member's network namespace (echo; +1 digest). */
const POD_PORT = 7070;
const CLUSTER = 'east';

// The matrix: each kubectl version against each frontend, one describe each.
const MATRIX: Array<{ minor: number; frontend: Frontend }> = [27, 33].flatMap((minor) => (['connect', 'clusters'] as Frontend[]).map((frontend) => ({ minor, frontend })));

const FIFO_POD = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'box', namespace: 'default' },
  // Prints a line, then copies whatever is written to the fifo "in" to its output (logs -f).
  spec: { containers: [{ name: 'main', image: 'none', command: ['sh', '-c', 'mkfifo in; echo started; while true; do cat in; done'] }] },
};
const SERVICE_POD = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'svc', namespace: 'default' },
  spec: { containers: [{ name: 'main', image: 'none', command: [process.execPath, path.join(DIST, 'test', 'support', 'pod-service.js'), String(POD_PORT)] }] },
};

/** Sends `data` through one connection to `port`, half-closes, resolves with everything read until the peer closes. */
function roundTrip(port: number, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const got: Buffer[] = [];
    s.on('data', (d: Buffer) => got.push(d));
    s.once('error', reject);
    s.once('connect', () => s.end(data));
    s.once('close', () => resolve(Buffer.concat(got)));
  });
}

/** `promise`, or a rejection naming `what` after `ms`. */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Watch events (JSON lines) of a raw watch response, as they arrive. */
function watchEvents(res: http.IncomingMessage): { events: Array<{ type: string; object: { metadata?: { name?: string }; data?: Record<string, string> } }>; until(pred: () => boolean, timeoutMs?: number): Promise<void> } {
  const events: Array<{ type: string; object: { metadata?: { name?: string }; data?: Record<string, string> } }> = [];
  const waiters = new Set<() => void>();
  let buffered = '';
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (line.trim()) events.push(JSON.parse(line));
    }
    for (const w of [...waiters]) w();
  });
  res.on('error', () => undefined);
  return {
    events,
    until: (pred, timeoutMs = 30_000) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          if (!pred()) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`watch: condition not met; events ${JSON.stringify(events.map((e) => e.type))}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
  };
}

describe('kubectl 1.27 and 1.33 through the hub: CONNECT and /clusters (processes)', function () {
  this.timeout(120_000);
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let env: KubeThroughHub;

  before(async function () {
    baseline = await resourceBaseline();
    env = await startKubeThroughHub({
      members: { [CLUSTER]: {} },
      hubArgs: ['--idle-timeout', String(HUB_LIMIT_MS), '--header-timeout', String(HUB_LIMIT_MS)],
      memberArgs: ['--bookmark-interval-ms', String(BOOKMARK_MS)],
    });
    const admin = env.kubectl(33, 'connect', CLUSTER);
    for (const pod of [FIFO_POD, SERVICE_POD]) {
      const r = await admin.run(['apply', '-f', '-'], JSON.stringify(pod));
      assert.equal(r.code, 0, r.stderr);
    }
    const [box, svc] = [admin.start(['logs', '-f', 'box']), admin.start(['logs', '-f', 'svc'])];
    try {
      await Promise.all([box.waitFor(/started/), svc.waitFor(new RegExp(`listening ${POD_PORT}`))]);
    } finally {
      await Promise.all([box.kill(), svc.kill()]);
    }
  });

  after(async function () {
    await env?.stop();
    await assertNoLeakedResources(baseline);
  });

  for (const { minor, frontend } of MATRIX) {
    describe(`kubectl 1.${minor} through ${frontend === 'connect' ? 'CONNECT (proxy-url)' : '/clusters/<name>'}`, function () {
      const tag = `${minor}-${frontend}`;
      const k = () => env.kubectl(minor, frontend, CLUSTER);
      const member = () => env.fed.members[CLUSTER]!.apiserver;

      it('get and apply: a ConfigMap is created, read back, updated', async function () {
        const cm = (v: string): string => JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `cm-${tag}`, namespace: 'default' }, data: { v } });
        const created = await k().run(['apply', '-f', '-'], cm('one'));
        assert.equal(created.code, 0, created.stderr);
        assert.match(created.stdout.toString(), new RegExp(`configmap/cm-${tag} created`));
        const updated = await k().run(['apply', '-f', '-'], cm('two'));
        assert.equal(updated.code, 0, updated.stderr);
        assert.match(updated.stdout.toString(), new RegExp(`configmap/cm-${tag} configured`));
        const got = await k().run(['get', 'configmap', `cm-${tag}`, '-o', 'jsonpath={.data.v}']);
        assert.equal(got.code, 0, got.stderr);
        assert.equal(got.stdout.toString(), 'two');
        const table = await k().run(['get', 'pods']);
        assert.match(table.stdout.toString(), /\nbox\s+1\/1\s+Running\s+/);
      });

      it(`get -w stays open past 3× the hub's ${HUB_LIMIT_MS} ms idle and header timeouts (bookmarks flowing) and shows a later change`, async function () {
        const name = `watched-${tag}`;
        const created = await k().run(['create', 'configmap', name, '--from-literal=v=before']);
        assert.equal(created.code, 0, created.stderr);
        const watch = k().start(['get', 'configmap', name, '-w', '-o', 'jsonpath={.data.v}{"\\n"}']);
        const res = await env.request(frontend, CLUSTER, `/api/v1/namespaces/default/configmaps?watch=true&allowWatchBookmarks=true&fieldSelector=metadata.name%3D${name}`);
        try {
          assert.equal(res.statusCode, 200);
          const raw = watchEvents(res);
          await watch.waitFor(/^before$/m);
          // The clock: bookmarks of the member's period, until ≥ 3× the hub's limits have passed with no event.
          const started = Date.now();
          const bookmarks = (): number => raw.events.filter((e) => e.type === 'BOOKMARK').length;
          await raw.until(() => bookmarks() >= Math.ceil((3 * HUB_LIMIT_MS) / BOOKMARK_MS) + 1 && Date.now() - started >= 3 * HUB_LIMIT_MS);
          assert.equal(watch.child.exitCode, null, `kubectl's watch ended while idle: ${watch.output()}`);
          assert.doesNotMatch(watch.output(), /after/);
          const changed = await k().run(['patch', 'configmap', name, '-p', '{"data":{"v":"after"}}']);
          assert.equal(changed.code, 0, changed.stderr);
          await watch.waitFor(/^after$/m);
          await raw.until(() => raw.events.some((e) => e.type === 'MODIFIED' && e.object.data?.v === 'after'));
        } finally {
          res.destroy();
          await watch.kill();
        }
      });

      it('logs -f streams each line as the container writes it', async function () {
        const logs = k().start(['logs', '-f', 'box']);
        try {
          await logs.waitFor(/started/);
          for (const i of [1, 2]) {
            const marker = `line-${tag}-${i}-${randomBytes(4).toString('hex')}`;
            const wrote = await k().run(['exec', 'box', '--', 'sh', '-c', `echo ${marker} > in`]);
            assert.equal(wrote.code, 0, wrote.stderr);
            await logs.waitFor(new RegExp(marker));
          }
          assert.equal(logs.child.exitCode, null, 'logs -f is still following');
        } finally {
          await logs.kill();
        }
      });

      it('exec -i: stdin in, stdout and stderr apart, the exit code is kubectl\'s own (sh -c "exit 3" → 3)', async function () {
        const [r, three] = await Promise.all([
          k().run(['exec', '-i', 'box', '--', 'sh', '-c', 'cat; echo to-stderr >&2'], `from stdin ${tag}\n`),
          k().run(['exec', 'box', '--', 'sh', '-c', 'exit 3']),
        ]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout.toString(), `from stdin ${tag}\n`);
        assert.match(r.stderr, /to-stderr/);
        assert.equal(three.code, 3, three.stderr);
      });

      it('exec -it on a pseudo-terminal: the terminal size and a resize reach the member, stdin and the exit code pass', async function () {
        const since = member().mark;
        const initial = { rows: 30 + minor, cols: 100 + minor };
        const resized = { rows: 40 + minor, cols: 150 + minor };
        const resizeSeen = (size: { rows: number; cols: number }) =>
          member().waitForLog((l) => l.msg === 'terminal resize (not applied: no pseudo-terminal)' && l.width === size.cols && l.height === size.rows, { since });
        const tty = k().startOnPty(['exec', '-it', 'box', '--', 'sh', '-c', 'read line; echo "got:$line"; exit 5'], initial, resized);
        try {
          await resizeSeen(initial);
          tty.child.kill('SIGUSR1');
          await resizeSeen(resized);
          tty.child.stdin!.write(`hello-${tag}\n`);
          await tty.waitFor(new RegExp(`got:hello-${tag}`));
          assert.equal(await tty.exited, 5, tty.output());
        } finally {
          await tty.kill();
        }
        const started = await member().waitForLog((l) => l.msg === 'exec session started' && l.tty === true, { since });
        assert.equal(started.pod, 'box');
      });

      it('port-forward: 4 parallel echo connections and 32 MiB into the pod, sha256 equal', async function () {
        const [echoPort, digestPort] = [await freePort(), await freePort()];
        const pf = k().start(['port-forward', 'pod/svc', `${echoPort}:${POD_PORT}`, `${digestPort}:${POD_PORT + 1}`]);
        try {
          await pf.waitFor(new RegExp(`Forwarding from 127\\.0\\.0\\.1:${digestPort}`));
          const payloads = [0, 1, 2, 3].map(() => randomBytes(1024 * 1024));
          const big = randomBytes(32 * 1024 * 1024);
          const [echoed, digest] = await Promise.all([Promise.all(payloads.map((p) => roundTrip(echoPort, p))), roundTrip(digestPort, big)]);
          echoed.forEach((e, i) => assert.equal(sha(e), sha(payloads[i]!), `echo connection ${i}`));
          assert.equal(digest.toString().trim(), sha(big), 'the pod read the 32 MiB byte for byte');
        } finally {
          await pf.kill();
        }
      });

      it('cp: a file into the pod and back out, byte for byte', async function () {
        const dir = fs.mkdtempSync(path.join(env.fed.dir, `cp-${tag}-`));
        const src = path.join(dir, 'up.bin');
        const data = randomBytes(512 * 1024);
        fs.writeFileSync(src, data);
        const put = await k().run(['cp', src, `box:copied-${tag}.bin`]);
        assert.equal(put.code, 0, put.stderr);
        const back = path.join(dir, 'down.bin');
        const get = await k().run(['cp', `box:copied-${tag}.bin`, back]);
        assert.equal(get.code, 0, get.stderr);
        assert.equal(sha(fs.readFileSync(back)), sha(data));
      });

      it('kubectl killed (SIGKILL) mid-exec and mid-port-forward: the member session ends, no stream is left on the hub or the agent', async function () {
        const since = member().mark;
        // What is open before (the API proxy keeps a pool of idle keep-alive streams per cluster).
        const before = await env.streams();
        const exec = k().start(['exec', '-i', 'box', '--', 'sh', '-c', 'echo ready; cat']);
        await exec.waitFor(/ready/);
        const local = await freePort();
        const pf = k().start(['port-forward', 'pod/svc', `${local}:${POD_PORT}`]);
        await pf.waitFor(/Forwarding from 127\.0\.0\.1/);
        // A forwarded connection with bytes in flight when kubectl dies.
        const open = net.connect({ host: '127.0.0.1', port: local });
        open.on('error', () => undefined);
        await within(15_000, 'the forwarded connection echoes', new Promise<void>((resolve) => open.once('data', () => resolve()).write('ping')));
        const closed = new Promise((resolve) => open.once('close', resolve));
        const during = await env.streams();
        assert.ok(during.hub >= 2 && during.agents[CLUSTER]! >= 2, `exec and port-forward hold streams on the hub and the agent: ${JSON.stringify(during)}`);
        await Promise.all([exec.kill(), pf.kill()]);
        await Promise.all([
          member().waitForLog((l) => l.msg === 'exec session ended' && l.clientGone === true, { since }),
          member().waitForLog((l) => l.msg === 'portforward session ended', { since }),
          within(15_000, 'the forwarded connection closes with kubectl', closed),
        ]);
        await env.streamsBackTo(before);
      });
    });
  }
});
