#!/usr/bin/env node
// `npm start`: a local sandbox on one machine. A proxy-server with the federation API server
// embedded, and simulated member clusters (each a member-mode API server with its own
// cluster-agent dialing out to the hub), all as separate processes on loopback, with their
// certificates and a kubeconfig. Prints how to reach everything, checks it with real kubectl,
// and runs until Ctrl-C.
//
//   node dist/deploy/sandbox/main.js [--dir .sandbox] [--check]
//     --check   start everything, verify each cluster through the proxy, stop, exit 0/1
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import YAML from 'yaml';
import { ensurePki } from '../../certs/bundle.js';
import { FEDERATION_COMMANDS, federateSandbox, federationChecks } from './federation.js';

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const ROOT = path.resolve(DIST, '..');

const MEMBERS = [
  { name: 'east', tenant: 'retail', region: 'east' },
  { name: 'west', tenant: 'payments', region: 'west' },
];

interface Child {
  name: string;
  process: ChildProcess;
  exited: Promise<unknown>;
  /** Resolves with the first JSON log line matching the predicate. */
  waitFor(predicate: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
}

function start(name: string, script: string, args: string[], logDir: string): Child {
  const child = spawn(process.execPath, [path.join(DIST, script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const log = fs.createWriteStream(path.join(logDir, `${name}.log`));
  child.stderr!.pipe(log);
  const waiters: Array<{ predicate: (line: Record<string, unknown>) => boolean; resolve: (line: Record<string, unknown>) => void }> = [];
  readline.createInterface({ input: child.stdout! }).on('line', (text) => {
    log.write(`${text}\n`);
    let line: Record<string, unknown>;
    try {
      line = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return;
    }
    for (const waiter of [...waiters]) {
      if (waiter.predicate(line)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    }
  });
  const exited = once(child, 'exit');
  return {
    name,
    process: child,
    exited,
    waitFor: (predicate) =>
      Promise.race([
        new Promise<Record<string, unknown>>((resolve) => waiters.push({ predicate, resolve })),
        exited.then(() => Promise.reject(new Error(`${name} exited early; see ${path.join(logDir, `${name}.log`)}`))),
      ]),
  };
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { dir: { type: 'string', default: path.join(ROOT, '.sandbox') }, check: { type: 'boolean', default: false } } });
  const dir = path.resolve(values.dir!);
  const logDir = path.join(dir, 'logs');
  fs.mkdirSync(logDir, { recursive: true });
  const pki = ensurePki(path.join(dir, 'pki'), { clusters: MEMBERS, users: [{ user: 'admin', groups: ['system:masters'] }] });
  const uds = path.join(dir, 'connect.sock');
  const children: Child[] = [];
  const stopAll = async (): Promise<void> => {
    for (const child of [...children].reverse()) {
      if (child.process.exitCode === null) child.process.kill('SIGTERM');
      await child.exited;
    }
  };

  try {
    const server = start('proxy-server', 'proxy-server/main.js', [
      '--ca', pki.ca.cert, '--cert', pki.server.cert, '--key', pki.server.key,
      '--agent-listen', '127.0.0.1:0', '--connect-listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0',
      '--connect-uds', uds, '--instance', 'sandbox-hub', '--drain-timeout', '2000',
      '--federation-listen', '127.0.0.1:0', '--federation-store', `sqlite://${path.join(dir, 'federation.db')}`,
    ], logDir);
    children.push(server);
    const ready = await server.waitFor((l) => l.msg === 'proxy-server ready');
    const members: Array<{ name: string; tenant: string; region: string; apiPort: number }> = [];
    for (const member of MEMBERS) {
      // Each member cluster's API server is the federation API server in member mode, with its own
      // SQLite file, reachable only through that cluster's agent.
      const apiserver = start(`member-${member.name}`, 'federation/apiserver/main.js', [
        '--member', '--listen', '127.0.0.1:0', '--store', `sqlite://${path.join(dir, `member-${member.name}.db`)}`,
        '--ca', pki.ca.cert, '--cert', pki.server.cert, '--key', pki.server.key,
      ], logDir);
      children.push(apiserver);
      const { port } = await apiserver.waitFor((l) => l.msg === 'apiserver ready');
      const registered = server.waitFor((l) => l.msg === 'agent registered' && l.cluster === member.name);
      children.push(
        start(`agent-${member.name}`, 'cluster-agent/main.js', [
          '--server', `127.0.0.1:${ready.agentPort}`, '--server-name', 'localhost',
          '--ca', pki.ca.cert, '--cert', pki.agents[member.name]!.cert, '--key', pki.agents[member.name]!.key,
          '--apiserver', `127.0.0.1:${port}`, '--health-listen', '127.0.0.1:0',
          '--instance', `${member.name}-agent`, '--drain-timeout', '2000',
        ], logDir),
      );
      await registered;
      members.push({ ...member, apiPort: port as number });
    }

    const admin = pki.users.admin!;
    const kubeconfig = path.join(dir, 'kubeconfig');
    const cluster = (name: string, port: number, proxied: boolean): object => ({
      name,
      cluster: {
        server: `https://127.0.0.1:${port}`,
        'certificate-authority': pki.ca.cert,
        // kubectl's proxy-url with the cluster as user name: the CONNECT frontend routes on it.
        ...(proxied ? { 'proxy-url': `https://${name}@127.0.0.1:${ready.connectPort}` } : {}),
      },
    });
    const contexts = [
      { name: 'federation', cluster: cluster('federation', ready.federationPort as number, false) },
      ...members.map((m) => ({ name: m.name, cluster: cluster(m.name, m.apiPort, true) })),
    ];
    writeKubeconfig(kubeconfig, contexts, admin, 'federation');
    // Cluster-side bootstrap, as each member's own operator would do it (directly, not through the
    // hub): a ConfigMap naming the cluster, so the check below can tell which cluster answered.
    const local = path.join(dir, 'kubeconfig.member-local');
    writeKubeconfig(local, members.map((m) => ({ name: m.name, cluster: cluster(m.name, m.apiPort, false) })), admin, members[0]!.name);
    for (const m of members) {
      await kubectl(local, m.name, ['create', 'configmap', 'cluster-info', `--from-literal=cluster=${m.name}`, '--dry-run=client', '-o', 'json'])
        .then((json) => kubectlStdin(local, m.name, ['apply', '-f', '-'], json));
    }
    fs.rmSync(local);
    await federateSandbox({ root: ROOT, dist: DIST, kubeconfig, ca: pki.ca.cert, credential: admin, members });

    const lines = [
      '',
      `sandbox up in ${dir}`,
      `  proxy-server: agents on 127.0.0.1:${ready.agentPort}, CONNECT (mTLS) on 127.0.0.1:${ready.connectPort}, CONNECT (unix) on ${uds}`,
      `  federation API server: https://127.0.0.1:${ready.federationPort}`,
      `  health/metrics: http://127.0.0.1:${ready.adminPort}/metrics  registry: http://127.0.0.1:${ready.adminPort}/debug/agents`,
      `  logs: ${logDir}`,
      '',
      `kubectl, with contexts federation, ${members.map((m) => m.name).join(', ')} (member clusters are reached through their agents):`,
      `  export KUBECONFIG=${kubeconfig}`,
      '  kubectl --context federation api-resources',
      ...members.map((m) => `  kubectl --context ${m.name} get configmaps     # ${m.name}, tenant ${m.tenant}`),
      '',
      ...FEDERATION_COMMANDS(members),
      '',
      'or raw CONNECT with curl:',
      ...members.map(
        (m) =>
          `  curl -sS -p -x https://${m.name}@127.0.0.1:${ready.connectPort} --proxy-cacert ${pki.ca.cert} --proxy-cert ${admin.cert} --proxy-key ${admin.key} \\
` +
          `       --cacert ${pki.ca.cert} --cert ${admin.cert} --key ${admin.key} https://127.0.0.1:${m.apiPort}/version`,
      ),
      '',
    ];
    process.stdout.write(lines.join('\n') + '\n');

    // Self-check with real kubectl: the federation answers, and each member answers through the
    // tunnel as itself.
    let healthy = true;
    const check = async (name: string, args: string[], expected: string): Promise<void> => {
      try {
        const out = (await kubectl(kubeconfig, name, args)).trim();
        const ok = out === expected;
        healthy &&= ok;
        process.stdout.write(`check ${name}: ${ok ? 'ok' : `WRONG (expected ${expected})`} ${out}\n`);
      } catch (error) {
        healthy = false;
        process.stdout.write(`check ${name}: FAILED ${(error as Error).message}\n`);
      }
    };
    await check('federation', ['get', 'namespace', 'default', '-o', 'name'], 'namespace/default');
    for (const m of members) await check(m.name, ['get', 'configmap', 'cluster-info', '-o', 'jsonpath={.data.cluster}'], m.name);
    for (const c of federationChecks(members)) await check(c.context, c.args, c.expected);
    if (values.check) return healthy ? 0 : 1;

    process.stdout.write('\nrunning; Ctrl-C stops the sandbox\n');
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
      for (const child of children) void child.exited.then(() => resolve());
    });
    return 0;
  } catch (error) {
    process.stderr.write(`sandbox failed: ${(error as Error).message}\n`);
    return 1;
  } finally {
    await stopAll();
  }
}

interface KubeconfigContext {
  name: string;
  cluster: object;
}

function writeKubeconfig(file: string, contexts: KubeconfigContext[], user: { cert: string; key: string }, current: string): void {
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: contexts.map((c) => c.cluster),
    users: [{ name: 'admin', user: { 'client-certificate': user.cert, 'client-key': user.key } }],
    contexts: contexts.map((c) => ({ name: c.name, context: { cluster: c.name, user: 'admin' } })),
    'current-context': current,
  };
  fs.writeFileSync(file, YAML.stringify(config), { mode: 0o600 });
}

async function kubectl(kubeconfig: string, context: string, args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)('kubectl', ['--kubeconfig', kubeconfig, '--context', context, '--request-timeout', '10s', ...args]);
  return stdout;
}

function kubectlStdin(kubeconfig: string, context: string, args: string[], input: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile('kubectl', ['--kubeconfig', kubeconfig, '--context', context, ...args], (error) => (error ? reject(error) : resolve()));
    child.stdin!.end(input);
  });
}

main().then((code) => process.exit(code));
