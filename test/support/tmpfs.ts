// Small tmpfs mounts for storage fault tests (a disk that fills up, a file system that turns
// read-only). Needs root (CAP_SYS_ADMIN). Every mount made here is tracked: the root hooks unmount
// whatever a failed test left behind.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
/** mount/umount of a tmpfs is instant; this bounds a hung call. */
const MOUNT_BOUND_MS = 10_000;

const mounted = new Set<string>();

/** Null if this process may mount a tmpfs, else why not. */
export async function tmpfsUnavailable(probeDir: string): Promise<string | null> {
  if (process.getuid?.() !== 0) return 'mounting a tmpfs needs root';
  try {
    await mountTmpfs(probeDir, 64 * 1024);
    await unmount(probeDir);
    return null;
  } catch (error) {
    return `cannot mount a tmpfs: ${String(error)}`;
  }
}

/**
 * For a before() hook: mounts a tmpfs of `sizeBytes` at `dir`/mnt and returns that path; where
 * this process cannot mount one the suite is skipped with the reason (under CI: fails, naming `need`).
 */
export async function mountTmpfsOrSkip(context: Mocha.Context, dir: string, sizeBytes: number, need: string): Promise<string> {
  const why = await tmpfsUnavailable(path.join(dir, 'probe'));
  if (why) {
    if (process.env.CI) throw new Error(`${need} needs a tmpfs: ${why}`);
    console.log(`      skipping: ${why}`);
    context.skip();
  }
  const mnt = path.join(dir, 'mnt');
  await mountTmpfs(mnt, sizeBytes);
  return mnt;
}

export async function mountTmpfs(dir: string, sizeBytes: number): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  await run('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes},mode=0755`, 'tmpfs', dir], { timeout: MOUNT_BOUND_MS });
  mounted.add(dir);
}

/** Remounts read-only (every later write gets EROFS) or read-write again. */
export async function remount(dir: string, mode: 'ro' | 'rw'): Promise<void> {
  await run('mount', ['-o', `remount,${mode}`, dir], { timeout: MOUNT_BOUND_MS });
}

/** Unmounts; a mount still busy (a file open in a killed child not yet reaped) is detached lazily. */
export async function unmount(dir: string): Promise<void> {
  if (!mounted.has(dir)) return;
  try {
    await run('umount', [dir], { timeout: MOUNT_BOUND_MS });
  } catch {
    await run('umount', ['-l', dir], { timeout: MOUNT_BOUND_MS });
  }
  mounted.delete(dir);
}

/** Fills the file system holding `file` until ENOSPC, in shrinking chunks so not even a page is left. */
export function fillFileSystem(file: string): void {
  const fd = fs.openSync(file, 'w');
  try {
    for (let chunk = 64 * 1024; chunk >= 512; chunk /= 8) {
      const buf = Buffer.alloc(chunk, 0x5a);
      for (;;) {
        try {
          fs.writeSync(fd, buf);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
          break;
        }
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}

export async function unmountAll(): Promise<void> {
  for (const dir of [...mounted]) await unmount(dir).catch(() => undefined);
}
