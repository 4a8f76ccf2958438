// Mocha root hooks (loaded with --require): whatever a failed test left running is killed at the
// end of the run, so a failure costs one red test, never a hung CI job. Processes inside member
// network namespaces are killed the same way (`ip netns exec` execs node: the pid is node's);
// then the namespaces this run created, and stale ones of dead runs, are deleted, and tmpfs mounts
// of storage fault tests unmounted.
import { killAllChildrenSync } from '../../common/spawn.js';
import { killAllChildren } from './processes.js';
import { reapNamespaces } from './netns.js';
import { unmountAll } from './tmpfs.js';

// Last resort when the run ends through process.exit() (mocha --exit, a crash) before afterAll.
process.once('exit', killAllChildrenSync);

export const mochaHooks = {
  async afterAll(): Promise<void> {
    await killAllChildren();
    await reapNamespaces();
    await unmountAll();
  },
};
