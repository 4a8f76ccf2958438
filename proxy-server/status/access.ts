// What one user may see on the status page, from the federation's RBAC: a cluster if they may
// proxy it (the same rule as CONNECT, targets.ts mayReach), federated objects of a type if they
// may list it in the object's namespace. Without the federation only system:masters sees anything.
import type { UserIdentity } from '../../certs/identity.js';
import { effectiveGroups, MASTERS_GROUP, type Authorizer } from '../../federation/apiserver/rbac.js';
import { mayReach } from '../targets.js';
import type { Access } from './model.js';

/** `tenantOf`: a cluster's tenant (label, else its agent's), for the tenant rule of mayReach. */
export function accessFor(authorizer: Authorizer | null, who: UserIdentity, tenantOf: (cluster: string) => string | undefined = () => undefined): Access {
  const groups = effectiveGroups(who.user, who.groups);
  const masters = groups.includes(MASTERS_GROUP);
  return {
    mayReach: (cluster) => mayReach(authorizer, who, cluster, tenantOf(cluster)).allowed,
    mayList: (group, plural, namespace) =>
      masters || (authorizer?.authorize({ user: who.user, groups, verb: 'list', apiGroup: group, resource: plural, ...(namespace ? { namespace } : {}) }).allowed ?? false),
  };
}
