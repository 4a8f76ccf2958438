// A user's kubeconfig for the hub's /clusters/<name>/ proxy (pure): which clusters the user may
// reach, and the YAML with one cluster + context per reachable cluster. fedctl (main.ts) does the
// I/O: it lists the KubeFedClusters, asks a SubjectAccessReview per cluster and writes the file.
import { stringify } from 'yaml';
import { TENANT_GROUP_PREFIX, labelTenant, tenantsOfGroups } from '../kubefed/tenancy.js';
import { MASTERS_GROUP } from '../apiserver/rbac.js';

/** How the user proves who they are to the hub: one of these per kubeconfig. */
export type UserCredential =
  | { kind: 'certificate'; cert: Buffer; key: Buffer }
  | { kind: 'token'; token: string }
  /** An exec stanza running kubelogin (`kubectl oidc-login get-token`), which logs in and caches the ID token. */
  | { kind: 'oidc'; issuerUrl: string; clientId: string; extraScopes: string[] };

/** The RBAC question "may this user reach cluster X": verb proxy on clusters.core.kubefed.io named X (cluster-scoped). */
export const REACH = { verb: 'proxy', group: 'core.kubefed.io', resource: 'clusters' } as const;

export interface ClusterCandidate {
  name: string;
  labels: Record<string, string>;
}

/**
 * The tenant rule (as the hub's proxy applies it): a user with at least one
 * `fedtunnel:tenant:<X>` group reaches only clusters whose fedtunnel.io/tenant label is one of
 * their tenants, whatever RBAC grants; system:masters is not bound. The reason when it excludes
 * the cluster, null when RBAC decides.
 */
export function tenantExclusion(groups: readonly string[], cluster: ClusterCandidate): string | null {
  if (groups.includes(MASTERS_GROUP)) return null;
  const tenants = tenantsOfGroups(groups);
  if (tenants.length === 0) return null;
  const tenant = labelTenant(cluster.labels);
  if (tenant !== undefined && tenants.includes(tenant)) return null;
  return `cluster ${cluster.name} ${tenant === undefined ? 'has no tenant' : `belongs to tenant ${tenant}`}; the user is bound to ${tenants.join(', ')} (${TENANT_GROUP_PREFIX}<tenant> groups)`;
}

export interface UserKubeconfigInput {
  user: string;
  /** https://host:port of the hub's /clusters proxy, no trailing slash. */
  hub: string;
  ca: Buffer;
  credential: UserCredential;
  /** The reachable clusters, in the order of the contexts; the first is the current context. */
  clusters: readonly string[];
}

/** The kubeconfig YAML: cluster and context named after each cluster, one user entry named after the user. */
export function buildUserKubeconfig(input: UserKubeconfigInput): string {
  if (input.clusters.length === 0) throw new Error('a kubeconfig needs at least one cluster');
  const ca = input.ca.toString('base64');
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    preferences: {},
    clusters: input.clusters.map((name) => ({ name, cluster: { server: `${input.hub}/clusters/${encodeURIComponent(name)}`, 'certificate-authority-data': ca } })),
    users: [{ name: input.user, user: userEntry(input.credential) }],
    contexts: input.clusters.map((name) => ({ name, context: { cluster: name, user: input.user } })),
    'current-context': input.clusters[0],
  };
  return stringify(config, { lineWidth: 0 });
}

function userEntry(c: UserCredential): Record<string, unknown> {
  switch (c.kind) {
    case 'certificate':
      return { 'client-certificate-data': c.cert.toString('base64'), 'client-key-data': c.key.toString('base64') };
    case 'token':
      return { token: c.token };
    case 'oidc':
      return {
        exec: {
          apiVersion: 'client.authentication.k8s.io/v1beta1',
          command: 'kubectl',
          args: ['oidc-login', 'get-token', `--oidc-issuer-url=${c.issuerUrl}`, `--oidc-client-id=${c.clientId}`, ...c.extraScopes.map((s) => `--oidc-extra-scope=${s}`)],
          interactiveMode: 'IfAvailable',
        },
      };
  }
}

/** The hub URL as the kubeconfig needs it: https, a host, no path, query, fragment or credentials; null if it is not one. */
export function normalizeHubUrl(text: string): string | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  if (url.protocol !== 'https:' || url.hostname === '' || url.username !== '' || url.password !== '') return null;
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') return null;
  return `https://${url.host}`;
}
