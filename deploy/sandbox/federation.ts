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
  tenant: string;
  /** Its deployment unit (label fedtunnel.io/cell), if any. */
  cell?: string;
  apiPort: number;
}

const RETAIL = 'retail';
const EXAMPLES = ['demo.yaml', 'cells.yaml', 'payments.yaml'];

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
      '--label', `region=${m.region}`, '--label', `fedtunnel.io/tenant=${m.tenant}`,
      ...(m.cell ? ['--label', `fedtunnel.io/cell=${m.cell}`] : []),
    ]);
  }
  for (const m of options.members) await kubectl(['wait', '--for=condition=Ready', '--timeout=60s', '-n', 'kube-federation-system', `kubefedcluster/${m.name}`]);
  for (const file of EXAMPLES) await kubectl(['apply', '-f', path.join(options.root, 'deploy', 'sandbox', 'examples', file)]);
  const applied: Array<[namespace: string, object: string]> = [
    ['demo', 'federatednamespace/demo'], ['demo', 'federatedconfigmap/greeting'], ['demo', 'federateddeployment/web'], ['demo', 'federatedsecret/api-key'],
    ['shop', 'federatednamespace/shop'], ['shop', 'federateddeployment/checkout'],
    ['payments', 'federatednamespace/payments'], ['payments', 'federatedconfigmap/ledger'],
  ];
  for (const [namespace, object] of applied) await kubectl(['wait', '--for=condition=Propagation', '--timeout=60s', '-n', namespace, object]);
}

/** What the self-check reads back from each member (through the tunnel) after propagation. */
export function federationChecks(members: SandboxMember[]): FederationCheck[] {
  const retail = members.filter((m) => m.tenant === RETAIL);
  const others = members.filter((m) => m.tenant !== RETAIL);
  const cellReplicas: Record<string, string> = { 'cell-a': '2', 'cell-b': '4' };
  return [
    ...retailChecks(retail),
    // The cell form: read back in v1beta2 through the webhook; placed by cell, per-cell override.
    { what: 'federation: the cell form (v1beta2) through the topology webhook', context: 'federation', args: ['get', 'federateddeployments.v1beta2.types.kubefed.io', 'checkout', '-n', 'shop', '-o', 'jsonpath={.spec.topology.type}'], expected: 'cell' },
    ...retail.filter((m) => m.cell).map((m) => ({ what: `${m.name}: cell-placed FederatedDeployment (${m.cell})`, context: m.name, args: ['get', 'deployment', 'checkout', '-n', 'shop', '-o', 'jsonpath={.spec.replicas}'], expected: cellReplicas[m.cell!] ?? '2' })),
    // Tenants: payments' ledger only on payments' clusters; nothing of retail's there.
    ...others.flatMap((m) => [
      { what: `${m.name}: its tenant's FederatedConfigMap`, context: m.name, args: ['get', 'configmap', 'ledger', '-n', 'payments', '-o', 'jsonpath={.data.owner}'], expected: m.tenant },
      { what: `${m.name}: nothing of tenant retail`, context: m.name, args: ['get', 'configmaps', '-n', 'demo', '--ignore-not-found', '-o', 'name'], expected: '' },
    ]),
    ...retail.map((m) => ({ what: `${m.name}: nothing of tenant payments`, context: m.name, args: ['get', 'configmaps', '-n', 'payments', '--ignore-not-found', '-o', 'name'], expected: '' })),
  ];
}

function retailChecks(members: SandboxMember[]): FederationCheck[] {
  return members.flatMap((m) => [
    { what: `${m.name}: FederatedConfigMap with its override`, context: m.name, args: ['get', 'configmap', 'greeting', '-n', 'demo', '-o', 'jsonpath={.data.message}'], expected: `hello, ${m.name}` },
    { what: `${m.name}: FederatedDeployment placed by region`, context: m.name, args: ['get', 'deployment', 'web', '-n', 'demo', '-o', 'jsonpath={.metadata.labels.kubefed\\.io/managed}'], expected: 'true' },
    { what: `${m.name}: FederatedSecret`, context: m.name, args: ['get', 'secret', 'api-key', '-n', 'demo', '-o', 'jsonpath={.data.key}'], expected: Buffer.from(DEMO_SECRET).toString('base64') },
  ]);
}

export const FEDERATION_COMMANDS = (members: SandboxMember[]): string[] => [
  'federation (KubeFed API; members joined with fedctl, objects from deploy/sandbox/examples/*.yaml):',
  '  kubectl --context federation -n kube-federation-system get kubefedclusters --show-labels   # tenant and cell labels',
  '  kubectl --context federation -n demo get federatedconfigmaps,federateddeployments,federatedsecrets',
  "  kubectl --context federation -n demo get federatedconfigmap greeting -o jsonpath='{.status}'",
  ...members.filter((m) => m.tenant === RETAIL).map((m) => `  kubectl --context ${m.name} -n demo get configmap greeting -o yaml   # propagated, with ${m.name}'s override`),
  `  kubectl --context ${members[0]!.name} -n demo delete configmap greeting   # drift: the controller puts it back`,
  '  node dist/federation/admin/main.js enable <plural.group>   # federate another type (fedctl)',
  'cells (types.kubefed.io/v1beta2, converted by the topology webhook in east, reached through its agent):',
  '  kubectl --context federation -n shop get federateddeployments.v1beta2.types.kubefed.io checkout -o yaml',
  '  kubectl --context federation -n shop get federateddeployment checkout -o yaml   # the stored native form',
  'gray release, cell by cell (README "Gray release"):',
  `  kubectl --context federation -n shop patch federateddeployment checkout --type merge -p '{"spec":{"placementMask":{"cells":[{"name":"cell-a"}]}}}'`,
  `  kubectl --context federation -n shop patch federateddeployment checkout --type json -p '[{"op":"replace","path":"/spec/template/spec/template/spec/containers/0/image","value":"checkout:v2"}]'`,
  "  kubectl --context federation -n shop get federateddeployment checkout -o jsonpath='{range .status.clusters[*]}{.name} {.rollout}{\"\\n\"}{end}'",
  `  kubectl --context federation -n shop patch federateddeployment checkout --type json -p '[{"op":"remove","path":"/spec/placementMask"}]'   # the rest rolls forward`,
  'tenants: retail (east, west), payments (north); a namespace belongs to the tenant its label names:',
  '  kubectl --context north -n payments get configmap ledger   # payments objects reach payments clusters only',
  'Secrets and FederatedSecrets are encrypted at rest (key: federation.db.key next to the database; see README "Secrets at rest").',
];

export interface TenantCheck {
  ok: boolean;
  detail: string;
}

/** kubectl's combined output, whether it succeeded or not. */
async function answer(kubeconfig: string, args: string[], input?: string): Promise<{ ok: boolean; out: string }> {
  return new Promise((resolve) => {
    const child = execFile('kubectl', ['--kubeconfig', kubeconfig, '--context', 'federation', '--request-timeout', '10s', ...args], (error, stdout, stderr) =>
      resolve({ ok: !error, out: `${stdout}${stderr}`.trim() }),
    );
    child.stdin!.end(input ?? '');
  });
}

/**
 * What tenant isolation looks like to the payments user: its own namespace readable, retail's
 * refused by RBAC, and an explicit placement onto retail's east refused at admission (a server-side
 * dry run, so a regression could not leave an object behind).
 */
export async function tenantChecks(paymentsKubeconfig: string): Promise<TenantCheck[]> {
  const own = await answer(paymentsKubeconfig, ['get', 'federatedconfigmap', 'ledger', '-n', 'payments', '-o', 'name']);
  const retail = await answer(paymentsKubeconfig, ['get', 'federatedconfigmaps', '-n', 'demo']);
  const crossPlacement = JSON.stringify({ apiVersion: 'types.kubefed.io/v1beta1', kind: 'FederatedConfigMap', metadata: { name: 'sneaky', namespace: 'payments' }, spec: { template: { data: { a: 'b' } }, placement: { clusters: [{ name: 'east' }] } } });
  const placed = await answer(paymentsKubeconfig, ['create', '--dry-run=server', '-f', '-'], crossPlacement);
  return [
    { ok: own.ok && own.out === 'federatedconfigmap.types.kubefed.io/ledger', detail: `pat reads its own namespace payments (${own.out})` },
    { ok: !retail.ok && /forbidden/i.test(retail.out), detail: `pat may not read retail's namespace demo (${retail.out})` },
    { ok: !placed.ok && /tenant/i.test(placed.out), detail: `pat may not place onto retail's cluster east (${placed.out})` },
  ];
}
