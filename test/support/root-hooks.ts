// Mocha root hooks (loaded with --require): whatever a failed test left running is killed at the
// end of the run, so a failure costs one red test, never a hung CI job.
import { killAllChildren } from './processes.js';

export const mochaHooks = {
  async afterAll(): Promise<void> {
    await killAllChildren();
  },
};
