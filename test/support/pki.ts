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
      // alice may CONNECT to every cluster (system:masters, the only users hubs without the
      // federation's RBAC let through); bob only where a test binds him (RBAC verb proxy).
      { user: 'alice', groups: ['ops', 'system:masters'] },
      { user: 'bob', groups: [] },
    ],
  });
  return cached;
}
