// The benchmark's federation: a hub (proxy-server with the federation API server and controller)
// and M member clusters m00, m01, … on loopback (no network namespaces: start-up speed matters
// here), each a member-mode API server with an in-memory store plus its cluster-agent dialing the
// hub. The controller reaches members only through the tunnel; the benchmark itself may watch a
// member directly at its apiEndpoint (only to time arrival).
import type { ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { ensurePki, type PkiPaths } from '../certs/bundle.js';
import { startHub, startMemberAgent, startMemberApiServer, type HubProcess } from '../common/federation-processes.js';
import { killAllChildrenSync, type LoggedProcess } from '../common/spawn.js';
import { makeTempDir, removeTempDir } from './system.js';

export interface BenchFederation {
  pki: PkiPaths;
  /** Client certificate of the admin user (group system:masters): for the hub and for members. */
  admin: { cert: string; key: string };
  hub: { process: ChildProcess & { pid: number } };
  ports: { federationPort: number; connectPort: number; agentPort: number; adminPort: number };
  members: Array<{ name: string; apiEndpoint: string }>;
  stop(): Promise<void>;
}

/** m00, m01, … */
export function memberName(i: number): string {
  return `m${String(i).padStart(2, '0')}`;
}

/** The PKI is reused across runs (ensurePki keeps valid pairs): issuing a certificate per member each run is slow. */
const PKI_DIR = path.join(os.tmpdir(), 'fedtunnel-bench-federation-pki');

export async function startFederationMembers(options: { members: number; extraServerArgs?: string[] }): Promise<BenchFederation> {
  const names = Array.from({ length: options.members }, (_, i) => memberName(i));
  const pki = ensurePki(PKI_DIR, {
    clusters: names.map((name) => ({ name, tenant: 'bench' })),
    users: [{ user: 'admin', groups: ['system:masters'] }],
  });
  const admin = pki.users.admin!;
  const dir = await makeTempDir('fedtunnel-bench-federation-');
  const processes: LoggedProcess[] = [];
  let hub: HubProcess | null = null;
  // A crash of the benchmark must not leave the hub or members running.
  const onExit = (): void => killAllChildrenSync();
  process.once('exit', onExit);
  const stop = async (): Promise<void> => {
    // Agents first (they would only reconnect), then member API servers, then the hub.
    await Promise.all(processes.filter((p) => p.name.startsWith('agent-')).map((p) => p.kill('SIGTERM')));
    await Promise.all(processes.map((p) => p.kill('SIGTERM')));
    await hub?.kill('SIGTERM');
    process.off('exit', onExit);
    await removeTempDir(dir);
  };
  try {
    hub = await startHub({
      pki,
      store: `sqlite://${path.join(dir, 'federation.db')}`,
      instance: 'bench-hub',
      // The benchmark's namespaces carry no tenant; the members are all of tenant bench.
      untenantedPlacement: 'all',
      extraArgs: options.extraServerArgs ?? [],
    });
    const h = hub;
    const members = await Promise.all(names.map(async (name) => {
      const api = await startMemberApiServer({ name, pki, store: 'sqlite::memory:', timeoutMs: 60_000 });
      processes.push(api.process);
      const apiAddress = `127.0.0.1:${api.port}`;
      const agent = await startMemberAgent(h, { cluster: name, pki, server: `127.0.0.1:${h.ports.agentPort}`, apiserver: apiAddress, timeoutMs: 60_000 });
      processes.push(agent);
      return { name, apiEndpoint: `https://${apiAddress}` };
    }));
    const { federationPort, connectPort, agentPort, adminPort } = h.ports;
    return {
      pki,
      admin: { cert: admin.cert, key: admin.key },
      hub: { process: h.child as ChildProcess & { pid: number } },
      ports: { federationPort, connectPort, agentPort, adminPort },
      members,
      stop,
    };
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
}
