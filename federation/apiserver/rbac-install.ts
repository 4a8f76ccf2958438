// Serves RBAC on an API server's Resources: the rbac.authorization.k8s.io/v1 types (validated on
// write), the authorization.k8s.io/v1 reviews, the default policy (written when absent), and the
// watch-fed cache every request is authorized against.
import type { Logger } from '../../common/log.js';
import { REVIEW_TYPES } from './access-review.js';
import { ApiError } from './errors.js';
import { isRbacType, RBAC_TYPES, validateRbacObject, CLUSTER_ROLE_BINDINGS, CLUSTER_ROLES } from './rbac-api.js';
import { BOOTSTRAP_CLUSTER_ROLE_BINDINGS, BOOTSTRAP_CLUSTER_ROLES } from './rbac-bootstrap.js';
import { RbacCache } from './rbac-cache.js';
import type { Resources } from './resources.js';
import type { ResourceType } from './types.js';
import type { KubeObject } from './storage.js';

export async function installRbac(resources: Resources, log: Logger): Promise<RbacCache> {
  const { registry } = resources;
  for (const t of [...RBAC_TYPES, ...REVIEW_TYPES]) if (!registry.lookup(t.group, t.version, t.plural)) registry.add(t);
  resources.hooks.push({ validate: (t, obj) => (isRbacType(t) ? validateRbacObject(t, obj) : []) });
  let created = 0;
  for (const role of BOOTSTRAP_CLUSTER_ROLES) created += await createIfAbsent(resources, CLUSTER_ROLES, role);
  for (const binding of BOOTSTRAP_CLUSTER_ROLE_BINDINGS) created += await createIfAbsent(resources, CLUSTER_ROLE_BINDINGS, binding);
  if (created > 0) log.info({ created }, 'rbac: default cluster roles and bindings written');
  const cache = new RbacCache(resources, log);
  await cache.start();
  return cache;
}

/** 1 if written, 0 if an object of that name exists (kept as it is: an operator may have edited it). */
async function createIfAbsent(resources: Resources, t: ResourceType, obj: KubeObject): Promise<number> {
  try {
    await resources.create(t, undefined, obj);
    return 1;
  } catch (err) {
    if (err instanceof ApiError && err.reason === 'AlreadyExists') return 0;
    throw err;
  }
}
