// A whole federation from real processes, for integration tests: the hub (proxy-server with the
// federation API server and controller), and per member cluster a member-mode API server with its
// own SQLite file plus its cluster-agent. With isolation 'netns' (the default) each member runs in
// its own network namespace, its API server on 127.0.0.1 there: the hub and the test can reach it
// only through the tunnel. kubectl runs against a kubeconfig with a `federation` context and one
// context per member (proxy-url through the hub's CONNECT frontend).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { ensurePki, type PkiPaths } from '../../certs/bundle.js';
import {
  connectProxyUrl,
  startHub as startHubProcess,
  startMemberAgent,
  startMemberApiServer,
  writeKubeconfig,
  type HubPorts,
  type HubProcess,
} from '../../common/federation-processes.js';
import type { LoggedProcess } from '../../common/spawn.js';
import { MYSQL_URL } from './mysql.js';
import { createMemberNetns, type MemberNetns } from './netns.js';
import { FEDCTL_BIN, scratchDir } from './paths.js';

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface FederationMember {
  name: string;
  /** 127.0.0.1:<port>, inside the member's network namespace in netns mode. */
  apiAddress: string;
  /** https://127.0.0.1:<port> (what a KubeFedCluster's apiEndpoint names). */
  apiEndpoint: string;
  /** Base64 of the CA PEM (KubeFedCluster caBundle). */
  caBundle: string;
  /** The client certificate the federation uses for this member (the admin user's). */
  credential: { certFile: string; keyFile: string };
  apiserver: LoggedProcess;
  /** Null while stopped (stopAgent). */
  agent: LoggedProcess | null;
  /** Namespace name, or null on loopback. */
  netns: string | null;
  /** The namespace with its veth pair (for partition()), or null on loopback. */
  network: MemberNetns | null;
}

export interface Federation {
  pki: PkiPaths;
  /** Contexts: `federation` (the hub's federation API server) and one per member, named after it. */
  kubeconfig: string;
  /** Scratch directory of this federation (stores, kubeconfig). */
  dir: string;
  /** The hub process; `hub.ports` stays the same across stopHub/startHub. */
  readonly hub: HubProcess;
  members: Record<string, FederationMember>;
  /** Runs kubectl with --kubeconfig, --context and --request-timeout 30s; never rejects on a non-zero exit. */
  kubectl(context: string, args: string[], stdin?: string): Promise<KubectlResult>;
  /** kubectl through the member's context (CONNECT through the hub, then its agent). */
  kubectlMember(name: string, args: string[], stdin?: string): Promise<KubectlResult>;
  /** Stops the member's agent; resolves once the hub logged 'agent unregistered' for it and the process exited. */
  stopAgent(name: string, signal?: NodeJS.Signals): Promise<void>;
  /** Starts the member's agent again; resolves once the hub logged 'agent registered'. */
  startAgent(name: string): Promise<void>;
  /** Stops the member's API server with the signal and starts it again on the same port and store; resolves when it is ready. */
  restartMemberApiServer(name: string, signal?: NodeJS.Signals): Promise<void>;
  /** Stops the hub (SIGTERM) and waits for its exit. */
  stopHub(): Promise<void>;
  /** Starts the hub on the same ports with the same store; resolves when it is ready and every running agent re-registered. */
  startHub(): Promise<void>;
  /** Stops everything, deletes the namespaces, drops the MySQL database, removes the scratch directory. */
  stop(): Promise<void>;
}

export interface FederationOptions {
  members: string[];
  isolation?: 'netns' | 'loopback';
  /** The hub's federation store: a SQLite file (default), or a database of its own on the test MariaDB. */
  store?: 'sqlite' | 'mysql';
  extraServerArgs?: string[];
  /** Extra flags of every member's agent (e.g. a short keepalive for partition tests). */
  extraAgentArgs?: string[];
  /** Extra flags of every member's API server (e.g. --enable-pod-exec). */
  extraMemberArgs?: string[];
  /** The tenant of each member's agent certificate (default tenant-<name>). */
  tenants?: Record<string, string>;
  /**
   * The hub's --federation-untenanted-placement. Default 'all': the suites that predate tenants
   * place objects of namespaces without a tenant on members of different tenants.
   */
  untenantedPlacement?: 'untenanted' | 'all';
  /** Client certificates besides admin's (system:masters), e.g. a user who is not an admin. */
  users?: Array<{ user: string; groups: string[] }>;
}

let runs = 0;

/** Runs a command to completion; never rejects for a non-zero exit. */
export function runCommand(command: string, args: string[], stdin?: string): Promise<KubectlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
    if (stdin !== undefined) child.stdin!.end(stdin);
  });
}

/** mysql://…/<database> of MYSQL_URL with another database name. */
function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function mysqlQuery(sql: string): Promise<void> {
  const connection = await mysql.createConnection({ uri: MYSQL_URL, connectTimeout: 5000 });
  try {
    await connection.query(sql);
  } finally {
    await connection.end();
  }
}

/** Joins a member with fedctl, as an operator would. */
export async function join(fed: Federation, name: string, labels: string[] = []): Promise<void> {
  const m = fed.members[name]!;
  const r = await runCommand(process.execPath, [
    FEDCTL_BIN, 'join', name,
    '--kubeconfig', fed.kubeconfig, '--context', 'federation',
    '--api-endpoint', m.apiEndpoint, '--ca-file', fed.pki.ca.cert,
    '--client-cert', m.credential.certFile, '--client-key', m.credential.keyFile,
    ...labels.flatMap((l) => ['--label', l]),
  ]);
  if (r.code !== 0) throw new Error(`fedctl join ${name} failed: ${r.stderr}`);
}

/** A federation whose members are joined with fedctl (labels per member) and Ready. */
export async function joinedFederation(members: Record<string, string[]>, options: Omit<FederationOptions, 'members'>): Promise<Federation> {
  const fed = await startFederation({ members: Object.keys(members), isolation: 'netns', ...options });
  try {
    for (const [name, labels] of Object.entries(members)) await join(fed, name, labels);
    for (const name of Object.keys(members)) {
      const r = await fed.kubectl('federation', ['wait', '--for=condition=Ready', '--timeout=60s', '-n', 'kube-federation-system', `kubefedcluster/${name}`]);
      if (r.code !== 0) throw new Error(`kubefedcluster/${name} not Ready: ${r.stderr}`);
    }
  } catch (error) {
    await fed.stop();
    throw error;
  }
  return fed;
}

export async function startFederation(options: FederationOptions): Promise<Federation> {
  const isolation = options.isolation ?? 'netns';
  const names = options.members;
  if (new Set(names).size !== names.length || names.some((n) => !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(n) || n === 'federation')) {
    throw new Error(`member names must be distinct DNS labels other than "federation": ${names.join(', ')}`);
  }
  const pki = ensurePki(scratchDir('federation-pki'), {
    clusters: names.map((name) => ({ name, tenant: options.tenants?.[name] ?? `tenant-${name}` })),
    users: [{ user: 'admin', groups: ['system:masters'] }, ...(options.users ?? [])],
  });
  const admin = pki.users.admin!;
  const caBundle = fs.readFileSync(pki.ca.cert).toString('base64');
  const dir = scratchDir(`federation-${process.pid}-${++runs}`);
  const kubeconfig = path.join(dir, 'kubeconfig');

  // Everything acquired so far, released by stop() (also when start-up fails half-way).
  const namespaces = new Map<string, MemberNetns>();
  let mysqlDatabase: string | null = null;
  let hub: HubProcess | null = null;
  let ports: Partial<HubPorts> = {};
  const members: Record<string, FederationMember> = {};
  const agentServer = new Map<string, string>();
  let stopped = false;

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    const errors: unknown[] = [];
    await Promise.all(Object.values(members).map(async (m) => {
      m.apiserver.signal('SIGCONT');
      await m.agent?.kill('SIGTERM');
      await m.apiserver.kill('SIGTERM');
    }));
    await hub?.kill('SIGTERM');
    for (const netns of namespaces.values()) await netns.destroy().catch((e: unknown) => errors.push(e));
    if (mysqlDatabase) await mysqlQuery(`DROP DATABASE IF EXISTS \`${mysqlDatabase}\``).catch((e: unknown) => errors.push(e));
    fs.rmSync(dir, { recursive: true, force: true });
    if (errors.length > 0) throw new AggregateError(errors, 'federation stop: cleanup failed');
  };

  try {
    if (isolation === 'netns') {
      for (const name of names) namespaces.set(name, await createMemberNetns());
    }
    let store = `sqlite://${path.join(dir, 'federation.db')}`;
    if (options.store === 'mysql') {
      // The hub takes no table prefix: a database of its own per run isolates it just as well.
      mysqlDatabase = `fedh_${process.pid}_${runs}_${Date.now().toString(36)}`;
      await mysqlQuery(`CREATE DATABASE \`${mysqlDatabase}\``);
      store = withDatabase(MYSQL_URL, mysqlDatabase);
    }
    const hubOptions = {
      pki,
      store,
      // Agents in namespaces come from their veth peers: listen on every address in netns mode.
      agentHost: isolation === 'netns' ? '0.0.0.0' : '127.0.0.1',
      instance: 'federation-hub',
      untenantedPlacement: options.untenantedPlacement ?? 'all',
      extraArgs: options.extraServerArgs ?? [],
    };
    hub = await startHubProcess(hubOptions);
    ports = hub.ports;

    for (const name of names) {
      const netns = namespaces.get(name) ?? null;
      const api = await startMemberApiServer({ name, pki, store: `sqlite://${path.join(dir, `member-${name}.db`)}`, netns: netns?.name ?? null, extraArgs: options.extraMemberArgs ?? [] });
      const apiAddress = `127.0.0.1:${api.port}`;
      const server = `${netns ? netns.rootAddress : '127.0.0.1'}:${hub.ports.agentPort}`;
      agentServer.set(name, server);
      members[name] = {
        name,
        apiAddress,
        apiEndpoint: `https://${apiAddress}`,
        caBundle,
        credential: { certFile: admin.cert, keyFile: admin.key },
        apiserver: api.process,
        agent: null,
        netns: netns?.name ?? null,
        network: netns,
      };
      members[name]!.agent = await startMemberAgent(hub, { cluster: name, pki, server, apiserver: apiAddress, netns: netns?.name ?? null, extraArgs: options.extraAgentArgs ?? [] });
    }

    writeKubeconfig(
      kubeconfig,
      [
        { name: 'federation', server: `https://127.0.0.1:${hub.ports.federationPort}`, caFile: pki.ca.cert },
        ...names.map((name) => ({ name, server: members[name]!.apiEndpoint, caFile: pki.ca.cert, proxyUrl: connectProxyUrl(name, hub!.ports.connectPort) })),
      ],
      admin,
      'federation',
    );

    const member = (name: string): FederationMember => {
      const m = members[name];
      if (!m) throw new Error(`no member ${name}`);
      return m;
    };
    const kubectl = (context: string, args: string[], stdin?: string): Promise<KubectlResult> =>
      runCommand('kubectl', ['--kubeconfig', kubeconfig, '--context', context, '--request-timeout', '30s', ...args], stdin);

    const fed: Federation = {
      pki,
      kubeconfig,
      dir,
      get hub() {
        return hub!;
      },
      members,
      kubectl,
      kubectlMember: (name, args, stdin) => kubectl(member(name).name, args, stdin),
      async stopAgent(name, signal = 'SIGTERM') {
        const m = member(name);
        if (!m.agent) throw new Error(`agent of ${name} is not running`);
        const h = hub!;
        const unregistered = h.running ? h.agentUnregistered(name, h.mark) : Promise.resolve();
        await m.agent.kill(signal);
        m.agent = null;
        await unregistered;
      },
      async startAgent(name) {
        const m = member(name);
        if (m.agent) throw new Error(`agent of ${name} is already running`);
        m.agent = await startMemberAgent(hub!, { cluster: name, pki, server: agentServer.get(name)!, apiserver: m.apiAddress, netns: m.netns, extraArgs: options.extraAgentArgs ?? [] });
      },
      async restartMemberApiServer(name, signal = 'SIGTERM') {
        const m = member(name);
        await m.apiserver.kill(signal);
        const api = await startMemberApiServer({ name, pki, store: `sqlite://${path.join(dir, `member-${name}.db`)}`, netns: m.netns, listen: m.apiAddress, extraArgs: options.extraMemberArgs ?? [] });
        m.apiserver = api.process;
      },
      async stopHub() {
        await hub!.kill('SIGTERM');
      },
      async startHub() {
        if (hub!.running) throw new Error('the hub is running');
        const next = await startHubProcess({ ...hubOptions, ports: { agentPort: ports.agentPort!, connectPort: ports.connectPort!, adminPort: ports.adminPort!, federationPort: ports.federationPort! } });
        hub = next;
        // Agents retry with a short backoff (at most 500 ms): each running one comes back by itself.
        await Promise.all(Object.values(members).filter((m) => m.agent).map((m) => next.agentRegistered(m.name, 0)));
      },
      stop,
    };
    return fed;
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
}
