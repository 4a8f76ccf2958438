/**
 * One-call PKI for tests and the local sandbox: a CA plus every certificate a
 * deployment needs, kept in one directory and reused across runs.
 */
import fs from 'node:fs';
import {
  type CertKeyPair,
  type KeyPairPaths,
  type LeafRequest,
  createCA,
  issueLeafCert,
  keyPairPaths,
  leafCertSatisfies,
  readKeyPair,
  writeKeyPair,
} from './pki.js';

export interface ClusterSpec {
  name: string;
  tenant: string;
}

export interface UserSpec {
  user: string;
  groups: string[];
}

export interface PkiSpec {
  clusters: ClusterSpec[];
  users: UserSpec[];
  serverDnsNames?: string[];
  serverIps?: string[];
}

export interface PkiPaths {
  ca: KeyPairPaths;
  server: KeyPairPaths;
  agents: Record<string, KeyPairPaths>;
  users: Record<string, KeyPairPaths>;
}

/**
 * Creates whatever is missing in `dir` and returns the paths of every pair.
 * Existing leaf pairs are kept when they are still valid for the CA and name
 * what `spec` asks for; otherwise (e.g. a cluster moved to another tenant)
 * they are reissued. An existing CA is always kept, and a half-present one is
 * an error rather than silently replaced, since others may already trust it.
 */
export function ensurePki(dir: string, spec: PkiSpec): PkiPaths {
  const ca = ensureCA(dir);
  const ensureLeaf = (baseName: string, request: LeafRequest): KeyPairPaths => {
    const paths = keyPairPaths(dir, baseName);
    if (fs.existsSync(paths.cert) && fs.existsSync(paths.key) && leafCertSatisfies(ca, readKeyPair(dir, baseName), request)) {
      return paths;
    }
    return writeKeyPair(dir, baseName, issueLeafCert(ca, request));
  };

  const server = ensureLeaf('server', {
    kind: 'server',
    commonName: 'fedtunnel-proxy-server',
    dnsNames: spec.serverDnsNames ?? ['localhost'],
    ipAddresses: spec.serverIps ?? ['127.0.0.1', '::1'],
  });
  const agents: Record<string, KeyPairPaths> = {};
  for (const { name, tenant } of spec.clusters) {
    agents[name] = ensureLeaf(`agent-${name}`, { kind: 'agent', cluster: name, tenant });
  }
  const users: Record<string, KeyPairPaths> = {};
  for (const { user, groups } of spec.users) {
    users[user] = ensureLeaf(`client-${user}`, { kind: 'client', user, groups });
  }
  return { ca: keyPairPaths(dir, 'ca'), server, agents, users };
}

function ensureCA(dir: string): CertKeyPair {
  const paths = keyPairPaths(dir, 'ca');
  const certExists = fs.existsSync(paths.cert);
  if (certExists !== fs.existsSync(paths.key)) {
    throw new Error(`incomplete CA in ${dir}: expected both ${paths.cert} and ${paths.key}`);
  }
  if (certExists) return readKeyPair(dir, 'ca');
  const ca = createCA();
  writeKeyPair(dir, 'ca', ca);
  return ca;
}
