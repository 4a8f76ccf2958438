// Reaching a cluster: how a client names the cluster and the address inside it, and who may reach
// which cluster. One home for these rules, so the CONNECT frontend and the federation's dialer
// (conversion and topology webhooks) cannot drift apart.
//
// Naming the cluster without modifying the client, in order of precedence:
//   1. the proxy URL's user name: `https://<cluster>@proxy:8090` → Proxy-Authorization: Basic;
//   2. a host suffix: <host>.<cluster>.tunnel:<port>;
//   3. on the CONNECT Unix socket only, --uds-default-cluster (egress selectors cannot add anything).
import { isDnsLabel } from '../certs/names.js';
import type { UserIdentity } from '../certs/identity.js';
import { parseHostPort, formatHostPort, type HostPort } from '../common/address.js';
import { DialError } from '../wire/errors.js';
import { effectiveGroups, MASTERS_GROUP, type Authorizer, type Decision } from '../federation/apiserver/rbac.js';
import { TENANT_GROUP_PREFIX, tenantsOfGroups } from '../federation/kubefed/tenancy.js';

export const CLUSTER_HOST_SUFFIX = '.tunnel';

export interface ClusterTarget {
  cluster: string;
  address: string;
}

/**
 * Works out the cluster and destination of a CONNECT request. Pure, so every naming rule is unit
 * tested without sockets. Throws DialError('BAD_TARGET') with a message meant for the client.
 */
export function resolveConnectTarget(authority: string, proxyAuthorization: string | undefined, defaultCluster: string | null): ClusterTarget {
  const target = parseHostPort(authority);
  if (!target) throw new DialError('BAD_TARGET', `CONNECT target must be host:port, got ${JSON.stringify(authority)}`);
  const fromAuth = clusterFromProxyAuthorization(proxyAuthorization);
  if (fromAuth) return { cluster: fromAuth, address: formatHostPort(target) };
  const inTunnel = tunnelTargetOf(target);
  if (inTunnel) return inTunnel;
  if (defaultCluster) return { cluster: defaultCluster, address: formatHostPort(target) };
  throw new DialError(
    'BAD_TARGET',
    `no cluster named: use a proxy URL with the cluster as user name (https://<cluster>@proxy:port) or CONNECT <host>.<cluster>${CLUSTER_HOST_SUFFIX}:<port>`,
  );
}

/**
 * The cluster and inner address of "<host>.<cluster>.tunnel:<port>", or null for an address that
 * does not end in .tunnel (or is not host:port). Throws DialError('BAD_TARGET') for a .tunnel
 * host without both a host and a cluster label.
 */
export function tunnelTarget(hostPort: string): ClusterTarget | null {
  const target = parseHostPort(hostPort);
  return target ? tunnelTargetOf(target) : null;
}

/**
 * The name a TLS peer reached at `host` must carry: for "<host>.<cluster>.tunnel" the inner host
 * (the tunnel suffix is our addressing, not the peer's name), otherwise `host` itself.
 */
export function serverNameOf(host: string): string {
  const lower = host.toLowerCase();
  if (!lower.endsWith(CLUSTER_HOST_SUFFIX)) return host;
  const rest = host.slice(0, -CLUSTER_HOST_SUFFIX.length);
  const dot = rest.lastIndexOf('.');
  return dot > 0 && isDnsLabel(rest.slice(dot + 1).toLowerCase()) ? rest.slice(0, dot) : host;
}

function tunnelTargetOf(target: HostPort): ClusterTarget | null {
  const host = target.host.toLowerCase();
  if (!host.endsWith(CLUSTER_HOST_SUFFIX)) return null;
  const rest = host.slice(0, -CLUSTER_HOST_SUFFIX.length);
  const dot = rest.lastIndexOf('.');
  const cluster = rest.slice(dot + 1);
  const innerHost = rest.slice(0, Math.max(dot, 0));
  if (dot > 0 && isDnsLabel(cluster)) return { cluster, address: formatHostPort({ host: innerHost, port: target.port }) };
  throw new DialError('BAD_TARGET', `host ${JSON.stringify(target.host)} must look like <host>.<cluster>${CLUSTER_HOST_SUFFIX}`);
}

function clusterFromProxyAuthorization(header: string | undefined): string | null {
  if (!header) return null;
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!match) throw new DialError('BAD_TARGET', 'Proxy-Authorization must be Basic with the cluster name as user name');
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const user = decoded.split(':', 1)[0]!;
  if (!isDnsLabel(user)) throw new DialError('BAD_TARGET', 'the proxy user name must be a cluster name (a DNS label)');
  return user;
}

/** The RBAC request "may reach cluster X" is: verb proxy on clusters.core.kubefed.io named X (cluster-scoped). */
export const REACH_VERB = 'proxy';
export const CLUSTERS_API_GROUP = 'core.kubefed.io';
export const CLUSTERS_RESOURCE = 'clusters';

/**
 * Whether a user may reach a cluster. `authorizer` is the federation's RBAC; null when the hub runs
 * without it, and then only system:masters may (secure by default: no policy grants nothing).
 * Groups are completed with effectiveGroups() first, so bindings to system:authenticated or
 * system:serviceaccounts apply as in the API server.
 *
 * Tenants come first: a user with at least one `fedtunnel:tenant:<X>` group reaches only clusters
 * whose tenant (`clusterTenant`: the KubeFedCluster's fedtunnel.io/tenant label, else its agent
 * certificate's tenant) is one of theirs, whatever RBAC grants. system:masters bypasses both.
 */
export function mayReach(authorizer: Authorizer | null, who: UserIdentity, cluster: string, clusterTenant?: string): Decision {
  const groups = effectiveGroups(who.user, who.groups);
  if (groups.includes(MASTERS_GROUP)) return { allowed: true, reason: `allowed: member of ${MASTERS_GROUP}` };
  const tenants = tenantsOfGroups(groups);
  if (tenants.length > 0 && (clusterTenant === undefined || !tenants.includes(clusterTenant))) {
    const of = clusterTenant === undefined ? 'has no tenant' : `belongs to tenant ${JSON.stringify(clusterTenant)}`;
    return { allowed: false, reason: `cluster ${JSON.stringify(cluster)} ${of}; user is bound to tenant(s) ${tenants.map((t) => JSON.stringify(t)).join(', ')} (${TENANT_GROUP_PREFIX}<tenant> groups)` };
  }
  if (!authorizer) return { allowed: false, reason: '' };
  return authorizer.authorize({ user: who.user, groups, verb: REACH_VERB, apiGroup: CLUSTERS_API_GROUP, resource: CLUSTERS_RESOURCE, name: cluster });
}
