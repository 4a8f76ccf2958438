#!/usr/bin/env node
// `npm start`: a local sandbox on one machine. A proxy-server, and simulated member clusters
// (each an API stand-in with its own cluster-agent dialing out to the server), all as separate
// processes on loopback, with their certificates. Prints how to reach each cluster through the
// proxy, checks that it works, and runs until Ctrl-C.
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
import { ensurePki } from '../../certs/bundle.js';

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const ROOT = path.resolve(DIST, '..');

const MEMBERS = [
  { name: 'east', tenant: 'retail' },
  { name: 'west', tenant: 'payments' },
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
    ], logDir);
    children.push(server);
    const ready = await server.waitFor((l) => l.msg === 'proxy-server ready');
    const members: Array<{ name: string; tenant: string; apiPort: number }> = [];
    for (const member of MEMBERS) {
      const stub = start(`member-${member.name}`, 'deploy/sandbox/member-stub.js', [member.name], logDir);
      children.push(stub);
      const { port } = await stub.waitFor((l) => l.msg === 'member ready');
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
    const curl = (m: (typeof members)[number]): string[] => [
      '-sS', '-p', '-x', `https://${m.name}@127.0.0.1:${ready.connectPort}`,
      '--proxy-cacert', pki.ca.cert, '--proxy-cert', admin.cert, '--proxy-key', admin.key,
      `http://127.0.0.1:${m.apiPort}/version`,
    ];
    const lines = [
      '',
      `sandbox up in ${dir}`,
      `  proxy-server: agents on 127.0.0.1:${ready.agentPort}, CONNECT (mTLS) on 127.0.0.1:${ready.connectPort}, CONNECT (unix) on ${uds}`,
      `  health/metrics: http://127.0.0.1:${ready.adminPort}/metrics  registry: http://127.0.0.1:${ready.adminPort}/debug/agents`,
      `  logs: ${logDir}`,
      '',
      'reach each member cluster through the proxy:',
      ...members.map((m) => `  # ${m.name} (tenant ${m.tenant})\n  curl ${curl(m).map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' ')}`),
      '',
    ];
    process.stdout.write(lines.join('\n') + '\n');

    // Self-check: each cluster answers through the tunnel, as itself.
    let healthy = true;
    for (const m of members) {
      try {
        const { stdout } = await promisify(execFile)('curl', [...curl(m), '--max-time', '10']);
        const version = JSON.parse(stdout) as { platform?: string };
        const ok = version.platform === `sandbox/${m.name}`;
        healthy &&= ok;
        process.stdout.write(`check ${m.name}: ${ok ? 'ok' : 'WRONG CLUSTER'} ${stdout.trim()}\n`);
      } catch (error) {
        healthy = false;
        process.stdout.write(`check ${m.name}: FAILED ${(error as Error).message}\n`);
      }
    }
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

main().then((code) => process.exit(code));
