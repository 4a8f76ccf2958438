// Request verbs, the authenticated user, and kube's Forbidden message (pure). The decision itself
// is Kubernetes RBAC: rbac.ts (evaluation) fed by rbac-cache.ts (the objects, from the store).
import { isResourceRequest, type Attributes } from './rbac.js';

export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete';

export interface UserInfo {
  user: string;
  groups: string[];
  /** Set by authenticators that know one and by impersonation (Impersonate-Uid). */
  uid?: string;
  /** Extra attributes (Impersonate-Extra-<key>), key → values. */
  extra?: Record<string, string[]>;
}

export const ALL_VERBS: readonly Verb[] = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'];

/** kube's message for a denied request, e.g. `configmaps "a" is forbidden: User "alice" cannot get resource "configmaps" in API group "" in the namespace "x"`. */
export function forbiddenMessage(attrs: Attributes): string {
  if (!isResourceRequest(attrs)) return `forbidden: User "${attrs.user}" cannot ${attrs.verb} path "${attrs.path}"`;
  const qualified = attrs.apiGroup === '' ? attrs.resource : `${attrs.resource}.${attrs.apiGroup}`;
  const what = attrs.name ? `${qualified} "${attrs.name}"` : qualified;
  const resource = attrs.subresource ? `${attrs.resource}/${attrs.subresource}` : attrs.resource;
  const where = attrs.namespace ? ` in the namespace "${attrs.namespace}"` : ' at the cluster scope';
  return `${what} is forbidden: User "${attrs.user}" cannot ${attrs.verb} resource "${resource}" in API group "${attrs.apiGroup}"${where}`;
}
