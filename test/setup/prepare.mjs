// Runs before mocha (npm test): installs the Debian tools the tests drive as real clients and
// peers when they are missing, so a fresh machine and CI need no manual step.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { buildStandIn, standInExists } from './node-base.mjs';

const needed = [
  { bin: '/usr/bin/curl', pkg: 'curl' },
  { bin: '/usr/bin/tinyproxy', pkg: 'tinyproxy' },
  // A private mariadbd (its own data directory and port) for the MySQL fault test.
  { bin: '/usr/sbin/mariadbd', pkg: 'mariadb-server-core' },
  { bin: '/usr/bin/mariadb-install-db', pkg: 'mariadb-server-core' },
  // The container image test (test/deploy/dockerfile.test.ts): podman builds deploy/Dockerfile;
  // runc runs it where crun cannot (cgroup v1/v2 hybrids); debootstrap makes the Node base image
  // when no registry is reachable (node-base.mjs).
  { bin: '/usr/bin/podman', pkg: 'podman' },
  { bin: '/usr/sbin/runc', pkg: 'runc' },
  { bin: '/usr/sbin/debootstrap', pkg: 'debootstrap' },
  // Headless Chromium (driven by puppeteer-core) for the status page test, and a font for its text.
  { bin: '/usr/bin/chromium', pkg: 'chromium' },
  { bin: '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf', pkg: 'fonts-dejavu-core' },
];
const missing = [...new Set(needed.filter(({ bin }) => !fs.existsSync(bin)).map(({ pkg }) => pkg))];
if (missing.length > 0) {
  const apt = (args) => execFileSync('apt-get', args, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  console.log(`installing ${missing.join(', ')} for the tests`);
  try {
    apt(['install', '-y', '--no-install-recommends', ...missing]);
  } catch {
    apt(['update']);
    apt(['install', '-y', '--no-install-recommends', ...missing]);
  }
}

// The image test's Node base: the official image when the registry answers, else a local stand-in.
// A failure here only makes that test skip (with the reason), never stops the run.
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
