#!/usr/bin/env node
// `npm start`: a local sandbox on one machine. Two proxy-server replicas (HA, sharing one SQLite
// federation store) with the federation API server embedded, and simulated member clusters (each
// a member-mode API server with its own cluster-agent dialing out to the hub: given replica 1's
// address, it links to both), all as separate processes on loopback, with their certificates and
// a kubeconfig. Prints how to reach everything, checks it with real kubectl,
// and runs until Ctrl-C.
//
//   node dist/deploy/sandbox/main.js [--dir .sandbox] [--check]
//     --check   start everything, verify each cluster through the proxy, stop, exit 0/1
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { ensurePki } from '../../certs/bundle.js';
import { REVOKED_USER, hardeningChecks, writeDemoRevocationList } from './hardening.js';
import { FEDERATION_COMMANDS, federateSandbox, federationChecks, secretInDatabase, tenantChecks } from './federation.js';
import { WEBHOOK_CLUSTER, startTopologyWebhook } from './topology.js';
import { RETAIL_GROUPS, RETAIL_USER, kubeProxyChecks } from './kube-proxy.js';
import { REPLICA_ARGS, REPLICA_IDS, leaseChecks, linkChecks, linkedOnReplica, replicaDialChecks, replicaSummary, stopReplicaChecks, type Replica, type ReplicaCheck } from './replicas.js';
import {
  connectProxyUrl,
  startHub,
  startMemberAgent,
  startMemberApiServer,
  writeKubeconfig,
  type HubOptions,
  type KubeconfigCluster,
} from '../../common/federation-processes.js';
import type { LoggedProcess } from '../../common/spawn.js';
import { getJson } from '../../common/http-get.js';

/** The sandbox's non-admin user: RBAC lets its group read namespace demo only (examples/demo.yaml). */
const VIEWER_USER = 'viewer';
const VIEWER_GROUP = 'demo-viewers';
/** A payments developer: edit in namespace payments (examples/payments.yaml), nothing of retail's. */
const PAYMENTS_USER = 'pat';
const PAYMENTS_GROUP = 'payments-devs';
const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const ROOT = path.resolve(DIST, '..');

// Two tenants: retail runs east and west, one deployment unit ("cell") each; payments runs north.
/** Carrier of each member's agent (default tls). */
const CARRIERS: Record<string, string> = { north: 'http2' };

const MEMBERS = [
  { name: 'east', tenant: 'retail', region: 'east', cell: 'cell-a' },
  { name: 'west', tenant: 'retail', region: 'west', cell: 'cell-b' },
  { name: 'north', tenant: 'payments', region: 'north' },
];

/** Start-up of a process may take long on a slow machine; a process that exits fails at once. */
const START_TIMEOUT_MS = 120_000;

/** A fresh log file per process and run. */
function logFile(logDir: string, name: string): string {
  const file = path.join(logDir, `${name}.log`);
  fs.rmSync(file, { force: true });
  return file;
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { dir: { type: 'string', default: path.join(ROOT, '.sandbox') }, check: { type: 'boolean', default: false } } });
  const dir = path.resolve(values.dir!);
  const logDir = path.join(dir, 'logs');
  fs.mkdirSync(logDir, { recursive: true });
  const pki = ensurePki(path.join(dir, 'pki'), { clusters: MEMBERS, users: [{ user: 'admin', groups: ['system:masters'] }, { user: REVOKED_USER, groups: [] }, { user: VIEWER_USER, groups: [VIEWER_GROUP] }, { user: PAYMENTS_USER, groups: [PAYMENTS_GROUP] }, { user: RETAIL_USER, groups: RETAIL_GROUPS }] });
  const revokedList = path.join(dir, 'revoked.txt');
  writeDemoRevocationList(pki, revokedList);
  const uds = path.join(dir, 'connect.sock');
  const children: LoggedProcess[] = [];
  // Replica 2 starts while the members do; it is stopped with the rest even if start-up fails first.
  let replica2Starting: Promise<unknown> = Promise.resolve();
  const stopAll = async (): Promise<void> => {
    await replica2Starting;
    for (const child of [...children].reverse()) await child.kill('SIGTERM');
  };

  try {
    // The cell form's conversion webhook, "inside" east: the hub reaches it only through east's agent.
    const webhook = await startTopologyWebhook({ dist: DIST, pkiDir: path.join(dir, 'pki'), caCert: pki.ca.cert, logFile: logFile(logDir, 'topology-webhook'), timeoutMs: START_TIMEOUT_MS });
    children.push(webhook.process);
    // HA replicas (README "HA replicas") on one SQLite file. Replica 1 first: it creates the
    // store's schema and its encryption key next to it, which replica 2 then reads.
    const store = path.join(dir, 'federation.db');
    const hubOptions = (replica: 1 | 2, log: string): HubOptions => ({
      pki,
      store: `sqlite://${store}`,
      ...(replica === 1 ? { connectUds: uds } : {}),
      instance: REPLICA_IDS[replica - 1],
      drainTimeoutMs: 2000,
      extraArgs: ['--revoked', revokedList, ...webhook.hubArgs, ...REPLICA_ARGS],
      logFile: log,
      timeoutMs: START_TIMEOUT_MS,
    });
    const server = await startHub(hubOptions(1, logFile(logDir, 'proxy-server-1')));
    children.push(server);
    const ready = server.ports;
    const replica2Log = logFile(logDir, 'proxy-server-2');
    const replica2Started = startHub(hubOptions(2, replica2Log)).then((hub) => {
      children.push(hub);
      return hub;
    });
    replica2Starting = replica2Started.catch(() => undefined);
    const members: Array<{ name: string; tenant: string; region: string; cell?: string; apiPort: number }> = [];
    const agents = new Map<string, LoggedProcess>();
    for (const member of MEMBERS) {
      // Each member cluster's API server is the federation API server in member mode, with its own
      // SQLite file, reachable only through that cluster's agent.
      const apiserver = await startMemberApiServer({
        name: member.name,
        pki,
        store: `sqlite://${path.join(dir, `member-${member.name}.db`)}`,
        logFile: logFile(logDir, `member-${member.name}`),
        timeoutMs: START_TIMEOUT_MS,
        // kubectl exec/attach/port-forward work against the sandbox's members (README "Pods in member mode").
        extraArgs: ['--enable-pod-exec'],
      });
      children.push(apiserver.process);
      const port = apiserver.port;
      const agent = await startMemberAgent(server, {
        cluster: member.name,
        pki,
        server: `127.0.0.1:${ready.agentPort}`,
        apiserver: `127.0.0.1:${port}`,
        drainTimeoutMs: 2000,
        backoff: null,
        extraArgs: [
          ...(member.name === WEBHOOK_CLUSTER ? ['--allow', webhook.agentAllow] : []),
          // One member links over the HTTP/2 carrier (README "Carriers"); every check below reaches it through it.
          '--carrier', CARRIERS[member.name] ?? 'tls',
        ],
        logFile: logFile(logDir, `agent-${member.name}`),
        timeoutMs: START_TIMEOUT_MS,
      });
      children.push(agent);
      agents.set(member.name, agent);
      members.push({ ...member, apiPort: port });
    }
    // Each agent was given replica 1's address; replica 1 tells it the live set, and it links to replica 2 too.
    const server2 = await replica2Started;
    await linkedOnReplica(server2, members.map((m) => m.name), 0, START_TIMEOUT_MS);
    const replicas: Replica[] = [{ id: REPLICA_IDS[0], hub: server }, { id: REPLICA_IDS[1], hub: server2 }];

    const admin = pki.users.admin!;
    const kubeconfig = path.join(dir, 'kubeconfig');
    const cluster = (name: string, port: number, proxied: boolean): KubeconfigCluster => ({
      name,
      server: `https://127.0.0.1:${port}`,
      caFile: pki.ca.cert,
      // kubectl's proxy-url with the cluster as user name: the CONNECT frontend routes on it.
      ...(proxied ? { proxyUrl: connectProxyUrl(name, ready.connectPort) } : {}),
    });
    const contexts = [
      cluster('federation', ready.federationPort, false),
      ...members.map((m) => cluster(m.name, m.apiPort, true)),
    ];
    writeKubeconfig(kubeconfig, contexts, admin, 'federation');
    // A user without system:masters: RBAC lets it read "demo" only (the RoleBinding in demo.yaml).
    const viewerKubeconfig = path.join(dir, 'kubeconfig.viewer');
    writeKubeconfig(viewerKubeconfig, [contexts[0]!], { ...pki.users[VIEWER_USER]!, name: VIEWER_USER }, 'federation');
    const paymentsKubeconfig = path.join(dir, 'kubeconfig.payments');
    writeKubeconfig(paymentsKubeconfig, [contexts[0]!], { ...pki.users[PAYMENTS_USER]!, name: PAYMENTS_USER }, 'federation');
    // Cluster-side bootstrap, as each member's own operator would do it (directly, not through the
    // hub): a ConfigMap naming the cluster, so the check below can tell which cluster answered.
    const local = path.join(dir, 'kubeconfig.member-local');
    writeKubeconfig(local, members.map((m) => cluster(m.name, m.apiPort, false)), admin, members[0]!.name);
    for (const m of members) {
      await kubectl(local, m.name, ['create', 'configmap', 'cluster-info', `--from-literal=cluster=${m.name}`, '--dry-run=client', '-o', 'json'])
        .then((json) => kubectlStdin(local, m.name, ['apply', '-f', '-'], json));
    }
    fs.rmSync(local);
    await federateSandbox({ root: ROOT, dist: DIST, kubeconfig, ca: pki.ca.cert, credential: admin, members });

    const lines = [
      '',
      `sandbox up in ${dir}`,
      ...replicaSummary({ pki, kubeconfig, replicas: replicas.map((r) => ({ id: r.id, ports: r.hub.ports })), store, example: { cluster: members[0]!.name, apiPort: members[0]!.apiPort } }),
      `  federation API server (kubectl context federation): https://127.0.0.1:${ready.federationPort}, on ${REPLICA_IDS[0]}`,
      `  logs: ${logDir}`,
      '',
      `kubectl, with contexts federation, ${members.map((m) => m.name).join(', ')} (member clusters are reached through their agents):`,
      `  export KUBECONFIG=${kubeconfig}`,
      '  kubectl --context federation api-resources',
      ...members.map((m) => `  kubectl --context ${m.name} get configmaps     # ${m.name}, tenant ${m.tenant}`),
      '',
      ...FEDERATION_COMMANDS(members),
      `RBAC: user ${VIEWER_USER} (group ${VIEWER_GROUP}) is bound to view in namespace demo only:`,
      `  kubectl --kubeconfig ${viewerKubeconfig} -n demo get federatedconfigmaps          # allowed`,
      `  kubectl --kubeconfig ${viewerKubeconfig} -n kube-federation-system get secrets    # Forbidden`,
      `  kubectl --kubeconfig ${viewerKubeconfig} auth can-i --list -n demo`,
      `tenant payments: user ${PAYMENTS_USER} (group ${PAYMENTS_GROUP}) edits namespace payments and sees nothing of retail's:`,
      `  kubectl --kubeconfig ${paymentsKubeconfig} -n payments get federatedconfigmaps          # allowed`,
      `  kubectl --kubeconfig ${paymentsKubeconfig} -n demo get federatedconfigmaps              # Forbidden (retail's)`,
      `  curl -sS -p -x https://north@127.0.0.1:${ready.connectPort} --proxy-cacert ${pki.ca.cert} --proxy-cert ${pki.users[PAYMENTS_USER]!.cert} --proxy-key ${pki.users[PAYMENTS_USER]!.key} --cacert ${pki.ca.cert} --cert ${pki.users[PAYMENTS_USER]!.cert} --key ${pki.users[PAYMENTS_USER]!.key} https://127.0.0.1:${members.find((m) => m.name === 'north')!.apiPort}/version   # CONNECT allowed: ${PAYMENTS_USER} may proxy north only (403 FORBIDDEN for east, west)`,
      `  kubectl --kubeconfig ${paymentsKubeconfig} -n payments create -f - <<< '{"apiVersion":"types.kubefed.io/v1beta1","kind":"FederatedConfigMap","metadata":{"name":"x"},"spec":{"template":{},"placement":{"clusters":[{"name":"east"}]}}}'   # refused: east is retail's`,
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
    const check = async (name: string, args: string[], expected: string, what?: string): Promise<void> => {
      try {
        const out = (await kubectl(kubeconfig, name, args)).trim();
        const ok = out === expected;
        healthy &&= ok;
        process.stdout.write(`check ${name}: ${ok ? 'ok' : `WRONG (expected ${expected || '(none)'})`} ${out || '(none)'}${what ? ` — ${what}` : ''}\n`);
      } catch (error) {
        healthy = false;
        process.stdout.write(`check ${name}: FAILED ${(error as Error).message}\n`);
      }
    };
    await check('federation', ['get', 'namespace', 'default', '-o', 'name'], 'namespace/default');
    for (const m of members) await check(m.name, ['get', 'configmap', 'cluster-info', '-o', 'jsonpath={.data.cluster}'], m.name);
    for (const c of federationChecks(members)) await check(c.context, c.args, c.expected, c.what);
    // RBAC: the viewer reads demo, and is refused the member credentials' namespace (auth can-i exits 1 for "no").
    const answer = (args: string[]): Promise<string> => kubectl(viewerKubeconfig, 'federation', args).then((out) => out.trim(), (error: { stdout?: string; message: string }) => String(error.stdout ?? error.message).trim());
    const read = await answer(['get', 'federatedconfigmap', 'greeting', '-n', 'demo', '-o', 'name']);
    const refused = await answer(['auth', 'can-i', 'get', 'secrets', '-n', 'kube-federation-system']);
    const rbacOk = read === 'federatedconfigmap.types.kubefed.io/greeting' && refused === 'no';
    healthy &&= rbacOk;
    process.stdout.write(`check RBAC: ${rbacOk ? 'ok' : 'WRONG'} ${VIEWER_USER} reads demo (${read}), may not read kube-federation-system secrets (can-i: ${refused})\n`);
    for (const c of await tenantChecks(paymentsKubeconfig)) {
      healthy &&= c.ok;
      process.stdout.write(`check tenants: ${c.ok ? 'ok' : 'WRONG'} ${c.detail}\n`);
    }
    const links = ((await getJson(ready.adminPort, '/debug/agents')) as { agents: Array<{ cluster: string; carrier: string }> }).agents;
    const carriersOk = members.every((m) => links.some((l) => l.cluster === m.name && l.carrier === (CARRIERS[m.name] ?? 'tls')));
    healthy &&= carriersOk;
    process.stdout.write(`check carriers: ${carriersOk ? 'ok' : 'WRONG'} ${links.map((l) => `${l.cluster} over ${l.carrier}`).join(', ')}\n`);
    const leaked = secretInDatabase(path.join(dir, 'federation.db'));
    healthy &&= !leaked;
    process.stdout.write(`check federation store: ${leaked ? 'WRONG: the demo secret is readable in federation.db' : 'ok the demo secret is encrypted at rest'}\n`);
    for (const c of await hardeningChecks(pki, ready, members[0]!.name, Object.fromEntries(members.map((m) => [m.name, `https://127.0.0.1:${m.apiPort}/version`])))) {
      healthy &&= c.ok;
      process.stdout.write(`check ${c.name}: ${c.ok ? 'ok' : 'WRONG'} ${c.detail}\n`);
    }
    // kubectl through the hub's /clusters/<name>/ proxy, with kubeconfigs written by fedctl kubeconfig.
    try {
      const proxied = await kubeProxyChecks({ dist: DIST, dir, kubeconfig, ca: pki.ca.cert, connectPort: ready.connectPort, users: pki.users, members });
      for (const c of proxied.checks) {
        healthy &&= c.ok;
        process.stdout.write(`check /clusters: ${c.ok ? 'ok' : 'WRONG'} ${c.detail}\n`);
      }
      process.stdout.write(`kubectl through https://127.0.0.1:${ready.connectPort}/clusters/<name> (fedctl kubeconfig): ${Object.entries(proxied.kubeconfigs).map(([u, f]) => `${u}: --kubeconfig ${f}`).join('; ')}\n`);
    } catch (error) {
      healthy = false;
      process.stdout.write(`check /clusters: FAILED ${(error as Error).message}\n`);
    }
    // HA replicas: both linked by every agent, dials on replica 2 served by its own links, one
    // controller lease holder named by both; then replica 2 stops and comes back on its ports.
    const report = (checks: ReplicaCheck[]): void => {
      for (const c of checks) {
        healthy &&= c.ok;
        process.stdout.write(`check ${c.name}: ${c.ok ? 'ok' : 'WRONG'} ${c.detail}\n`);
      }
    };
    try {
      report(await linkChecks(replicas, agents));
      report(await replicaDialChecks(pki, replicas[1]!, members));
      report(await leaseChecks(pki, replicas));
      report(await stopReplicaChecks(replicas[1]!, replicas[0]!, agents));
      children.splice(children.indexOf(server2), 1);
      const restarted = await startHub({ ...hubOptions(2, replica2Log), ports: server2.ports });
      children.push(restarted);
      replicas[1] = { id: REPLICA_IDS[1], hub: restarted };
      await linkedOnReplica(restarted, members.map((m) => m.name), 0, START_TIMEOUT_MS);
      report(await linkChecks(replicas, agents).then((checks) => checks.map((c) => ({ ...c, name: 'replica restart' }))));
    } catch (error) {
      healthy = false;
      process.stdout.write(`check replicas: FAILED ${(error as Error).message}\n`);
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
