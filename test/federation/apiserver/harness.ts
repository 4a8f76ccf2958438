// Test harness for the API server binary: PKI with a system:masters user, the child process, a
// kubeconfig for real kubectl, and a raw HTTPS client.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { issueClientCert, readKeyPair, writeKeyPair, type KeyPairPaths } from '../../../certs/pki.js';
import { LoggedProcess } from '../../support/processes.js';
import { DIST, scratchDir } from '../../support/paths.js';
import { testPki } from '../../support/pki.js';

export const APISERVER_BIN = path.join(DIST, 'federation', 'apiserver', 'main.js');

let masters: KeyPairPaths | undefined;

/** Client certificate of "admin" in group system:masters, issued by the test CA (once per run). */
export function mastersCert(): KeyPairPaths {
  if (masters) return masters;
  const pki = testPki();
  const ca = readKeyPair(path.dirname(pki.ca.cert), path.basename(pki.ca.cert, '.crt'));
  masters = writeKeyPair(scratchDir('apiserver-pki'), 'client-admin', issueClientCert(ca, { user: 'admin', groups: ['system:masters'] }));
  return masters;
}

export class ApiServerProcess extends LoggedProcess {
  port = 0;
  /** The plain-HTTP /metrics port (--metrics-listen), or null. */
  metricsPort: number | null = null;
  kubeconfig = '';
  home = '';
}

export async function startApiServer(name: string, extraArgs: string[] = [], store = 'sqlite::memory:'): Promise<ApiServerProcess> {
  const pki = testPki();
  const admin = mastersCert();
  const args = ['--listen', '127.0.0.1:0', '--store', store, '--ca', pki.ca.cert, '--cert', pki.server.cert, '--key', pki.server.key, '--member', ...extraArgs];
  const child = spawn(process.execPath, [APISERVER_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const server = new ApiServerProcess('apiserver', child);
  const ready = await server.waitForLog((l) => l.msg === 'apiserver ready');
  server.port = ready.port as number;
  server.metricsPort = (ready.metricsPort as number | null) ?? null;
  const dir = scratchDir(`apiserver-${name}`);
  server.home = dir;
  server.kubeconfig = path.join(dir, 'kubeconfig');
  const user = (n: string, p: KeyPairPaths) => `- name: ${n}\n  user:\n    client-certificate: ${p.cert}\n    client-key: ${p.key}\n`;
  const context = (n: string) => `- name: ${n}\n  context:\n    cluster: test\n    user: ${n}\n`;
  fs.writeFileSync(
    server.kubeconfig,
    `apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: https://127.0.0.1:${server.port}\n    certificate-authority: ${pki.ca.cert}\n` +
      `users:\n${user('admin', admin)}${user('alice', pki.users.alice!)}${user('bob', pki.users.bob!)}` +
      `contexts:\n${context('admin')}${context('alice')}${context('bob')}current-context: admin\n`,
  );
  return server;
}

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

function kubectlEnv(server: ApiServerProcess): NodeJS.ProcessEnv {
  return { ...process.env, KUBECONFIG: server.kubeconfig, HOME: server.home, KUBECACHEDIR: path.join(server.home, 'cache') };
}

export function kubectl(server: ApiServerProcess, args: string[], input?: string): Promise<KubectlResult> {
  return new Promise((resolve) => {
    const child = execFile('kubectl', args, { env: kubectlEnv(server), timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
    if (input !== undefined) child.stdin!.end(input);
    else child.stdin!.end();
  });
}

/** Starts a long-running kubectl (e.g. get -w); collects stdout. */
export function spawnKubectl(server: ApiServerProcess, args: string[]): { child: ChildProcess; output: () => string; waitFor: (re: RegExp, timeoutMs?: number) => Promise<void>; stop: () => Promise<void> } {
  const child = spawn('kubectl', args, { env: kubectlEnv(server), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const waiters = new Set<() => void>();
  const onData = (chunk: Buffer): void => {
    out += chunk.toString();
    for (const w of [...waiters]) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  return {
    child,
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
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json: () => any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export function request(
  server: ApiServerProcess,
  method: string,
  urlPath: string,
  options: { body?: string | Buffer; contentType?: string; accept?: string; as?: 'admin' | 'alice' | 'bob' | 'anonymous'; timeoutMs?: number; headers?: Record<string, string | string[]> } = {},
): Promise<HttpResult> {
  const pki = testPki();
  const who = options.as ?? 'admin';
  const pair = who === 'admin' ? mastersCert() : who === 'anonymous' ? undefined : pki.users[who]!;
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | string[] | number> = { ...options.headers };
    if (options.contentType) headers['Content-Type'] = options.contentType;
    if (options.accept) headers.Accept = options.accept;
    if (options.body !== undefined) headers['Content-Length'] = Buffer.byteLength(options.body);
    const req = https.request(
      {
        host: '127.0.0.1',
        port: server.port,
        method,
        path: urlPath,
        headers,
        agent: false,
        ca: fs.readFileSync(pki.ca.cert),
        ...(pair ? { cert: fs.readFileSync(pair.cert), key: fs.readFileSync(pair.key) } : {}),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body) }));
        res.on('error', reject);
      },
    );
    // A bound on the whole exchange: a server that hangs fails the request instead of the test's timeout.
    if (options.timeoutMs !== undefined) req.setTimeout(options.timeoutMs, () => req.destroy(new Error(`no answer within ${options.timeoutMs} ms`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Opens a raw watch and collects events until stop(). */
export function openWatch(server: ApiServerProcess, urlPath: string): Promise<{ events: Array<{ type: string; object: any }>; waitFor: (n: number, timeoutMs?: number) => Promise<void>; stop: () => void; status: number; ended: Promise<void> }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const admin = mastersCert();
  const pki = testPki();
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port: server.port, path: urlPath, agent: false, ca: fs.readFileSync(pki.ca.cert), cert: fs.readFileSync(admin.cert), key: fs.readFileSync(admin.key) },
      (res) => {
        const events: Array<{ type: string; object: any }> = []; // eslint-disable-line @typescript-eslint/no-explicit-any
        let buf = '';
        const waiters = new Set<() => void>();
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          buf += c;
          let i;
          while ((i = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, i);
            buf = buf.slice(i + 1);
            if (line.trim()) events.push(JSON.parse(line));
          }
          for (const w of [...waiters]) w();
        });
        res.on('error', () => undefined);
        const ended = new Promise<void>((done) => res.once('close', () => done()));
        resolve({
          events,
          ended,
          status: res.statusCode ?? 0,
          waitFor: (n, timeoutMs = 15_000) =>
            new Promise((ok, fail) => {
              const check = (): void => {
                if (events.length < n) return;
                waiters.delete(check);
                clearTimeout(timer);
                ok();
              };
              const timer = setTimeout(() => {
                waiters.delete(check);
                fail(new Error(`only ${events.length} of ${n} watch events: ${JSON.stringify(events.map((e) => e.type))}`));
              }, timeoutMs);
              waiters.add(check);
              check();
            }),
          stop: () => req.destroy(),
        });
      },
    );
    req.on('error', (err) => {
      if ((err as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(err);
    });
    req.end();
  });
}

/** A question for the server's RBAC: may `user` (in `groups`, system:authenticated added) do `verb` on this resource? */
export interface AccessQuestion {
  user: string;
  groups?: string[];
  verb: string;
  resource: string;
  group?: string;
  namespace?: string;
  name?: string;
}

/** Asks the server as admin with a SubjectAccessReview: answered from the same watch-fed RBAC cache as every request. */
export async function subjectCan(server: ApiServerProcess, q: AccessQuestion): Promise<boolean> {
  const spec = {
    user: q.user,
    groups: ['system:authenticated', ...(q.groups ?? [])],
    resourceAttributes: { verb: q.verb, resource: q.resource, group: q.group ?? '', ...(q.namespace ? { namespace: q.namespace } : {}), ...(q.name ? { name: q.name } : {}) },
  };
  const r = await request(server, 'POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', { body: JSON.stringify({ apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec }), contentType: 'application/json', timeoutMs: 10_000 });
  if (r.status !== 201) throw new Error(`SubjectAccessReview: ${r.status} ${r.body}`);
  return r.json().status.allowed === true;
}

/**
 * Waits (bounded polling) until the server's RBAC answers `q` with `allowed`: a binding written
 * through the API takes effect when its watch event reaches the cache, a moment after the write.
 */
export async function waitForAccess(server: ApiServerProcess, q: AccessQuestion, allowed = true, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await subjectCan(server, q)) !== allowed) {
    if (Date.now() > deadline) throw new Error(`RBAC never answered ${allowed} for ${JSON.stringify(q)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Binds a user to a ClusterRole (in a namespace, or cluster-wide) as admin, and waits until it is in force. */
export async function bindUser(server: ApiServerProcess, user: string, clusterRole: string, probe: Omit<AccessQuestion, 'user'>, namespace?: string): Promise<void> {
  const name = `${user}-${clusterRole}`;
  const args = namespace ? ['create', 'rolebinding', name, '-n', namespace] : ['create', 'clusterrolebinding', name];
  const r = await kubectl(server, [...args, `--clusterrole=${clusterRole}`, `--user=${user}`]);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  await waitForAccess(server, { user, ...probe });
}
