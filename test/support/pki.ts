// One PKI for the whole test run, created on first use (idempotent across runs).
import { ensurePki, type PkiPaths } from '../../certs/bundle.js';
import { scratchDir } from './paths.js';

let cached: PkiPaths | undefined;

export const CLUSTERS = [
  { name: 'alpha', tenant: 'team-a' },
  { name: 'beta', tenant: 'team-b' },
];

export function testPki(): PkiPaths {
  cached ??= ensurePki(scratchDir('pki'), {
    clusters: CLUSTERS,
    users: [
      // root may do everything (system:masters): CONNECT to every cluster, as hubs without the
      // federation's RBAC let only masters through. alice (ops) and bob (no groups) have only what
      // a test binds them (RBAC; for CONNECT the verb proxy on clusters).
      { user: 'root', groups: ['system:masters'] },
      { user: 'alice', groups: ['ops'] },
      { user: 'bob', groups: [] },
      // tina is bound to tenant team-b (README "Tenants"): she reaches only beta, whatever RBAC grants.
      { user: 'tina', groups: ['fedtunnel:tenant:team-b'] },
      // rita's certificate is put on a hub's --revoked list by the tests that need a revoked user.
      { user: 'rita', groups: ['ops'] },
      // edge-proxy is the HTTP/2 reverse proxy a hub started with --agent-front-proxy edge-proxy trusts
      // to forward agent certificates (test/support/h2-reverse-proxy.ts).
      { user: 'edge-proxy', groups: [] },
    ],
  });
  return cached;
}
