// Resource type registry: which kinds the API server serves, under which group/version and plural.
// Types can be added at runtime (later slices register CRD-like federated types here).

export interface ResourceType {
  /** '' for the core (legacy /api/v1) group. */
  group: string;
  version: string;
  kind: string;
  plural: string;
  singular: string;
  namespaced: boolean;
  shortNames?: string[];
  /** Whether the type has a /status subresource (status is then ignored on the main resource). */
  hasStatus: boolean;
  /** The verbs discovery lists (default: all of ALL_VERBS); e.g. ['create'] for the access reviews. */
  verbs?: readonly string[];
  /** Set for types registered from a CustomResourceDefinition (several versions share one storage version). */
  crd?: CrdVersioning;
}

/** How the versions of a custom resource map to its storage version. */
export interface CrdVersioning {
  /** Name of the CustomResourceDefinition (<plural>.<group>). */
  name: string;
  storageVersion: string;
  conversion: { strategy: 'None' } | { strategy: 'Webhook'; url: string; caBundle?: string; conversionReviewVersions: string[] };
}

export function groupVersion(t: { group: string; version: string }): string {
  return t.group === '' ? t.version : `${t.group}/${t.version}`;
}

export class TypeRegistry {
  private readonly types: ResourceType[] = [];
  private readonly listeners = new Set<() => void>();

  add(type: ResourceType): void {
    if (this.lookup(type.group, type.version, type.plural)) throw new Error(`resource ${type.plural}.${type.group || 'core'}/${type.version} already registered`);
    this.types.push({ ...type, shortNames: type.shortNames ? [...type.shortNames] : undefined });
    this.changed();
  }

  /** Removes every type `match` accepts (runtime unregistration, e.g. a deleted CRD). */
  removeWhere(match: (t: ResourceType) => boolean): void {
    const before = this.types.length;
    for (let i = this.types.length - 1; i >= 0; i--) if (match(this.types[i]!)) this.types.splice(i, 1);
    if (this.types.length !== before) this.changed();
  }

  /**
   * Calls back (synchronously) after a type was added or removed; returns the unsubscribe. A CRD's
   * types are registered after its write is stored, so a watcher of CRDs may see the CRD before
   * its types are served: whoever needs the served type listens here instead.
   */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(): void {
    for (const listener of this.listeners) listener();
  }

  lookup(group: string, version: string, plural: string): ResourceType | undefined {
    return this.types.find((t) => t.group === group && t.version === version && t.plural === plural);
  }

  all(): ResourceType[] {
    return [...this.types];
  }

  /** Types of one group/version, in registration order. */
  forGroupVersion(group: string, version: string): ResourceType[] {
    return this.types.filter((t) => t.group === group && t.version === version);
  }

  /** Named API groups (not core) with their versions, in registration order. */
  groups(): Array<{ name: string; versions: string[] }> {
    const out: Array<{ name: string; versions: string[] }> = [];
    for (const t of this.types) {
      if (t.group === '') continue;
      let g = out.find((x) => x.name === t.group);
      if (!g) out.push((g = { name: t.group, versions: [] }));
      if (!g.versions.includes(t.version)) g.versions.push(t.version);
    }
    return out;
  }

  hasGroupVersion(group: string, version: string): boolean {
    return this.types.some((t) => t.group === group && t.version === version);
  }
}

export const NAMESPACES: ResourceType = { group: '', version: 'v1', kind: 'Namespace', plural: 'namespaces', singular: 'namespace', namespaced: false, shortNames: ['ns'], hasStatus: true };
export const SECRETS: ResourceType = { group: '', version: 'v1', kind: 'Secret', plural: 'secrets', singular: 'secret', namespaced: true, hasStatus: false };

export const MEMBER_TYPES: readonly ResourceType[] = [
  NAMESPACES,
  { group: '', version: 'v1', kind: 'ConfigMap', plural: 'configmaps', singular: 'configmap', namespaced: true, shortNames: ['cm'], hasStatus: false },
  SECRETS,
  { group: '', version: 'v1', kind: 'Service', plural: 'services', singular: 'service', namespaced: true, shortNames: ['svc'], hasStatus: true },
  { group: '', version: 'v1', kind: 'ServiceAccount', plural: 'serviceaccounts', singular: 'serviceaccount', namespaced: true, shortNames: ['sa'], hasStatus: false },
  { group: 'apps', version: 'v1', kind: 'Deployment', plural: 'deployments', singular: 'deployment', namespaced: true, shortNames: ['deploy'], hasStatus: true },
];

export function memberRegistry(): TypeRegistry {
  const registry = new TypeRegistry();
  for (const t of MEMBER_TYPES) registry.add(t);
  return registry;
}
