// The sandbox's federation step, as an operator would do it: fedctl joins each member (its API
// server address as seen from inside the member: the hub reaches it through that cluster's agent),
// then the demo KubeFed objects are applied to the federation, and the check reads them back from
// every member with kubectl through the tunnel.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The demo FederatedSecret's value: in every member, and nowhere in the federation's database files. */
export const DEMO_SECRET = 'sandbox-demo-secret-value';

/** Whether the secret's bytes (plain or base64) appear in the SQLite database or its WAL. */
export function secretInDatabase(dbFile: string): boolean {
  const needles = [DEMO_SECRET, Buffer.from(DEMO_SECRET).toString('base64')].map((n) => Buffer.from(n));
  return [dbFile, `${dbFile}-wal`].some((f) => fs.existsSync(f) && needles.some((n) => fs.readFileSync(f).includes(n)));
}

export interface SandboxMember {
  name: string;
  region: string;
  apiPort: number;
}

export interface FederationCheck {
  what: string;
  context: string;
  args: string[];
  expected: string;
}

/** Joins the members and applies the demo objects; resolves when every object reports Propagation. */
export async function federateSandbox(options: {
  root: string;
  dist: string;
  kubeconfig: string;
  ca: string;
  credential: { cert: string; key: string };
  members: SandboxMember[];
}): Promise<void> {
  const kubectl = (args: string[]): Promise<unknown> => run('kubectl', ['--kubeconfig', options.kubeconfig, '--context', 'federation', ...args]);
  for (const m of options.members) {
    await run(process.execPath, [
      path.join(options.dist, 'federation', 'admin', 'main.js'), 'join', m.name,
      '--kubeconfig', options.kubeconfig, '--context', 'federation',
      '--api-endpoint', `https://127.0.0.1:${m.apiPort}`, '--ca-file', options.ca,
      '--client-cert', options.credential.cert, '--client-key', options.credential.key,
      '--label', `region=${m.region}`,
    ]);
  }
  for (const m of options.members) await kubectl(['wait', '--for=condition=Ready', '--timeout=60s', '-n', 'kube-federation-system', `kubefedcluster/${m.name}`]);
  await kubectl(['apply', '-f', path.join(options.root, 'deploy', 'sandbox', 'examples', 'demo.yaml')]);
  for (const o of ['federatednamespace/demo', 'federatedconfigmap/greeting', 'federateddeployment/web', 'federatedsecret/api-key']) {
    await kubectl(['wait', '--for=condition=Propagation', '--timeout=60s', '-n', 'demo', o]);
  }
}

/** What the self-check reads back from each member (through the tunnel) after propagation. */
export function federationChecks(members: SandboxMember[]): FederationCheck[] {
  return members.flatMap((m) => [
    { what: `${m.name}: FederatedConfigMap with its override`, context: m.name, args: ['get', 'configmap', 'greeting', '-n', 'demo', '-o', 'jsonpath={.data.message}'], expected: `hello, ${m.name}` },
    { what: `${m.name}: FederatedDeployment placed by region`, context: m.name, args: ['get', 'deployment', 'web', '-n', 'demo', '-o', 'jsonpath={.metadata.labels.kubefed\\.io/managed}'], expected: 'true' },
    { what: `${m.name}: FederatedSecret`, context: m.name, args: ['get', 'secret', 'api-key', '-n', 'demo', '-o', 'jsonpath={.data.key}'], expected: Buffer.from(DEMO_SECRET).toString('base64') },
  ]);
}

export const FEDERATION_COMMANDS = (members: SandboxMember[]): string[] => [
  'federation (KubeFed API; members joined with fedctl, objects from deploy/sandbox/examples/demo.yaml):',
  '  kubectl --context federation -n kube-federation-system get kubefedclusters',
  '  kubectl --context federation -n demo get federatedconfigmaps,federateddeployments,federatedsecrets',
  "  kubectl --context federation -n demo get federatedconfigmap greeting -o jsonpath='{.status}'",
  ...members.map((m) => `  kubectl --context ${m.name} -n demo get configmap greeting -o yaml   # propagated, with ${m.name}'s override`),
  `  kubectl --context ${members[0]!.name} -n demo delete configmap greeting   # drift: the controller puts it back`,
  '  node dist/federation/admin/main.js enable <plural.group>   # federate another type (fedctl)',
  'Secrets and FederatedSecrets are encrypted at rest (key: federation.db.key next to the database; see README "Secrets at rest").',
];
