// Hub replicas for the HA tests: proxy-server processes sharing one MySQL database of their own
// (created per test, dropped afterwards), each with its federation API server and a distinct
// --instance, so they campaign for the one controller lease.
import { spawn } from 'node:child_process';
import { SERVER_BIN } from './paths.js';
import { testPki } from './pki.js';
import { ServerProcess } from './processes.js';

export { scratchDatabase } from './mysql.js';

export class ReplicaProcess extends ServerProcess {
  federationPort = 0;

  constructor(
    readonly instance: string,
    child: ReturnType<typeof spawn>,
  ) {
    super(instance, child);
  }

  /** The line this replica logs when it wins the controller lease (after `since`). */
  acquiredLease(since = 0, timeoutMs?: number): Promise<unknown> {
    return this.waitForLog((l) => l.msg === 'controller lease acquired: this replica runs the federation controller', { since, timeoutMs });
  }

  get leads(): boolean {
    let leads = false;
    for (const l of this.lines) {
      if (l.msg === 'controller lease acquired: this replica runs the federation controller') leads = true;
      else if (l.msg === 'controller lease released' || (typeof l.msg === 'string' && l.msg.startsWith('controller lease lost'))) leads = false;
    }
    return leads;
  }
}

export interface ReplicaOptions {
  instance: string;
  storeUrl: string;
  /** Fixed ports (a restarted replica keeps its addresses behind the load balancer); default: any free port. */
  ports?: { agentPort: number; connectPort: number; adminPort: number; federationPort: number };
  extraArgs?: string[];
}

export async function startReplica(options: ReplicaOptions): Promise<ReplicaProcess> {
  const pki = testPki();
  const p = options.ports;
  const args = [
    '--ca', pki.ca.cert, '--cert', pki.server.cert, '--key', pki.server.key,
    '--agent-listen', `127.0.0.1:${p?.agentPort ?? 0}`,
    '--connect-listen', `127.0.0.1:${p?.connectPort ?? 0}`,
    '--admin-listen', `127.0.0.1:${p?.adminPort ?? 0}`,
    '--federation-listen', `127.0.0.1:${p?.federationPort ?? 0}`,
    '--federation-store', options.storeUrl,
    '--instance', options.instance,
    ...(options.extraArgs ?? []),
  ];
  const child = spawn(process.execPath, [SERVER_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const replica = new ReplicaProcess(options.instance, child);
  // Generous: a replica starting under load on a busy 2-core machine takes 15-30 s to install its API.
  const ready = await replica.waitForLog((l) => l.msg === 'proxy-server ready', { timeoutMs: 90_000 });
  replica.agentPort = ready.agentPort as number;
  replica.connectPort = ready.connectPort as number;
  replica.adminPort = ready.adminPort as number;
  replica.federationPort = ready.federationPort as number;
  return replica;
}
