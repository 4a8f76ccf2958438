// A stand-in for docker.io/library/node:20-bookworm-slim on machines that cannot pull it (no
// registry access): Debian bookworm (debootstrap, from the apt mirror the machine already uses)
// plus this machine's own Node 20 and npm, imported into podman as localhost/fedtunnel-node:20.
// The image test builds deploy/Dockerfile on it with --build-arg NODE_IMAGE. The machine's CA
// bundle goes in too, so npm inside the build trusts what npm here trusts (an intercepting proxy's
// CA, if there is one); that image is for tests only, never shipped.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const STAND_IN = 'localhost/fedtunnel-node:20';

function podman(args, options = {}) {
  return execFileSync('podman', args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
}

export function standInExists() {
  try {
    podman(['image', 'exists', STAND_IN]);
    return true;
  } catch {
    return false;
  }
}

export function buildStandIn() {
  const prefix = path.dirname(path.dirname(fs.realpathSync(process.execPath)));
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'fedtunnel-node-base-'));
  const rootfs = path.join(work, 'rootfs');
  try {
    console.log(`building ${STAND_IN} (debootstrap bookworm + the Node ${process.version} of ${prefix}); a few minutes, once`);
    execFileSync('debootstrap', ['--variant=minbase', 'bookworm', rootfs, 'http://deb.debian.org/debian'], { stdio: ['ignore', 'ignore', 'inherit'] });
    for (const part of ['bin/node', 'include/node', 'lib/node_modules/npm']) {
      const target = path.join(rootfs, 'usr', part);
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.cpSync(path.join(prefix, part), target, { recursive: true, verbatimSymlinks: true });
    }
    fs.symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', path.join(rootfs, 'usr/bin/npm'));
    fs.symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', path.join(rootfs, 'usr/bin/npx'));
    fs.copyFileSync('/etc/ssl/certs/ca-certificates.crt', path.join(rootfs, 'usr/local/share/fedtunnel-build-ca.crt'));
    fs.rmSync(path.join(rootfs, 'var/cache/apt/archives'), { recursive: true, force: true });
    const tarball = path.join(work, 'rootfs.tar');
    execFileSync('tar', ['-C', rootfs, '-cf', tarball, '.']);
    podman([
      'import',
      '--change', 'ENV npm_config_nodedir=/usr',
      '--change', 'ENV NODE_EXTRA_CA_CERTS=/usr/local/share/fedtunnel-build-ca.crt',
      '--change', 'ENV npm_config_cafile=/usr/local/share/fedtunnel-build-ca.crt',
      '--change', 'CMD ["node"]',
      tarball, STAND_IN,
    ]);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
