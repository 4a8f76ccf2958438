// Granting a test user the RBAC verb proxy on clusters (who may CONNECT to which cluster) through
// the hub's embedded federation API server, as root (system:masters), with real kubectl.
import { strict as assert } from 'node:assert';
import path from 'node:path';
import { writeKubeconfig } from '../../common/federation-processes.js';
import { runCommand } from './federation-harness.js';
import { scratchDir } from './paths.js';
import { testPki } from './pki.js';

/** A kubeconfig for root on the federation API server at `federationPort`; its path. */
export function adminKubeconfig(federationPort: number): string {
  const pki = testPki();
  const file = path.join(scratchDir('reach'), `kubeconfig-${federationPort}`);
  writeKubeconfig(file, [{ name: 'federation', server: `https://127.0.0.1:${federationPort}`, caFile: pki.ca.cert }], { ...pki.users.root!, name: 'root' }, 'federation');
  return file;
}

/** kubectl as root against the federation API server; fails the test on a non-zero exit. */
export async function adminKubectl(kubeconfig: string, args: string[], stdin?: string): Promise<string> {
  const r = await runCommand('kubectl', ['--kubeconfig', kubeconfig, '--request-timeout', '30s', ...args], stdin);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

/** The ClusterRole `proxy-<cluster>` and the ClusterRoleBinding `<user>-proxy-<cluster>`, as YAML. */
export function proxyGrant(user: string, cluster: string): string {
  return `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: proxy-${cluster}}
rules:
- apiGroups: [core.kubefed.io]
  resources: [clusters]
  resourceNames: [${cluster}]
  verbs: [proxy]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: ${user}-proxy-${cluster}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: proxy-${cluster}}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: ${user}}
`;
}

/**
 * Lets `user` proxy `cluster` and waits (bounded polling of a SubjectAccessReview) until the binding is in force.
 */
export async function grantProxy(kubeconfig: string, user: string, cluster: string): Promise<void> {
  await adminKubectl(kubeconfig, ['apply', '-f', '-'], proxyGrant(user, cluster));
  const deadline = Date.now() + 10_000;
  const canI = async (): Promise<string> => ((await mayProxy(kubeconfig, user, cluster)) ? 'yes' : 'no');
  while ((await canI()) !== 'yes') {
    if (Date.now() > deadline) throw new Error(`RBAC never let ${user} proxy ${cluster}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Whether the hub's RBAC lets `user` proxy `cluster`: a SubjectAccessReview naming the API group
 * exactly (kubectl auth can-i cannot: the hub serves no `clusters` resource, so kubectl would ask
 * about group ""), answered from the same RBAC cache as CONNECT and /clusters.
 */
export async function mayProxy(kubeconfig: string, user: string, cluster: string): Promise<boolean> {
  const review = JSON.stringify({
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SubjectAccessReview',
    spec: { user, resourceAttributes: { group: 'core.kubefed.io', resource: 'clusters', verb: 'proxy', name: cluster } },
  });
  return (await adminKubectl(kubeconfig, ['create', '-f', '-', '-o', 'jsonpath={.status.allowed}'], review)).trim() === 'true';
}
