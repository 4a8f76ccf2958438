// Runs before the container image test (`npm run test:image`, run by .ci/run after `npm test`):
// installs podman, runc (podman's crun refuses this machine's cgroup v1/v2 hybrid) and debootstrap,
// and makes sure a Node 20 base image exists — the official one when the registry answers, else a
// local stand-in (node-base.mjs). Kept out of `npm test`: a fresh machine spends minutes here and
// in the first image build (native addons), which would push `npm test` past its 15 minutes.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { buildStandIn, standInExists } from './node-base.mjs';

const needed = [
  { bin: '/usr/bin/podman', pkg: 'podman' },
  { bin: '/usr/sbin/runc', pkg: 'runc' },
  { bin: '/usr/sbin/debootstrap', pkg: 'debootstrap' },
];
const missing = [...new Set(needed.filter(({ bin }) => !fs.existsSync(bin)).map(({ pkg }) => pkg))];
if (missing.length > 0) {
  const apt = (args) => execFileSync('apt-get', args, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  console.log(`installing ${missing.join(', ')} for the container image test`);
  try {
    apt(['install', '-y', '--no-install-recommends', ...missing]);
  } catch {
    apt(['update']);
    apt(['install', '-y', '--no-install-recommends', ...missing]);
  }
}

// A failure here only makes the image test skip (with the reason), never stops the run.
try {
  const official = 'docker.io/library/node:20-bookworm-slim';
  let available = false;
  try {
    execFileSync('podman', ['image', 'exists', official]);
    available = true;
  } catch {
    try {
      execFileSync('podman', ['pull', '--quiet', official], { stdio: 'ignore', timeout: 120_000 });
      available = true;
    } catch {
      available = standInExists();
    }
  }
  if (!available) buildStandIn();
} catch (error) {
  console.log(`no Node base image for the container image test (it will skip): ${error.message}`);
}
