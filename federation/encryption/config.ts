// Kubernetes' EncryptionConfiguration (apiserver.config.k8s.io/v1), parsed and validated in one
// place (pure: text in, typed config or EncryptionError out). Supported providers:
//   kms: {apiVersion: v2, name, endpoint: unix:///path.sock, timeout: 3s}  — the KMS v2 plugin API
//   identity: {}                                                        — plaintext (legacy values)
//   localKey: {name, path}          — fedtunnel's own, not Kubernetes': a 32-byte key-encryption key
//                                     in a local file (the sandbox default). Kubernetes' aescbc /
//                                     aesgcm / secretbox keep the key inside this file, which we
//                                     refuse on purpose: the key belongs in its own 0600 file.
import { parse as parseYaml } from 'yaml';
import { EncryptionError } from './errors.js';

export type ProviderConfig =
  | { type: 'identity' }
  | { type: 'kms'; name: string; endpoint: string; timeoutMs: number }
  | { type: 'localKey'; name: string; path: string };

export interface ResourceRule {
  /** "secrets", "federatedsecrets.types.kubefed.io", "*.types.kubefed.io", "*." (core) or "*.*". */
  resources: string[];
  /** The first encrypts new writes; all decrypt (by the stored prefix). */
  providers: ProviderConfig[];
}

export interface EncryptionConfig {
  rules: ResourceRule[];
}

export const DEFAULT_KMS_TIMEOUT_MS = 3_000;

/**
 * The resources encrypted by default: member credentials, their federated form, and the
 * PropagatedVersion records that keep a FederatedSecret's held-back template (gray release).
 */
export const DEFAULT_ENCRYPTED_RESOURCES = ['secrets', 'federatedsecrets.types.kubefed.io', 'propagatedversions.core.kubefed.io'];

function invalid(message: string): EncryptionError {
  return new EncryptionError('INVALID_CONFIG', `encryption configuration: ${message}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A Go duration ("3s", "1m30s", "500ms") in milliseconds. */
export function parseDuration(text: string): number {
  const re = /([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let end = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * UNITS[m[2]!]!;
    end = re.lastIndex;
  }
  if (text === '' || end !== text.length) throw new RangeError(`invalid duration "${text}"`);
  return total;
}

function providerName(where: string, v: unknown): string {
  if (typeof v !== 'string' || v === '') throw invalid(`${where}.name: required`);
  // The name is part of the stored prefix k8s:enc:…:<name>: so it cannot hold the separator.
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(v)) throw invalid(`${where}.name: at most 64 letters, digits, '-', '_' or '.' (no ':')`);
  return v;
}

function parseProvider(where: string, p: unknown): ProviderConfig {
  if (!isObject(p)) throw invalid(`${where}: expected a mapping`);
  const kinds = Object.keys(p);
  if (kinds.length !== 1) throw invalid(`${where}: exactly one provider type per entry, found ${kinds.length === 0 ? 'none' : kinds.join(', ')}`);
  const kind = kinds[0]!;
  const body = p[kind];
  switch (kind) {
    case 'identity':
      return { type: 'identity' };
    case 'kms': {
      if (!isObject(body)) throw invalid(`${where}.kms: expected a mapping`);
      if (body.apiVersion !== 'v2') throw invalid(`${where}.kms.apiVersion: only "v2" is supported (KMS v1 is deprecated in Kubernetes)`);
      const name = providerName(`${where}.kms`, body.name);
      if (typeof body.endpoint !== 'string' || !/^unix:\/\/\/.+/.test(body.endpoint)) throw invalid(`${where}.kms.endpoint: expected unix:///absolute/path.sock`);
      let timeoutMs = DEFAULT_KMS_TIMEOUT_MS;
      if (body.timeout !== undefined) {
        try {
          timeoutMs = parseDuration(String(body.timeout));
        } catch {
          throw invalid(`${where}.kms.timeout: expected a duration such as 3s`);
        }
        if (timeoutMs <= 0) throw invalid(`${where}.kms.timeout: must be positive`);
      }
      return { type: 'kms', name, endpoint: body.endpoint, timeoutMs };
    }
    case 'localKey': {
      if (!isObject(body)) throw invalid(`${where}.localKey: expected a mapping`);
      const name = providerName(`${where}.localKey`, body.name);
      if (typeof body.path !== 'string' || !body.path.startsWith('/')) throw invalid(`${where}.localKey.path: expected an absolute file path`);
      return { type: 'localKey', name, path: body.path };
    }
    case 'aescbc':
    case 'aesgcm':
    case 'secretbox':
      throw invalid(`${where}: provider "${kind}" is not supported (its key would live in this file); use kms (v2) or localKey`);
    default:
      throw invalid(`${where}: unknown provider type "${kind}"`);
  }
}

/** Parses the YAML (or JSON) text of an EncryptionConfiguration. */
export function parseEncryptionConfig(text: string): EncryptionConfig {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw invalid(`not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (!isObject(doc)) throw invalid('expected a mapping');
  if (doc.kind !== 'EncryptionConfiguration') throw invalid('kind must be EncryptionConfiguration');
  if (doc.apiVersion !== 'apiserver.config.k8s.io/v1') throw invalid('apiVersion must be apiserver.config.k8s.io/v1');
  if (!Array.isArray(doc.resources) || doc.resources.length === 0) throw invalid('resources: at least one entry is required');
  const seen = new Set<string>();
  const names = new Map<string, string>();
  const rules = doc.resources.map((r: unknown, i: number): ResourceRule => {
    const where = `resources[${i}]`;
    if (!isObject(r)) throw invalid(`${where}: expected a mapping`);
    if (!Array.isArray(r.resources) || r.resources.length === 0) throw invalid(`${where}.resources: at least one resource is required`);
    const resources = r.resources.map((name: unknown, j: number) => {
      if (typeof name !== 'string' || !/^(\*|[a-z0-9-]+)(\.(\*|[a-z0-9.-]*))?$/.test(name)) throw invalid(`${where}.resources[${j}]: expected "plural" or "plural.group"`);
      if (seen.has(name)) throw invalid(`${where}.resources[${j}]: "${name}" is listed twice`);
      seen.add(name);
      return name;
    });
    if (!Array.isArray(r.providers) || r.providers.length === 0) throw invalid(`${where}.providers: at least one provider is required`);
    const providers = r.providers.map((p: unknown, j: number) => parseProvider(`${where}.providers[${j}]`, p));
    for (const p of providers) {
      if (p.type === 'identity') continue;
      // One name is one key source: the same name with two settings would make old values ambiguous.
      const identity = JSON.stringify(p);
      const before = names.get(p.name);
      if (before !== undefined && before !== identity) throw invalid(`provider name "${p.name}" is used for two different providers`);
      names.set(p.name, identity);
    }
    return { resources, providers };
  });
  return { rules };
}

/** The resource name a configuration uses for a store key /registry/<group|core>/<plural>/…, or null. */
export function resourceOfKey(key: string): { plural: string; group: string } | null {
  const m = /^\/registry\/([^/]+)\/([^/]+)\//.exec(key);
  if (!m) return null;
  return { group: m[1] === 'core' ? '' : m[1]!, plural: m[2]! };
}

/** The rule covering a resource (first match wins, as in Kubernetes; exact names before wildcards). */
export function ruleFor(config: EncryptionConfig, plural: string, group: string): ResourceRule | null {
  const exact = group === '' ? plural : `${plural}.${group}`;
  for (const rule of config.rules) if (rule.resources.includes(exact)) return rule;
  for (const rule of config.rules) if (rule.resources.includes(`*.${group}`) || rule.resources.includes('*.*')) return rule;
  return null;
}

/** The EncryptionConfiguration written next to a SQLite store when none is given. */
export function defaultLocalKeyConfig(keyPath: string): string {
  return [
    '# Written by fedtunnel: secrets at rest are encrypted with the local key file below.',
    '# Keep the key file with backups of the database (without it the secrets cannot be read),',
    '# and never in the same place as a copy of the database you hand out.',
    'apiVersion: apiserver.config.k8s.io/v1',
    'kind: EncryptionConfiguration',
    'resources:',
    '  - resources:',
    ...DEFAULT_ENCRYPTED_RESOURCES.map((r) => `      - ${r}`),
    '    providers:',
    '      - localKey:',
    '          name: local1',
    `          path: ${JSON.stringify(keyPath)}`,
    '      # Reads values written before encryption was enabled.',
    '      - identity: {}',
    '',
  ].join('\n');
}
