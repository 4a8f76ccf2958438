// A minimal OpenAPI v3 surface: just enough for kubectl to see that the server validates fields
// itself (PATCH operations carrying x-kubernetes-group-version-kind and a fieldValidation query
// parameter), so `kubectl apply` skips client-side schema validation.
import { createHash } from 'node:crypto';
import type { TypeRegistry } from './types.js';

function gvPath(group: string, version: string): string {
  return group === '' ? `api/${version}` : `apis/${group}/${version}`;
}

function gvDoc(registry: TypeRegistry, group: string, version: string): object {
  const paths: Record<string, object> = {};
  for (const t of registry.forGroupVersion(group, version)) {
    const base = t.namespaced ? `/${gvPath(group, version)}/namespaces/{namespace}/${t.plural}` : `/${gvPath(group, version)}/${t.plural}`;
    const gvk = { group: t.group, version: t.version, kind: t.kind };
    const op = (id: string) => ({
      operationId: `${id}${t.kind}`,
      'x-kubernetes-group-version-kind': gvk,
      parameters: [
        { name: 'dryRun', in: 'query', schema: { type: 'string' } },
        { name: 'fieldManager', in: 'query', schema: { type: 'string' } },
        { name: 'fieldValidation', in: 'query', schema: { type: 'string' } },
      ],
      responses: { '200': { description: 'OK' } },
    });
    paths[`${base}/{name}`] = { patch: op('patch'), put: op('replace') };
    paths[base] = { post: op('create') };
  }
  return { openapi: '3.0.0', info: { title: 'fedtunnel apiserver', version: 'v1.32.0' }, paths, components: { schemas: {} } };
}

/** Body of /openapi/v3 or /openapi/v3/<gv path>, or null for unknown paths. */
export function openApiV3(registry: TypeRegistry, pathname: string): object | null {
  const docs = new Map<string, object>();
  const gvs = new Set(registry.all().map((t) => `${t.group}\u0000${t.version}`));
  for (const gv of gvs) {
    const [group, version] = gv.split('\u0000') as [string, string];
    docs.set(gvPath(group, version), gvDoc(registry, group, version));
  }
  const rest = pathname.replace(/^\/openapi\/v3\/?/, '');
  if (rest === '') {
    const paths: Record<string, object> = {};
    for (const [p, doc] of docs) {
      const hash = createHash('sha256').update(JSON.stringify(doc)).digest('hex').slice(0, 32).toUpperCase();
      paths[p] = { serverRelativeURL: `/openapi/v3/${p}?hash=${hash}` };
    }
    return { paths };
  }
  return docs.get(rest) ?? null;
}

