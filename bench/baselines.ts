// Baseline paths the tunnel is compared with: no relay at all, a plain one-to-one TLS
// relay through two processes, and an OpenSSH reverse tunnel.
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectTcp, LOOPBACK } from './measure.js';
import type { Endpoint, Path, PathFactory } from './scenario.js';
import { ensureDebianPackages, findFreePort, makeTempDir, ManagedChild, removeTempDir, runCommand, waitForPort } from './system.js';

const CHILD_READY_TIMEOUT_MS = 10_000;

export const directPath: PathFactory = {
  name: 'direct',
  async start() {
    return { name: 'direct', connect: (target) => connectTcp(target), close: async () => {} };
  },
};

/**
 * Starts the per-target helper (relay pair, ssh forward) on first use and reuses it; the
 * targets differ per connection (sink vs http) and each helper reaches exactly one target.
 * A helper that failed to start is not retried: every later connect() reports the failure.
 */
function perTarget(start: (target: Endpoint) => Promise<number>): (target: Endpoint) => Promise<number> {
  const started = new Map<string, Promise<number>>();
  return (target) => {
    const key = `${target.host}:${target.port}`;
    let port = started.get(key);
    if (!port) {
      port = start(target);
      started.set(key, port);
    }
    return port;
  };
}

/** Runs `setUp` with a fresh temp dir; on failure stops what was started and removes the dir. */
async function startWithCleanup(
  prefix: string,
  setUp: (workDir: string, children: ManagedChild[], close: () => Promise<void>) => Promise<Path>,
): Promise<Path> {
  const workDir = await makeTempDir(prefix);
  const children: ManagedChild[] = [];
  const close = async () => {
    // Reverse start order: clients before the servers they are connected to.
    for (const child of [...children].reverse()) await child.stop();
    await removeTempDir(workDir);
  };
  try {
    return await setUp(workDir, children, close);
  } catch (err) {
    await close();
    throw err;
  }
}

const TLS_RELAY_SCRIPT = fileURLToPath(new URL('./tls-relay.js', import.meta.url));

export const tlsRelayPath: PathFactory = {
  name: 'tls_relay',
  start: () =>
    startWithCleanup('bench-tls-relay-', async (workDir, children, close) => {
      const certFile = path.join(workDir, 'cert.pem');
      const keyFile = path.join(workDir, 'key.pem');
      await runCommand('openssl', [
        'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost',
        '-addext', 'subjectAltName=DNS:localhost', '-days', '1', '-keyout', keyFile, '-out', certFile,
      ]);
      const startRelay = async (args: string[]) => {
        // stdin stays piped: the relay exits when it closes, even if this process is killed.
        const relay = new ManagedChild(process.execPath, [TLS_RELAY_SCRIPT, ...args], { stdin: 'pipe' });
        children.push(relay);
        const ready = await relay.waitForOutput(/^\{"port":\d+\}$/m, CHILD_READY_TIMEOUT_MS, 'listening port');
        return (JSON.parse(ready[0]) as { port: number }).port;
      };
      const entryPortFor = perTarget(async (target) => {
        const exitPort = await startRelay(['exit', '--target-host', target.host, '--target-port', String(target.port), '--cert', certFile, '--key', keyFile]);
        return startRelay(['entry', '--forward-port', String(exitPort), '--ca', certFile]);
      });
      return {
        name: 'tls_relay',
        connect: async (target) => connectTcp({ host: LOOPBACK, port: await entryPortFor(target) }),
        close,
      };
    }),
};

const SSHD = '/usr/sbin/sshd'; // sshd refuses to re-exec itself unless started by absolute path

export const sshPath: PathFactory = {
  name: 'ssh',
  async start() {
    await ensureDebianPackages(['openssh-server']);
    return startWithCleanup('bench-ssh-', async (workDir, children, close) => {
      const file = (name: string) => path.join(workDir, name);
      await Promise.all(
        ['host_key', 'client_key'].map((name) => runCommand('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', file(name)])),
      );
      await copyFile(file('client_key.pub'), file('authorized_keys'));
      const sshdPort = await findFreePort();
      await writeFile(
        file('sshd_config'),
        [
          `ListenAddress ${LOOPBACK}:${sshdPort}`,
          `HostKey ${file('host_key')}`,
          `AuthorizedKeysFile ${file('authorized_keys')}`,
          `PidFile ${file('sshd.pid')}`,
          'UsePAM no',
          'StrictModes no',
          'PermitRootLogin prohibit-password',
          'PasswordAuthentication no',
          'KbdInteractiveAuthentication no',
          'AllowTcpForwarding yes',
          'GatewayPorts no',
          '',
        ].join('\n'),
      );
      await mkdir('/run/sshd', { recursive: true }); // privilege separation directory
      const sshd = new ManagedChild(SSHD, ['-D', '-e', '-f', file('sshd_config')]);
      children.push(sshd);
      await sshd.waitForOutput(/Server listening on \S+ port \d+/, CHILD_READY_TIMEOUT_MS, 'listening message');

      const forwardedPortFor = perTarget(async (target) => {
        const forwardedPort = await findFreePort();
        const ssh = new ManagedChild('ssh', [
          '-N',
          '-F', '/dev/null', // no user or system config: default ciphers and options
          '-o', 'BatchMode=yes',
          '-o', 'StrictHostKeyChecking=no',
          '-o', 'UserKnownHostsFile=/dev/null',
          '-o', 'ExitOnForwardFailure=yes',
          '-i', file('client_key'),
          '-p', String(sshdPort),
          '-R', `${LOOPBACK}:${forwardedPort}:${target.host}:${target.port}`,
          `${os.userInfo().username}@${LOOPBACK}`,
        ]);
        children.push(ssh);
        // ssh reports nothing when the remote forward is up, so poll the forwarded port.
        await waitForPort(forwardedPort, ssh);
        return forwardedPort;
      });
      return {
        name: 'ssh',
        connect: async (target) => connectTcp({ host: LOOPBACK, port: await forwardedPortFor(target) }),
        close,
      };
    });
  },
};
