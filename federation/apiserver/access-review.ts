// authorization.k8s.io/v1 reviews (pure): SelfSubjectAccessReview ("may I?", kubectl auth can-i),
// SubjectAccessReview ("may this user?"; itself RBAC-guarded) and SelfSubjectRulesReview
// (kubectl auth can-i --list); and authentication.k8s.io/v1 SelfSubjectReview ("who am I?",
// kubectl auth whoami). Create-only, never stored: the answer is the created object. All of them
// see the identity the request runs as — the impersonated one when it impersonates.
import type { UserInfo } from './authz.js';
import { errors } from './errors.js';
import { AUTHORIZATION_GROUP } from './rbac-bootstrap.js';
import { AUTHENTICATION_GROUP } from './impersonation.js';
import type { Attributes, Authorizer, PolicyRule } from './rbac.js';
import type { ResourceType } from './types.js';

const base = { group: AUTHORIZATION_GROUP, version: 'v1', namespaced: false, hasStatus: false, verbs: ['create'] } as const;
export const SELF_SUBJECT_ACCESS_REVIEWS: ResourceType = { ...base, kind: 'SelfSubjectAccessReview', plural: 'selfsubjectaccessreviews', singular: 'selfsubjectaccessreview' };
export const SUBJECT_ACCESS_REVIEWS: ResourceType = { ...base, kind: 'SubjectAccessReview', plural: 'subjectaccessreviews', singular: 'subjectaccessreview' };
export const SELF_SUBJECT_RULES_REVIEWS: ResourceType = { ...base, kind: 'SelfSubjectRulesReview', plural: 'selfsubjectrulesreviews', singular: 'selfsubjectrulesreview' };
export const SELF_SUBJECT_REVIEWS: ResourceType = { ...base, group: AUTHENTICATION_GROUP, kind: 'SelfSubjectReview', plural: 'selfsubjectreviews', singular: 'selfsubjectreview' };
export const REVIEW_TYPES: readonly ResourceType[] = [SELF_SUBJECT_ACCESS_REVIEWS, SELF_SUBJECT_RULES_REVIEWS, SUBJECT_ACCESS_REVIEWS, SELF_SUBJECT_REVIEWS];

export function isReviewType(t: ResourceType): boolean {
  return REVIEW_TYPES.some((r) => r.group === t.group && r.plural === t.plural);
}

/** What rules reviews need beyond decisions: the rules of a user in a namespace. */
export interface RulesSource extends Authorizer {
  rulesFor(user: string, groups: readonly string[], namespace: string): PolicyRule[];
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/** The attributes a review's spec asks about, for `who`; 422 for a spec kube would refuse. */
export function reviewAttributes(kind: string, spec: Json, who: UserInfo): Attributes {
  const ra = spec.resourceAttributes;
  const nra = spec.nonResourceAttributes;
  if (isObject(ra) === isObject(nra)) throw errors.invalid(kind, '', [{ field: 'spec.resourceAttributes', message: 'Invalid value: exactly one of nonResourceAttributes or resourceAttributes must be specified' }]);
  if (isObject(nra)) {
    if (str(nra.verb) === '') throw errors.invalid(kind, '', [{ field: 'spec.nonResourceAttributes.verb', message: 'Required value' }]);
    return { user: who.user, groups: who.groups, verb: str(nra.verb), path: str(nra.path) };
  }
  const r = ra as Json;
  if (str(r.verb) === '') throw errors.invalid(kind, '', [{ field: 'spec.resourceAttributes.verb', message: 'Required value' }]);
  return {
    user: who.user,
    groups: who.groups,
    verb: str(r.verb),
    apiGroup: str(r.group),
    resource: str(r.resource),
    ...(str(r.subresource) ? { subresource: str(r.subresource) } : {}),
    ...(str(r.name) ? { name: str(r.name) } : {}),
    ...(str(r.namespace) ? { namespace: str(r.namespace) } : {}),
  };
}

/**
 * The answer to a review created by `requester`: the object with status filled in. The caller has
 * already checked that the requester may create it (RBAC `create` on the review resource).
 */
export function answerReview(t: ResourceType, body: unknown, requester: UserInfo, rbac: RulesSource): Json {
  if (!isObject(body)) throw errors.badRequest('the request body must be a JSON object');
  if (body.kind !== undefined && body.kind !== t.kind) throw errors.badRequest(`the kind of the object (${String(body.kind)}) does not match the resource (${t.kind})`);
  const spec = isObject(body.spec) ? body.spec : {};
  const metadata = isObject(body.metadata) ? body.metadata : {};
  if (t.plural === SELF_SUBJECT_REVIEWS.plural) {
    const userInfo = { username: requester.user, ...(requester.uid ? { uid: requester.uid } : {}), groups: requester.groups, ...(requester.extra ? { extra: requester.extra } : {}) };
    return { kind: t.kind, apiVersion: `${AUTHENTICATION_GROUP}/v1`, metadata: { ...metadata, creationTimestamp: null }, status: { userInfo } };
  }
  const out: Json = { kind: t.kind, apiVersion: `${AUTHORIZATION_GROUP}/v1`, metadata: { ...metadata, creationTimestamp: null }, spec };
  if (t.plural === SELF_SUBJECT_RULES_REVIEWS.plural) {
    const namespace = str(spec.namespace);
    if (namespace === '') throw errors.invalid(t.kind, '', [{ field: 'spec.namespace', message: 'Required value' }]);
    const rules = rbac.rulesFor(requester.user, requester.groups, namespace);
    const resourceRules = rules.filter((r) => r.nonResourceURLs === undefined).map((r) => ({ verbs: r.verbs, apiGroups: r.apiGroups ?? [], resources: r.resources ?? [], ...(r.resourceNames?.length ? { resourceNames: r.resourceNames } : {}) }));
    const nonResourceRules = rules.filter((r) => r.nonResourceURLs !== undefined).map((r) => ({ verbs: r.verbs, nonResourceURLs: r.nonResourceURLs }));
    out.status = { resourceRules, nonResourceRules, incomplete: false };
    return out;
  }
  let who = requester;
  if (t.plural === SUBJECT_ACCESS_REVIEWS.plural) {
    const groups = Array.isArray(spec.groups) ? spec.groups.filter((g): g is string => typeof g === 'string') : [];
    if (str(spec.user) === '' && groups.length === 0) throw errors.invalid(t.kind, '', [{ field: 'spec.user', message: 'Invalid value: at least one of user or group must be specified' }]);
    // As in kube, the groups are taken as given: system:authenticated only if the caller lists it.
    who = { user: str(spec.user), groups };
  }
  const decision = rbac.authorize(reviewAttributes(t.kind, spec, who));
  out.status = { allowed: decision.allowed, ...(decision.reason ? { reason: decision.reason } : {}) };
  return out;
}
