// The sandbox's users of the hub's /clusters/<name>/ API proxy: kubeconfigs written by
// `fedctl kubeconfig` (one context per cluster the user may reach), and the self-check lines that
// use them — admin reaches every cluster; a retail user (group fedtunnel:tenant:retail, RBAC proxy
// on every cluster) gets contexts for east and west only, and north answers 403.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The retail user of the /clusters proxy: its tenant group limits it to retail's clusters. */
export const RETAIL_USER = 'rhea';
export const RETAIL_GROUPS = ['fedtunnel:tenant:retail'];

/** Hub RBAC: the retail tenant's group may proxy every cluster (the tenant rule narrows it). */
const RETAIL_PROXY = `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: proxy-all-clusters}
rules:
- {apiGroups: [core.kubefed.io], resources: [clusters], verbs: [proxy]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: retail-proxy}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: proxy-all-clusters}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: "fedtunnel:tenant:retail"}
`;

export interface KubeProxyCheck {
  ok: boolean;
  detail: string;
}

interface Options {
  dist: string;
  dir: string;
  /** The admin kubeconfig with the `federation` context. */
  kubeconfig: string;
  ca: string;
  connectPort: number;
  users: Record<string, { cert: string; key: string }>;
  members: Array<{ name: string; tenant: string }>;
}

async function kubectl(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile('kubectl', ['--request-timeout', '10s', ...args], (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout: String(stdout).trim(), stderr: String(stderr).trim() }),
    );
    child.stdin!.end(input ?? '');
  });
}

/** `fedctl kubeconfig` for a certificate user; resolves with the kubeconfig's path. */
async function writeUserKubeconfig(o: Options, user: string, groups: string[]): Promise<string> {
  const file = path.join(o.dir, `kubeconfig.clusters.${user}`);
  await run(process.execPath, [
    path.join(o.dist, 'federation', 'admin', 'main.js'), 'kubeconfig', '--kubeconfig', o.kubeconfig, '--context', 'federation',
    '--user', user, ...groups.flatMap((g) => ['--group', g]), '--hub', `https://127.0.0.1:${o.connectPort}`, '--ca', o.ca,
    '--client-certificate', o.users[user]!.cert, '--client-key', o.users[user]!.key, '-o', file,
  ]);
  return file;
}

/** Grants the retail group proxy, writes the kubeconfigs, and checks them against every member. */
export async function kubeProxyChecks(o: Options): Promise<{ kubeconfigs: Record<string, string>; checks: KubeProxyCheck[] }> {
  const granted = await kubectl(['--kubeconfig', o.kubeconfig, '--context', 'federation', 'apply', '-f', '-'], RETAIL_PROXY);
  if (granted.code !== 0) throw new Error(`retail proxy RBAC: ${granted.stderr}`);
  const admin = await writeUserKubeconfig(o, 'admin', ['system:masters']);
  const retail = await writeUserKubeconfig(o, RETAIL_USER, RETAIL_GROUPS);
  const checks: KubeProxyCheck[] = [];
  const contexts = async (file: string): Promise<string> => (await kubectl(['--kubeconfig', file, 'config', 'get-contexts', '-o', 'name'])).stdout.split('\n').sort().join(',');
  const retailMembers = o.members.filter((m) => m.tenant === 'retail').map((m) => m.name).sort().join(',');
  const allMembers = o.members.map((m) => m.name).sort().join(',');
  const adminContexts = await contexts(admin);
  checks.push({ ok: adminContexts === allMembers, detail: `fedctl kubeconfig for admin has contexts ${adminContexts} (expected ${allMembers})` });
  const retailContexts = await contexts(retail);
  checks.push({ ok: retailContexts === retailMembers, detail: `fedctl kubeconfig for ${RETAIL_USER} has contexts ${retailContexts} (expected ${retailMembers})` });
  for (const m of o.members) {
    // Through /clusters/<name>: the member answers as itself, for the admin the hub impersonates.
    const r = await kubectl(['--kubeconfig', admin, '--context', m.name, 'get', 'configmap', 'cluster-info', '-o', 'jsonpath={.data.cluster}']);
    checks.push({ ok: r.stdout === m.name, detail: `admin via https://127.0.0.1:${o.connectPort}/clusters/${m.name} reads cluster-info: ${r.stdout || r.stderr}` });
  }
  for (const m of o.members.filter((x) => x.tenant === 'retail')) {
    // The member sees the retail user (impersonated by the hub), not the hub's credential.
    const r = await kubectl(['--kubeconfig', retail, '--context', m.name, 'auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}']);
    checks.push({ ok: r.stdout === RETAIL_USER, detail: `${RETAIL_USER} via /clusters/${m.name}: the member sees ${r.stdout || r.stderr}` });
  }
  for (const m of o.members.filter((x) => x.tenant !== 'retail')) {
    const r = await kubectl(['--kubeconfig', retail, '--server', `https://127.0.0.1:${o.connectPort}/clusters/${m.name}`, 'get', 'configmap', 'cluster-info', '-o', 'name']);
    const forbidden = r.code !== 0 && /Forbidden|403/.test(r.stderr);
    checks.push({ ok: forbidden, detail: `${RETAIL_USER} via /clusters/${m.name} (tenant ${m.tenant}): ${forbidden ? '403 Forbidden' : `not refused: ${r.stdout || r.stderr}`}` });
  }
  return { kubeconfigs: { admin, [RETAIL_USER]: retail }, checks };
}
