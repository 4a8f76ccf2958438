// URL path → what is asked for (pure). Resource paths:
//   /api/v1[/watch]/namespaces/<ns>/<plural>[/<name>[/<subresource>]]
//   /api/v1[/watch]/<plural>[/<name>[/<subresource>]]          (and /apis/<group>/<version>/...)
import type { Verb } from './authz.js';

export type Route =
  | { kind: 'version' }
  | { kind: 'health'; check: 'healthz' | 'readyz' | 'livez' }
  | { kind: 'metrics' }
  | { kind: 'apiVersions' }
  | { kind: 'openapiV3' }
  | { kind: 'openapiV2' }
  | { kind: 'apiGroupList' }
  | { kind: 'apiGroup'; group: string }
  | { kind: 'resourceList'; group: string; version: string }
  | {
      kind: 'resource';
      group: string;
      version: string;
      plural: string;
      namespace?: string;
      name?: string;
      subresource?: string;
      watchPath: boolean;
    }
  | { kind: 'notFound' };

export type ResourceRoute = Extract<Route, { kind: 'resource' }>;

/** Tells whether `plural` is a namespaced resource of group/version (disambiguates namespaces/<x>/...). */
export type IsNamespacedPlural = (group: string, version: string, plural: string) => boolean;

/** A request's URL (null when it does not parse: the server answers 400) and its route. */
export function parseRequestUrl(requestUrl: string, isNamespacedPlural: IsNamespacedPlural): { url: URL | null; route: Route } {
  let url: URL;
  try {
    url = new URL(requestUrl, 'https://apiserver');
  } catch {
    return { url: null, route: { kind: 'notFound' } };
  }
  return { url, route: parsePath(url.pathname, isNamespacedPlural) };
}

export function parsePath(pathname: string, isNamespacedPlural: IsNamespacedPlural): Route {
  let segs: string[];
  try {
    segs = pathname.split('/').filter((s) => s !== '').map(decodeURIComponent);
  } catch {
    return { kind: 'notFound' };
  }
  if (segs.length === 1 && segs[0] === 'version') return { kind: 'version' };
  if (segs.length >= 1 && (segs[0] === 'healthz' || segs[0] === 'readyz' || segs[0] === 'livez')) return { kind: 'health', check: segs[0] };
  if (segs.length === 1 && segs[0] === 'metrics') return { kind: 'metrics' };
  if (segs[0] === 'openapi' && segs[1] === 'v3') return { kind: 'openapiV3' };
  if (segs.length === 2 && segs[0] === 'openapi' && segs[1] === 'v2') return { kind: 'openapiV2' };
  let group: string;
  let version: string;
  let rest: string[];
  if (segs[0] === 'api') {
    if (segs.length === 1) return { kind: 'apiVersions' };
    group = '';
    version = segs[1]!;
    rest = segs.slice(2);
  } else if (segs[0] === 'apis') {
    if (segs.length === 1) return { kind: 'apiGroupList' };
    if (segs.length === 2) return { kind: 'apiGroup', group: segs[1]! };
    group = segs[1]!;
    version = segs[2]!;
    rest = segs.slice(3);
  } else {
    return { kind: 'notFound' };
  }
  if (rest.length === 0) return { kind: 'resourceList', group, version };
  let watchPath = false;
  if (rest[0] === 'watch') {
    watchPath = true;
    rest = rest.slice(1);
    if (rest.length === 0) return { kind: 'notFound' };
  }
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3 && isNamespacedPlural(group, version, rest[2]!)) {
    namespace = rest[1]!;
    rest = rest.slice(2);
  }
  if (rest.length > 3) return { kind: 'notFound' };
  const [plural, name, subresource] = rest as [string, string | undefined, string | undefined];
  return { kind: 'resource', group, version, plural, namespace, name, subresource, watchPath };
}

/**
 * The Kubernetes verb of a request on a resource path, or null for a method the path does not
 * allow (405). `watchQuery`: the query has watch=true (or 1).
 */
export function resourceVerb(method: string, route: ResourceRoute, watchQuery: boolean): Verb | null {
  const { name } = route;
  const status = route.subresource === 'status';
  let verb: Verb | null = null;
  if (method === 'GET') verb = route.watchPath || (name === undefined && watchQuery) ? 'watch' : name === undefined ? 'list' : 'get';
  else if (route.watchPath) return null;
  else if (method === 'POST' && name === undefined) verb = 'create';
  else if (method === 'PUT' && name !== undefined) verb = 'update';
  else if (method === 'PATCH' && name !== undefined) verb = 'patch';
  else if (method === 'DELETE' && name !== undefined && !status) verb = 'delete';
  if (status && verb !== 'get' && verb !== 'update' && verb !== 'patch') return null;
  return verb;
}
