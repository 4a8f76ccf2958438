// podman for the container image test: whether it is usable here, which Node base image to build
// on, and the flags that let it run containers in a sandbox without CAP_SYS_RESOURCE.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const OFFICIAL_NODE_IMAGE = 'docker.io/library/node:20-bookworm-slim';
/** Made by test/setup/node-base.mjs where the registry is out of reach. */
export const STAND_IN_NODE_IMAGE = 'localhost/fedtunnel-node:20';

export async function podman(args: string[], timeoutMs = 120_000): Promise<{ stdout: string; stderr: string }> {
  return run('podman', args, { timeout: timeoutMs, maxBuffer: 64 << 20 });
}

/**
 * Flags for `podman run` and `podman build`: runc (crun refuses cgroup v1/v2 hybrid hosts) and
 * resource limits no higher than this process's own hard limits, because a process without
 * CAP_SYS_RESOURCE (containers, CI sandboxes) cannot raise them and podman's defaults do.
 */
export function containerFlags(): string[] {
  const limits = fs.readFileSync('/proc/self/limits', 'utf8');
  const hard = (name: string): string => new RegExp(`^${name}\\s+\\S+\\s+(\\S+)`, 'm').exec(limits)?.[1] ?? 'unlimited';
  const nofile = hard('Max open files');
  const flags = ['--runtime', 'runc'];
  if (nofile !== 'unlimited') flags.push('--ulimit', `nofile=${nofile}:${nofile}`);
  // A small fixed process limit is always below the hard one; a container runs one node process.
  flags.push('--ulimit', 'nproc=4096:4096');
  return flags;
}

/** Why the image test cannot run here, or null. */
export async function podmanMissing(): Promise<string | null> {
  if (!fs.existsSync('/usr/bin/podman')) return 'podman is not installed (test/setup/image-prepare.mjs installs it: npm run test:image)';
  if (!fs.existsSync('/usr/sbin/runc')) return 'runc is not installed (test/setup/image-prepare.mjs installs it: npm run test:image)';
  return null;
}

/** The Node 20 base image to build on: the official one if present locally, else the stand-in. */
export async function nodeBaseImage(): Promise<string | null> {
  for (const image of [OFFICIAL_NODE_IMAGE, STAND_IN_NODE_IMAGE]) {
    const exists = await podman(['image', 'exists', image]).then(() => true, () => false);
    if (exists) return image;
  }
  return null;
}
