// Everything a /clusters request must pass before a byte goes to a member, in order: a revoked
// client certificate (403), the route (400/404), authentication (401), requested impersonation
// (400/403), authorization to reach the cluster as the effective identity (403, RBAC verb proxy
// and the tenant rule — targets.ts mayReach, shared with CONNECT), then the cluster's config
// (404 not joined, 503 not usable). Shared by plain requests and upgrades.
import type http from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { ListenerGuard } from '../../common/listener-guard.js';
import { revokedClientCertificate, unauthenticatedReason, type Authenticator } from '../../federation/apiserver/authn.js';
import type { Authorizer } from '../../federation/apiserver/rbac.js';
import type { MemberConfig } from '../../federation/controller/member-config.js';
import type { RevocationGuard } from '../revocation.js';
import { mayReach, REACH_VERB, CLUSTERS_API_GROUP, CLUSTERS_RESOURCE } from '../targets.js';
import type { ClusterDirectory, JoinedCluster } from './clusters.js';
import type { ForwardIdentity } from './headers.js';
import { effectiveIdentity, requestedImpersonation } from './impersonation.js';
import { parseClusterRoute, type ClusterRoute } from './route.js';
import { KubeProxyError } from './status.js';
import { kubeVerb } from './verb.js';

export interface AdmissionOptions {
  authenticator: Authenticator;
  /** The federation's RBAC once it runs; null without it (then only system:masters reach anything). */
  authorizer: () => Authorizer | null;
  /** The joined clusters; null without the embedded federation. */
  clusters: () => ClusterDirectory | null;
  /** The tenant of a cluster's agent certificate (registry), when its KubeFedCluster has no tenant label. */
  agentTenantOf: (cluster: string) => string | undefined;
  revocation?: RevocationGuard;
  log: Logger;
}

export interface Admitted {
  route: ClusterRoute;
  verb: string;
  identity: ForwardIdentity;
  impersonatedBy?: string;
  cluster: JoinedCluster & { config: MemberConfig };
}

export class Admission {
  constructor(private readonly options: AdmissionOptions) {}

  async admit(req: http.IncomingMessage, guard: ListenerGuard): Promise<Admitted> {
    const { options } = this;
    const revoked = revokedClientCertificate(req, (serial) =>
      options.revocation?.refuses('connect_tls', serial, { user: '' }, (fields) => guard.refused('revoked', req.socket, fields)) ?? false,
    );
    if (revoked) throw new KubeProxyError('Forbidden', `client certificate serial ${revoked.serial} is revoked`);
    const route = parseClusterRoute(req.url ?? '');
    const caller = await options.authenticator.authenticate(req);
    if (!caller) {
      guard.refused(unauthenticatedReason(req), req.socket);
      throw new KubeProxyError('Unauthorized', 'Unauthorized: a client certificate of the hub CA, a bearer token of the token file or an OIDC ID token is required');
    }
    const authorizer = options.authorizer();
    const { identity, impersonatedBy } = effectiveIdentity(authorizer, { user: caller.user, groups: caller.groups }, requestedImpersonation(req.rawHeaders));
    const directory = options.clusters();
    const joined = directory ? (await directory.ready(), directory.get(route.cluster)) : undefined;
    const tenant = joined?.tenantLabel ?? options.agentTenantOf(route.cluster);
    const decision = mayReach(authorizer, { user: identity.user, groups: [...identity.groups] }, route.cluster, tenant);
    if (!decision.allowed) {
      options.log.warn({ user: identity.user, groups: identity.groups, impersonatedBy, cluster: route.cluster, reason: decision.reason || undefined, remote: (req.socket as TLSSocket).remoteAddress }, 'kube-proxy refused: user may not proxy this cluster');
      const why = decision.reason ? `: ${decision.reason}` : ` (RBAC verb ${REACH_VERB} on ${CLUSTERS_RESOURCE}.${CLUSTERS_API_GROUP})`;
      throw new KubeProxyError('Forbidden', `clusters.${CLUSTERS_API_GROUP} "${route.cluster}" is forbidden: User "${identity.user}" cannot ${REACH_VERB} cluster "${route.cluster}"${why}`);
    }
    if (!joined) throw new KubeProxyError('NotFound', `cluster ${JSON.stringify(route.cluster)} is not joined`);
    if (!joined.config) throw new KubeProxyError('ServiceUnavailable', `cluster ${JSON.stringify(route.cluster)} is joined but its KubeFedCluster or Secret is not usable: ${joined.configError}`);
    return { route, verb: kubeVerb(req.method ?? 'GET', route.memberPath, route.query), identity, ...(impersonatedBy ? { impersonatedBy } : {}), cluster: joined as JoinedCluster & { config: MemberConfig } };
  }
}

export interface MemberTarget {
  readonly host: string;
  readonly port: number;
  readonly hostHeader: string;
}

/** Parsed once per config (a config is a new object whenever the KubeFedCluster or its Secret changes): a URL parse per request is measurable. */
const targets = new WeakMap<MemberConfig, MemberTarget>();

/** Where a member's API server is, as https.request wants it (the TunnelAgent dials it through the tunnel). */
export function memberTarget(a: Admitted): MemberTarget {
  const config = a.cluster.config;
  let target = targets.get(config);
  if (!target) {
    const url = new URL(config.server);
    target = { host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 443), hostHeader: url.host };
    targets.set(config, target);
  }
  return target;
}
