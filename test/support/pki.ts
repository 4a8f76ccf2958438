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
      { user: 'alice', groups: ['ops'] },
      { user: 'bob', groups: [] },
    ],
  });
  return cached;
}
