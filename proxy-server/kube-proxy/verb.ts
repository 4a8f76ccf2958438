// The Kubernetes verb of a proxied request, from its method and member path (pure), as
// kube-apiserver's request-info resolver names it — for the audit line and the metrics labels.
// exec, attach and portforward are `create` whatever the method (WebSocket exec is a GET).

export type KubeVerb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete' | 'deletecollection' | string;

const STREAMING_SUBRESOURCES = new Set(['exec', 'attach', 'portforward']);

function isWatchQuery(query: string): boolean {
  const params = new URLSearchParams(query.startsWith('?') ? query.slice(1) : query);
  const watch = params.get('watch');
  return watch === 'true' || watch === '1';
}

export function kubeVerb(method: string, memberPath: string, query = ''): KubeVerb {
  const m = method.toUpperCase();
  const parts = memberPath.split('/').filter((p) => p !== '');
  const prefix = parts[0] === 'api' ? 2 : parts[0] === 'apis' ? 3 : 0;
  // Non-resource paths (/healthz, /version, discovery roots): kube uses the lower-case method.
  if (prefix === 0 || parts.length <= prefix) return m === 'HEAD' ? 'get' : m.toLowerCase();
  let rest = parts.slice(prefix);
  let watchPrefix = false;
  if (rest[0] === 'watch') {
    watchPrefix = true;
    rest = rest.slice(1);
  }
  // /namespaces/<ns>/<resource>… is namespaced; /namespaces and /namespaces/<name>[/<sub>] are the namespace resource itself.
  if (rest[0] === 'namespaces' && rest.length >= 3) rest = rest.slice(2);
  const hasName = rest.length >= 2;
  const subresource = rest[2];
  if (subresource && STREAMING_SUBRESOURCES.has(subresource)) return 'create';
  switch (m) {
    case 'GET':
    case 'HEAD':
      if (watchPrefix || isWatchQuery(query)) return 'watch';
      return hasName ? 'get' : 'list';
    case 'POST':
      return 'create';
    case 'PUT':
      return 'update';
    case 'PATCH':
      return 'patch';
    case 'DELETE':
      return hasName ? 'delete' : 'deletecollection';
    default:
      return m.toLowerCase();
  }
}
