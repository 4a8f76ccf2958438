// Client-requested impersonation at the hub (pure, given the RBAC authorizer), with Kubernetes
// semantics: Impersonate-User (one), Impersonate-Group (one per line), Impersonate-Uid,
// Impersonate-Extra-<key>; each value needs verb `impersonate` for the requester on users (or
// serviceaccounts), groups, uids, userextras/<key>. Groups, uid or extras without a user are a 400.
// The result is the identity everything after runs as (authorization of `proxy`, the member).
import { AUTHENTICATED_GROUP, effectiveGroups, MASTERS_GROUP, serviceAccountOf, type Authorizer, type ResourceAttributes } from '../../federation/apiserver/rbac.js';
import type { ForwardIdentity } from './headers.js';
import { KubeProxyError } from './status.js';

export interface Requested {
  user?: string;
  groups: string[];
  uid?: string;
  extra: Record<string, string[]>;
}

const EXTRA_PREFIX = 'impersonate-extra-';

/** The Impersonate-* lines of a request (raw, so duplicates are seen); null when there are none. */
export function requestedImpersonation(rawHeaders: readonly string[]): Requested | null {
  const out: Requested = { groups: [], extra: {} };
  let users = 0;
  let uids = 0;
  let any = false;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    const value = rawHeaders[i + 1]!.trim();
    if (!name.startsWith('impersonate-')) continue;
    any = true;
    if (name === 'impersonate-user') {
      users++;
      out.user = value;
    } else if (name === 'impersonate-group') out.groups.push(value);
    else if (name === 'impersonate-uid') {
      uids++;
      out.uid = value;
    } else if (name.startsWith(EXTRA_PREFIX)) {
      let key: string;
      try {
        key = decodeURIComponent(name.slice(EXTRA_PREFIX.length));
      } catch {
        throw new KubeProxyError('BadRequest', `malformed percent-escape in header ${JSON.stringify(rawHeaders[i])}`);
      }
      (out.extra[key] ??= []).push(value);
    } else throw new KubeProxyError('BadRequest', `unknown impersonation header ${JSON.stringify(rawHeaders[i])}`);
  }
  if (!any) return null;
  if (users > 1) throw new KubeProxyError('BadRequest', 'only one Impersonate-User header is allowed');
  if (uids > 1) throw new KubeProxyError('BadRequest', 'only one Impersonate-Uid header is allowed');
  if (out.user === undefined || out.user === '') throw new KubeProxyError('BadRequest', 'Impersonate-Group, Impersonate-Uid and Impersonate-Extra-* require Impersonate-User');
  return out;
}

/**
 * The identity a request runs as: the authenticated caller, or whom it asked to impersonate if
 * RBAC lets the caller (403 naming the first missing permission otherwise). `caller.groups` are
 * the caller's own groups; the decision uses effectiveGroups().
 */
export function effectiveIdentity(authorizer: Authorizer | null, caller: ForwardIdentity, requested: Requested | null): { identity: ForwardIdentity; impersonatedBy?: string } {
  if (!requested) return { identity: caller };
  const groups = effectiveGroups(caller.user, caller.groups);
  const asks: Array<Omit<ResourceAttributes, 'user' | 'groups' | 'verb'>> = [];
  const sa = serviceAccountOf(requested.user!);
  asks.push(sa ? { apiGroup: '', resource: 'serviceaccounts', namespace: sa.namespace, name: sa.name } : { apiGroup: '', resource: 'users', name: requested.user! });
  for (const g of requested.groups) asks.push({ apiGroup: '', resource: 'groups', name: g });
  if (requested.uid !== undefined) asks.push({ apiGroup: 'authentication.k8s.io', resource: 'uids', name: requested.uid });
  for (const [key, values] of Object.entries(requested.extra)) for (const v of values) asks.push({ apiGroup: 'authentication.k8s.io', resource: 'userextras', subresource: key, name: v });
  if (!groups.includes(MASTERS_GROUP)) {
    for (const ask of asks) {
      const allowed = authorizer?.authorize({ user: caller.user, groups, verb: 'impersonate', ...ask }).allowed ?? false;
      if (allowed) continue;
      const resource = ask.subresource ? `${ask.resource}/${ask.subresource}` : ask.resource;
      const where = ask.namespace ? ` in the namespace "${ask.namespace}"` : '';
      throw new KubeProxyError('Forbidden', `${resource} "${ask.name}" is forbidden: User "${caller.user}" cannot impersonate resource "${resource}" in API group "${ask.apiGroup}"${where}`);
    }
  }
  const identity: ForwardIdentity = {
    user: requested.user!,
    groups: requested.groups.filter((g) => g !== AUTHENTICATED_GROUP),
    ...(requested.uid !== undefined ? { uid: requested.uid } : {}),
    ...(Object.keys(requested.extra).length > 0 ? { extra: requested.extra } : {}),
  };
  return { identity, impersonatedBy: caller.user };
}
