// Member mode's pods with real kubectl 1.27 (SPDY/3.1 for everything), 1.30 (WebSocket v5 exec,
// SPDY port-forward), 1.32 and 1.33 (WebSocket v5 exec, WebSocket-tunnelled SPDY port-forward) against the API server binary started with
// --enable-pod-exec: exec with stdin/stdout/stderr and exit codes, megabytes through `exec -i cat`,
// parallel port-forward connections verified byte for byte, `logs -f` and `attach` seeing new
// output, `cp`; a kubectl killed mid-exec or mid-port-forward leaves no process, socket or session
// behind; without the flag, exec is refused with a clear Status.
import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import path from 'node:path';
import { assertNoLeakedResources, resourceBaseline } from '../../support/leaks.js';
import { metric } from '../../support/metrics.js';
import { scratchDir } from '../../support/paths.js';
import { testPki } from '../../support/pki.js';
import { bindUser, mastersCert, request, startApiServer, type ApiServerProcess } from './harness.js';

/** The directory of the kubectl on PATH after resolving symlinks, where kubectl.1.27 … kubectl.1.33 sit. */
function kubectlDir(): string {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, 'kubectl');
    if (fs.existsSync(candidate)) return path.dirname(fs.realpathSync(candidate));
  }
  throw new Error('no kubectl on PATH');
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

interface Run {
  code: number;
  stdout: Buffer;
  stderr: string;
}

interface Running {
  child: ChildProcess;
  /** Resolves with the exit code once kubectl has exited. */
  exited: Promise<number | null>;
  output(): string;
  waitFor(re: RegExp, timeoutMs?: number): Promise<void>;
  kill(): Promise<void>;
}

class Kubectl {
  constructor(
    readonly bin: string,
    readonly server: ApiServerProcess,
    readonly context = 'admin',
  ) {}

  private env(): NodeJS.ProcessEnv {
    const home = path.join(this.server.home, path.basename(this.bin));
    fs.mkdirSync(home, { recursive: true });
    return { ...process.env, KUBECONFIG: this.server.kubeconfig, HOME: home, KUBECACHEDIR: path.join(home, 'cache') };
  }

  run(args: string[], input?: Buffer | string): Promise<Run> {
    return new Promise((resolve, reject) => {
      const child = spawn(this.bin, ['--context', this.context, ...args], { env: this.env(), stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      let err = '';
      child.stdout!.on('data', (d: Buffer) => out.push(d));
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      child.stdin!.on('error', () => {});
      child.stdin!.end(input ?? '');
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.once('error', reject);
      child.once('close', (code) => {
        clearTimeout(timer);
        resolve({ code: code ?? -1, stdout: Buffer.concat(out), stderr: err });
      });
    });
  }

  start(args: string[]): Running {
    const child = spawn(this.bin, ['--context', this.context, ...args], { env: this.env(), stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    const waiters = new Set<() => void>();
    const onData = (d: Buffer): void => {
      out += d.toString();
      for (const w of [...waiters]) w();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.stdin!.on('error', () => {});
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    return {
      child,
      exited,
      output: () => out,
      waitFor: (re, timeoutMs = 20_000) =>
        new Promise((resolve, reject) => {
          const check = (): void => {
            if (!re.test(out)) return;
            waiters.delete(check);
            clearTimeout(timer);
            resolve();
          };
          const timer = setTimeout(() => {
            waiters.delete(check);
            reject(new Error(`kubectl output never matched ${re}:\n${out}`));
          }, timeoutMs);
          waiters.add(check);
          check();
        }),
      kill: async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await exited;
      },
    };
  }
}

/** A loopback echo service standing in for a process listening in the pod; counts open connections. */
async function startEcho(): Promise<{ port: number; open: Set<net.Socket>; accepted(): Promise<net.Socket>; close(): Promise<void> }> {
  const open = new Set<net.Socket>();
  const waiting: Array<(s: net.Socket) => void> = [];
  const server = net.createServer((s) => {
    open.add(s);
    s.on('error', () => {});
    s.once('close', () => open.delete(s));
    s.pipe(s);
    waiting.shift()?.(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    open,
    accepted: () => new Promise((resolve) => waiting.push(resolve)),
    close: async () => {
      for (const s of open) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Sends `data` through one connection to `port` and resolves with everything read until the peer closes. */
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

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Live (not zombie) processes of the process group `pgid`. Zombies are left out: a killed
 * command's children are reparented to this machine's PID 1, whose reaping is not ours to test.
 */
function liveGroupMembers(pgid: number): number[] {
  const live: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // pid (comm) state ppid pgrp …; comm may hold spaces and parentheses, so split after the last ')'.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(pgrp) === pgid && state !== 'Z') live.push(Number(entry));
  }
  return live;
}

async function metricsText(server: ApiServerProcess): Promise<string> {
  const r = await request(server, 'GET', '/metrics');
  assert.equal(r.status, 200);
  return r.body;
}

/** Sends a raw request head on a TLS connection as admin; resolves with everything the server sent until it closed. */
function rawExchange(server: ApiServerProcess, head: string, after?: Buffer): Promise<string> {
  const admin = mastersCert();
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: server.port, ca: fs.readFileSync(testPki().ca.cert), cert: fs.readFileSync(admin.cert), key: fs.readFileSync(admin.key) });
    let got = '';
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (after && got.includes('\r\n\r\n')) {
        s.write(after);
        after = undefined;
      }
    });
    s.once('error', reject);
    s.once('secureConnect', () => s.write(head));
    s.once('close', () => resolve(got));
  });
}

const FIFO_POD = (name: string) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'default' },
  // The container prints a line, then copies whatever is written to the fifo "in" to its output.
  spec: { containers: [{ name: 'main', image: 'none', command: ['sh', '-c', 'mkfifo in; echo started; while true; do cat in; done'] }] },
});

describe('member mode pods: kubectl exec, attach, port-forward, logs, cp', function () {
  this.timeout(180_000);
  const dir = kubectlDir();
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let server: ApiServerProcess;
  let echo: Awaited<ReturnType<typeof startEcho>>;

  before(async function () {
    baseline = await resourceBaseline();
    server = await startApiServer('pods', ['--enable-pod-exec']);
    echo = await startEcho();
    const admin = new Kubectl(path.join(dir, 'kubectl'), server);
    const created = await admin.run(['apply', '-f', '-'], JSON.stringify(FIFO_POD('box')));
    assert.equal(created.code, 0, created.stderr);
  });

  after(async function () {
    await echo?.close();
    await server?.kill();
    await assertNoLeakedResources(baseline);
  });

  it('a created pod is Running, and kubectl get pods prints it as a table', async function () {
    const k = new Kubectl(path.join(dir, 'kubectl'), server);
    const r = await k.run(['get', 'pods']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout.toString(), /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\n/);
    assert.match(r.stdout.toString(), /\nbox\s+1\/1\s+Running\s+0\s+/);
    const ip = await k.run(['get', 'pod', 'box', '-o', 'jsonpath={.status.podIP} {.spec.containers[0].name}']);
    assert.equal(ip.stdout.toString(), '127.0.0.1 main');
  });

  // What each kubectl speaks (REFERENCE.md §7): exec over SPDY until 1.29, WebSocket v5 from 1.30;
  // port-forward over SPDY until 1.30, SPDY tunnelled in WebSocket from 1.31.
  const PROTOCOLS: Record<number, { exec: string; portforward: string }> = {
    27: { exec: 'spdy', portforward: 'spdy' },
    30: { exec: 'websocket_v5', portforward: 'spdy' },
    32: { exec: 'websocket_v5', portforward: 'websocket_spdy' },
    33: { exec: 'websocket_v5', portforward: 'websocket_spdy' },
  };
  const sessions = async (kind: string, protocol: string): Promise<number> => metric(await metricsText(server), `apiserver_pod_stream_sessions_total{kind="${kind}",protocol="${protocol}"}`);

  for (const minor of [27, 30, 32, 33]) {
    describe(`kubectl 1.${minor}`, function () {
      let k: Kubectl;
      before(function () {
        k = new Kubectl(path.join(dir, `kubectl.1.${minor}`), server);
      });

      it('exec: stdin in, stdout and stderr apart, the exit code is kubectl\'s own', async function () {
        const before = await sessions('exec', PROTOCOLS[minor]!.exec);
        const r = await k.run(['exec', '-i', 'box', '--', 'sh', '-c', 'cat; echo to-stderr >&2; pwd; exit 7'], 'from stdin\n');
        assert.equal(r.code, 7, r.stderr);
        const [first, cwd] = r.stdout.toString().split('\n');
        assert.equal(first, 'from stdin');
        assert.match(cwd!, /member-pods-.*\/default_box_/, 'the command runs in the pod directory');
        assert.match(r.stderr, /to-stderr/);
        assert.doesNotMatch(r.stdout.toString(), /to-stderr/);
        assert.equal(await sessions('exec', PROTOCOLS[minor]!.exec), before + 1, `kubectl 1.${minor} execs over ${PROTOCOLS[minor]!.exec}`);
        const ok = await k.run(['exec', 'box', '--', 'true']);
        assert.equal(ok.code, 0, ok.stderr);
        const missing = await k.run(['exec', 'box', '--', 'no-such-command']);
        assert.equal(missing.code, 1);
        assert.match(missing.stderr, /executable file not found/);
      });

      it('exec -i: 4 MiB through cat, byte for byte', async function () {
        const data = randomBytes(4 * 1024 * 1024);
        const r = await k.run(['exec', '-i', 'box', '--', 'cat'], data);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout.length, data.length);
        assert.equal(sha(r.stdout), sha(data));
      });

      it('port-forward: 4 parallel connections of 2 MiB each, byte for byte', async function () {
        const local = await freePort();
        const before = await sessions('portforward', PROTOCOLS[minor]!.portforward);
        const pf = k.start(['port-forward', 'pod/box', `${local}:${echo.port}`]);
        try {
          await pf.waitFor(/Forwarding from 127\.0\.0\.1/);
          const payloads = [0, 1, 2, 3].map(() => randomBytes(2 * 1024 * 1024));
          const echoed = await Promise.all(payloads.map((p) => roundTrip(local, p)));
          echoed.forEach((e, i) => assert.equal(sha(e), sha(payloads[i]!), `connection ${i}`));
          assert.equal(await sessions('portforward', PROTOCOLS[minor]!.portforward), before + 1, `kubectl 1.${minor} port-forwards over ${PROTOCOLS[minor]!.portforward}`);
        } finally {
          await pf.kill();
        }
      });

      it('logs -f and attach see new output as the container writes it', async function () {
        const since = server.mark;
        const logs = k.start(['logs', '-f', 'box']);
        const attach = k.start(['attach', 'box']);
        try {
          await logs.waitFor(/started/);
          // attach prints only what comes after it joined: wait until the server has it.
          await server.waitForLog((l) => l.msg === 'attach session started' && l.pod === 'box', { since });
          const marker = `line-${minor}-${randomBytes(4).toString('hex')}`;
          const wrote = await k.run(['exec', 'box', '--', 'sh', '-c', `echo ${marker} > in`]);
          assert.equal(wrote.code, 0, wrote.stderr);
          await logs.waitFor(new RegExp(marker));
          await attach.waitFor(new RegExp(marker));
        } finally {
          await logs.kill();
          await attach.kill();
        }
      });

      it('cp: a file into the pod and back', async function () {
        const src = path.join(server.home, `cp-${minor}.bin`);
        const data = randomBytes(300 * 1024);
        fs.writeFileSync(src, data);
        const put = await k.run(['cp', src, `box:copied-${minor}.bin`]);
        assert.equal(put.code, 0, put.stderr);
        const back = await k.run(['exec', 'box', '--', 'cat', `copied-${minor}.bin`]);
        assert.equal(sha(back.stdout), sha(data));
      });
    });
  }

  it('kubectl killed mid-exec: the command\'s whole process group is killed, the session closed', async function () {
    for (const minor of [27, 33]) {
      const k = new Kubectl(path.join(dir, `kubectl.1.${minor}`), server);
      const since = server.mark;
      const exec = k.start(['exec', 'box', '--', 'sh', '-c', 'echo ready; sleep 1000']);
      await exec.waitFor(/ready/);
      await exec.kill();
      const ended = await server.waitForLog((l) => l.msg === 'exec session ended' && l.clientGone === true, { since });
      assert.equal(typeof ended.pid, 'number');
      assert.deepEqual(liveGroupMembers(ended.pid as number), [], `1.${minor}: the exec process group ${String(ended.pid)} is gone`);
    }
    assert.equal(metric(await metricsText(server), 'apiserver_pod_stream_sessions_open{kind="exec"}'), 0);
  });

  it('kubectl killed mid-port-forward: the pod-side connection and the session close', async function () {
    for (const minor of [27, 33]) {
      const k = new Kubectl(path.join(dir, `kubectl.1.${minor}`), server);
      const local = await freePort();
      const since = server.mark;
      const pf = k.start(['port-forward', 'pod/box', `${local}:${echo.port}`]);
      await pf.waitFor(/Forwarding from 127\.0\.0\.1/);
      const accepted = echo.accepted();
      const client = net.connect({ host: '127.0.0.1', port: local });
      client.on('error', () => {});
      client.write(randomBytes(64 * 1024));
      const podSide = await accepted;
      const podSideClosed = new Promise<void>((resolve) => podSide.once('close', () => resolve()));
      await pf.kill();
      await podSideClosed;
      await server.waitForLog((l) => l.msg === 'portforward session ended', { since });
      client.destroy();
    }
    assert.equal(echo.open.size, 0);
    const text = await metricsText(server);
    assert.equal(metric(text, 'apiserver_pod_stream_sessions_open{kind="portforward"}'), 0);
  });

  it('exec -t with a terminal (script(1) gives kubectl one): TERM is set, resizes are read, the exit code comes back', async function () {
    for (const minor of [27, 33]) {
      const bin = path.join(dir, `kubectl.1.${minor}`);
      const since = server.mark;
      const home = path.join(server.home, `tty-${minor}`);
      fs.mkdirSync(home, { recursive: true });
      const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn('script', ['-qec', `${bin} --context admin exec -it box -- sh -c 'echo TERM=$TERM; exit 5'`, '/dev/null'], {
          env: { ...process.env, KUBECONFIG: server.kubeconfig, HOME: home, KUBECACHEDIR: path.join(home, 'cache') },
          stdio: ['pipe', 'pipe', 'pipe'],
        });
        let out = '';
        child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
        child.once('close', (code) => resolve({ code, out }));
      });
      assert.equal(r.code, 5, r.out);
      assert.match(r.out, /TERM=xterm/);
      const started = await server.waitForLog((l) => l.msg === 'exec session started' && l.tty === true, { since });
      assert.equal(started.pod, 'box');
      // kubectl sends the terminal's size when the session starts.
      const resize = await server.waitForLog((l) => String(l.msg).startsWith('terminal resize') && l.session === started.session, { since });
      assert.equal(typeof resize.width, 'number');
    }
  });

  it('bad upgrades get a Status before any 101, and garbage after a SPDY 101 only closes that connection', async function () {
    const spdy = (p: string) => `POST ${p} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n\r\n`;
    const notPod = await rawExchange(server, spdy('/api/v1/namespaces/default/configmaps/x/exec?command=true&stdout=true'));
    assert.match(notPod, /^HTTP\/1\.1 404 /);
    const noStreams = await rawExchange(server, spdy('/api/v1/namespaces/default/pods/box/exec?command=true'));
    assert.match(noStreams, /^HTTP\/1\.1 400 [^]*you must specify at least 1 of stdin, stdout, stderr/);
    const noProtocol = await rawExchange(server, spdy('/api/v1/namespaces/default/pods/box/exec?command=true&stdout=true').replace('v4.channel.k8s.io', 'v1.channel.k8s.io'));
    assert.match(noProtocol, /^HTTP\/1\.1 403 [^]*unable to negotiate protocol/);
    const missing = await rawExchange(server, spdy('/api/v1/namespaces/default/pods/nope/exec?command=true&stdout=true'));
    assert.match(missing, /^HTTP\/1\.1 404 [^]*pods \\"nope\\" not found/);
    const since = server.mark;
    const garbage = await rawExchange(server, spdy('/api/v1/namespaces/default/pods/box/exec?command=true&stdout=true'), Buffer.concat([Buffer.from([0x80, 0x07, 0, 1, 0, 0, 0, 0]), randomBytes(56)]));
    assert.match(garbage, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    await server.waitForLog((l) => l.msg === 'spdy protocol error: session closed', { since });
    assert.equal((await request(server, 'GET', '/healthz')).status, 200);
  });

  it('attach -i: what kubectl reads on stdin reaches the container\'s stdin, its answer comes back', async function () {
    const admin = new Kubectl(path.join(dir, 'kubectl'), server);
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'reader' }, spec: { containers: [{ name: 'main', image: 'none', command: ['sh', '-c', 'echo ready; while read l; do echo "got $l"; done'] }] } };
    assert.equal((await admin.run(['apply', '-f', '-'], JSON.stringify(pod))).code, 0);
    for (const minor of [27, 33]) {
      const since = server.mark;
      const attach = new Kubectl(path.join(dir, `kubectl.1.${minor}`), server).start(['attach', '-i', 'reader']);
      try {
        await server.waitForLog((l) => l.msg === 'attach session started' && l.pod === 'reader', { since });
        attach.child.stdin!.write(`hello-${minor}\n`);
        await attach.waitFor(new RegExp(`got hello-${minor}`));
      } finally {
        await attach.kill();
      }
    }
    assert.equal((await admin.run(['delete', 'pod', 'reader'])).code, 0);
  });

  it('exec needs create on pods/exec: a reader is refused with 403', async function () {
    // view lets alice read the pod (kubectl reads it before exec), not exec into it.
    await bindUser(server, 'alice', 'view', { verb: 'get', resource: 'pods', namespace: 'default' }, 'default');
    const k = new Kubectl(path.join(dir, 'kubectl'), server, 'alice');
    const r = await k.run(['exec', 'box', '--', 'true']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /forbidden: User "alice" cannot create resource "pods\/exec"/);
  });

  it('deleting the pod kills its processes and ends logs -f', async function () {
    const k = new Kubectl(path.join(dir, 'kubectl'), server);
    const created = await k.run(['apply', '-f', '-'], JSON.stringify(FIFO_POD('doomed')));
    assert.equal(created.code, 0, created.stderr);
    const logs = k.start(['logs', '-f', 'doomed']);
    await logs.waitFor(/started/);
    const gone = await k.run(['delete', 'pod', 'doomed']);
    assert.equal(gone.code, 0, gone.stderr);
    assert.equal(await logs.exited, 0, logs.output());
  });
});

describe('member mode pods without --enable-pod-exec', function () {
  this.timeout(60_000);
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let server: ApiServerProcess;

  before(async function () {
    baseline = await resourceBaseline();
    server = await startApiServer('pods-no-exec');
  });

  after(async function () {
    await server?.kill();
    await assertNoLeakedResources(baseline);
  });

  it('pods run (Running, empty logs), but exec is refused with a Status naming the flag, for SPDY and WebSocket clients', async function () {
    const dir = kubectlDir();
    const k = new Kubectl(path.join(dir, 'kubectl'), server);
    const created = await k.run(['apply', '-f', '-'], JSON.stringify(FIFO_POD('quiet')));
    assert.equal(created.code, 0, created.stderr);
    assert.equal((await k.run(['get', 'pod', 'quiet', '-o', 'jsonpath={.status.phase}'])).stdout.toString(), 'Running');
    const logs = await k.run(['logs', 'quiet']);
    assert.equal(logs.code, 0, logs.stderr);
    assert.equal(logs.stdout.length, 0);
    for (const bin of ['kubectl', 'kubectl.1.27']) {
      const r = await new Kubectl(path.join(dir, bin), server).run(['exec', 'quiet', '--', 'true']);
      assert.notEqual(r.code, 0, bin);
      assert.match(r.stderr, /disabled on this member API server \(start it with --enable-pod-exec\)/, `${bin}: ${r.stderr}`);
    }
    const pf = await k.run(['port-forward', 'pod/quiet', '0:1']);
    assert.notEqual(pf.code, 0);
    assert.match(pf.stderr, /--enable-pod-exec/);
  });
});

describe('member mode pods across a restart (SQLite file store)', function () {
  this.timeout(60_000);
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let server: ApiServerProcess | undefined;

  before(async function () {
    baseline = await resourceBaseline();
  });

  after(async function () {
    await server?.kill();
    await assertNoLeakedResources(baseline);
  });

  it('a restarted member starts its stored pods again: Running, new process, exec works', async function () {
    const dir = kubectlDir();
    const store = `sqlite://${path.join(fs.mkdtempSync(path.join(scratchDir('pods-restart'), 'db-')), 'member.db')}`;
    server = await startApiServer('pods-restart', ['--enable-pod-exec'], store);
    let k = new Kubectl(path.join(dir, 'kubectl'), server);
    assert.equal((await k.run(['apply', '-f', '-'], JSON.stringify(FIFO_POD('survivor')))).code, 0);
    const first = k.start(['logs', '-f', 'survivor']);
    await first.waitFor(/started/);
    await first.kill();
    await server.kill();
    server = await startApiServer('pods-restart', ['--enable-pod-exec'], store);
    k = new Kubectl(path.join(dir, 'kubectl'), server);
    assert.equal((await k.run(['get', 'pod', 'survivor', '-o', 'jsonpath={.status.phase}'])).stdout.toString(), 'Running');
    const again = k.start(['logs', '-f', 'survivor']);
    await again.waitFor(/started/);
    await again.kill();
    const logs = await k.run(['logs', 'survivor']);
    assert.equal(logs.stdout.toString(), 'started\n', 'the container ran again, with a fresh log');
    const r = await k.run(['exec', 'survivor', '--', 'sh', '-c', 'exit 4']);
    assert.equal(r.code, 4, r.stderr);
  });
});
