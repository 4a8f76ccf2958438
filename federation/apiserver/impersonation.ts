// Kubernetes user impersonation (pure): the Impersonate-* headers of a request → what to ask RBAC
// and the identity the request then runs as, with the semantics of kube-apiserver's
// WithImpersonation filter (k8s.io/apiserver/pkg/endpoints/filters/impersonation.go). The hub's
// /clusters proxy sends these headers to members; a member (this server in member mode) must honour
// them exactly as a real kube-apiserver, so the member's own RBAC applies to the real user.
import { forbiddenMessage, type UserInfo } from './authz.js';
import { ApiError, errors } from './errors.js';
import { AUTHENTICATED_GROUP, serviceAccountOf, SERVICE_ACCOUNTS_GROUP, type Authorizer, type ResourceAttributes } from './rbac.js';

export const IMPERSONATE_USER = 'impersonate-user';
export const IMPERSONATE_GROUP = 'impersonate-group';
export const IMPERSONATE_UID = 'impersonate-uid';
export const IMPERSONATE_EXTRA_PREFIX = 'impersonate-extra-';
export const AUTHENTICATION_GROUP = 'authentication.k8s.io';
export const ANONYMOUS_USER = 'system:anonymous';
export const UNAUTHENTICATED_GROUP = 'system:unauthenticated';

/** What a request asks to act as: the user, and whatever of groups, uid and extra it names. */
export interface ImpersonationRequest {
  user: string;
  /** One per Impersonate-Group line, in order (a comma inside a line is part of the group name). */
  groups: string[];
  /** Were any Impersonate-Group lines sent? (Even an empty one: then the groups are exactly those given.) */
  groupsSpecified: boolean;
  uid?: string;
  /** Key (lower-cased, %-decoded) → values, one per header line. */
  extra: Record<string, string[]>;
}

/**
 * The impersonation a request asks for, from its raw header lines (name, value, name, value… as
 * Node's rawHeaders: every line kept, any case), or null when it asks for none. 400 Status when it
 * is malformed: more than one Impersonate-User or Impersonate-Uid line (kube silently takes the
 * first; two users in one request is either a bug or an attempt to confuse a proxy), or groups,
 * uid or extras without a user (as kube).
 */
export function parseImpersonation(rawHeaders: readonly string[]): ImpersonationRequest | null {
  const users: string[] = [];
  const uids: string[] = [];
  const groups: string[] = [];
  const extra: Record<string, string[]> = {};
  let extras = false;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    if (!name.startsWith('impersonate-')) continue;
    const value = rawHeaders[i + 1]!;
    if (name === IMPERSONATE_USER) users.push(value);
    else if (name === IMPERSONATE_GROUP) groups.push(value);
    else if (name === IMPERSONATE_UID) uids.push(value);
    else if (name.startsWith(IMPERSONATE_EXTRA_PREFIX)) {
      extras = true;
      const key = unescapeExtraKey(name.slice(IMPERSONATE_EXTRA_PREFIX.length));
      (extra[key] ??= []).push(value);
    }
  }
  if (users.length > 1) throw errors.badRequest(`${users.length} Impersonate-User headers: at most one user can be impersonated`);
  if (uids.length > 1) throw errors.badRequest(`${uids.length} Impersonate-Uid headers: at most one uid can be impersonated`);
  const user = users[0] ?? '';
  const uid = uids[0] ?? '';
  if (user === '') {
    if (groups.length > 0 || extras || uid !== '') throw errors.badRequest('requested Impersonate-Group, Impersonate-Uid or Impersonate-Extra-* without impersonating a user (Impersonate-User)');
    return null;
  }
  return { user, groups, groupsSpecified: groups.length > 0, ...(uid !== '' ? { uid } : {}), extra };
}

/** As kube: %-decoded, or kept as sent when the escape is malformed (an extra is always recorded). */
function unescapeExtraKey(key: string): string {
  try {
    return decodeURIComponent(key);
  } catch {
    return key;
  }
}

/** One RBAC question per thing impersonated, in kube's order: user (or service account), groups, extras, uid. */
export function impersonationChecks(requester: UserInfo, wanted: ImpersonationRequest): ResourceAttributes[] {
  const who = { user: requester.user, groups: requester.groups, verb: 'impersonate' };
  const out: ResourceAttributes[] = [];
  const sa = serviceAccountOf(wanted.user);
  out.push(sa ? { ...who, apiGroup: '', resource: 'serviceaccounts', namespace: sa.namespace, name: sa.name } : { ...who, apiGroup: '', resource: 'users', name: wanted.user });
  for (const g of wanted.groups) out.push({ ...who, apiGroup: '', resource: 'groups', name: g });
  for (const [key, values] of Object.entries(wanted.extra)) for (const v of values) out.push({ ...who, apiGroup: AUTHENTICATION_GROUP, resource: 'userextras', subresource: key, name: v });
  if (wanted.uid !== undefined) out.push({ ...who, apiGroup: AUTHENTICATION_GROUP, resource: 'uids', name: wanted.uid });
  return out;
}

/**
 * The identity an allowed impersonation runs as (kube): a service account without groups gets its
 * fixed groups; system:authenticated is added unless a group says (un)authenticated already, and
 * system:anonymous gets system:unauthenticated instead.
 */
export function impersonatedUser(wanted: ImpersonationRequest): UserInfo {
  let groups = [...wanted.groups];
  const sa = serviceAccountOf(wanted.user);
  if (sa && !wanted.groupsSpecified) groups = [SERVICE_ACCOUNTS_GROUP, `${SERVICE_ACCOUNTS_GROUP}:${sa.namespace}`];
  if (wanted.user !== ANONYMOUS_USER) {
    if (!groups.includes(AUTHENTICATED_GROUP) && !groups.includes(UNAUTHENTICATED_GROUP)) groups.push(AUTHENTICATED_GROUP);
  } else if (!groups.includes(UNAUTHENTICATED_GROUP)) groups.push(UNAUTHENTICATED_GROUP);
  return { user: wanted.user, groups, ...(wanted.uid !== undefined ? { uid: wanted.uid } : {}), ...(Object.keys(wanted.extra).length ? { extra: wanted.extra } : {}) };
}

/** A denied impersonation: kube's 403 naming the first thing the requester may not impersonate. */
export class ImpersonationForbidden extends ApiError {
  override name = 'ImpersonationForbidden';

  constructor(readonly denied: ResourceAttributes) {
    super(403, 'Forbidden', forbiddenMessage(denied), { ...(denied.name ? { name: denied.name } : {}), group: denied.apiGroup, kind: denied.resource });
  }
}

/**
 * The decision for a request's impersonation headers: null when it asks for none (it runs as the
 * requester), else the identity it runs as once every check is allowed. Throws a 400 ApiError for
 * malformed headers and ImpersonationForbidden (403) for the first check RBAC denies.
 */
export function decideImpersonation(rawHeaders: readonly string[], requester: UserInfo, authorizer: Authorizer): UserInfo | null {
  const wanted = parseImpersonation(rawHeaders);
  if (!wanted) return null;
  for (const check of impersonationChecks(requester, wanted)) if (!authorizer.authorize(check).allowed) throw new ImpersonationForbidden(check);
  return impersonatedUser(wanted);
}
