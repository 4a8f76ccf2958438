// Discovery documents: /version, /api, /apis, /apis/<g>, /api/v1 and /apis/<g>/<v>.
import { ALL_VERBS } from './authz.js';
import { groupVersion, type TypeRegistry } from './types.js';

export const SERVER_VERSION = {
  major: '1',
  minor: '32',
  gitVersion: 'v1.32.0-fedtunnel',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2026-01-01T00:00:00Z',
  goVersion: 'node',
  compiler: 'tsc',
  platform: `${process.platform}/${process.arch === 'x64' ? 'amd64' : process.arch}`,
};

export function apiVersions(serverAddress: string): object {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] };
}

function groupDoc(name: string, versions: string[]): object {
  const vs = versions.map((v) => ({ groupVersion: `${name}/${v}`, version: v }));
  return { name, versions: vs, preferredVersion: vs[0] };
}

export function apiGroupList(registry: TypeRegistry): object {
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: registry.groups().map((g) => groupDoc(g.name, g.versions)) };
}

export function apiGroup(registry: TypeRegistry, group: string): object | null {
  const g = registry.groups().find((x) => x.name === group);
  return g ? { kind: 'APIGroup', apiVersion: 'v1', ...groupDoc(g.name, g.versions) } : null;
}

export function apiResourceList(registry: TypeRegistry, group: string, version: string): object | null {
  if (!registry.hasGroupVersion(group, version)) return null;
  const resources: object[] = [];
  for (const t of registry.forGroupVersion(group, version)) {
    resources.push({
      name: t.plural,
      singularName: t.singular,
      namespaced: t.namespaced,
      kind: t.kind,
      verbs: [...(t.verbs ?? ALL_VERBS)],
      ...(t.shortNames?.length ? { shortNames: t.shortNames } : {}),
    });
    if (t.hasStatus) resources.push({ name: `${t.plural}/status`, singularName: '', namespaced: t.namespaced, kind: t.kind, verbs: ['get', 'patch', 'update'] });
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: groupVersion({ group, version }), resources };
}
