// Which cluster a /clusters request names, and the path its member gets (pure). Parsed from the RAW
// request URL: a decoded or normalised path would let `/clusters/east/../west/` reach west, or
// send `/../west` to east. Anything ambiguous is refused (400), never repaired.
import { isDnsLabel } from '../../certs/names.js';
import { KubeProxyError } from './status.js';

export const CLUSTERS_PREFIX = '/clusters/';

export interface ClusterRoute {
  cluster: string;
  /** What the member gets: the path after /clusters/<name> ("/" at least), with the query as sent. */
  memberUrl: string;
  /** The member path without the query (audit log, verb). */
  memberPath: string;
  query: string;
}

/** Does the request belong to the proxy at all (else: 404, not a cluster URL)? */
export function isClustersUrl(rawUrl: string): boolean {
  const path = rawUrl.split('?', 1)[0]!;
  return path === '/clusters' || path.startsWith(CLUSTERS_PREFIX);
}

/** Whether a percent-decoded segment could climb: `.`, `..`, or one with a decoded / or \ around them. */
function isDotSegment(decoded: string): boolean {
  return decoded.split(/[/\\]/).some((part) => part === '.' || part === '..');
}

/**
 * Parses a raw request URL of the form /clusters/<name>[/<member path>][?query]. Throws
 * KubeProxyError: 404 for /clusters itself, 400 for a malformed cluster name, an empty segment,
 * a dot segment (raw or percent-encoded, anywhere), a backslash or a bad percent-escape.
 */
export function parseClusterRoute(rawUrl: string): ClusterRoute {
  const q = rawUrl.indexOf('?');
  const path = q < 0 ? rawUrl : rawUrl.slice(0, q);
  const query = q < 0 ? '' : rawUrl.slice(q);
  if (!path.startsWith('/')) throw new KubeProxyError('BadRequest', 'the request target must be a path (origin form)');
  if (path === '/clusters' || path === '/clusters/') throw new KubeProxyError('NotFound', 'no cluster named: use /clusters/<name>/<Kubernetes API path>');
  if (!isClustersUrl(path)) throw new KubeProxyError('NotFound', `the hub serves only /clusters/<name>/…, not ${JSON.stringify(path)}`);
  if (path.includes('\\')) throw new KubeProxyError('BadRequest', 'a backslash is not allowed in the path');
  const segments = path.slice(1).split('/');
  // A trailing slash leaves one empty last segment; any other empty one is `//`.
  const inner = segments[segments.length - 1] === '' ? segments.slice(0, -1) : segments;
  for (const segment of inner) {
    if (segment === '') throw new KubeProxyError('BadRequest', 'empty path segments (//) are not allowed');
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      throw new KubeProxyError('BadRequest', `malformed percent-escape in path segment ${JSON.stringify(segment)}`);
    }
    if (isDotSegment(decoded)) throw new KubeProxyError('BadRequest', 'dot segments (. or .., also percent-encoded) are not allowed in the path');
  }
  const cluster = segments[1]!;
  if (cluster.includes('%')) throw new KubeProxyError('BadRequest', 'the cluster name may not contain percent-escapes');
  if (!isDnsLabel(cluster)) throw new KubeProxyError('BadRequest', `cluster name ${JSON.stringify(cluster)} is not a DNS label`);
  const memberPath = '/' + segments.slice(2).join('/');
  return { cluster, memberPath, query, memberUrl: memberPath + query };
}
