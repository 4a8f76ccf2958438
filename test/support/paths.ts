// Locations shared by the tests: compiled binaries and a scratch directory inside the checkout.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/ of the compiled project (this file lives in dist/test/support/). */
export const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const ROOT = path.resolve(DIST, '..');
export const SERVER_BIN = path.join(DIST, 'proxy-server', 'main.js');
export const AGENT_BIN = path.join(DIST, 'cluster-agent', 'main.js');
export const FEDCTL_BIN = path.join(DIST, 'federation', 'admin', 'main.js');
export const TOPOLOGY_WEBHOOK_BIN = path.join(DIST, 'federation', 'topology-webhook', 'main.js');

export function scratchDir(name: string): string {
  const dir = path.join(ROOT, '.test-tmp', name);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}
