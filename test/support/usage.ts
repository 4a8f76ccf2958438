// Assertions for the command-line parsers of the binaries (wire/flags.ts UsageError).
import { strict as assert } from 'node:assert';
import { UsageError } from '../../common/flags.js';

/** Expects `run` to throw a UsageError (exit code 2) whose message names `flag` (or matches it). */
export function assertUsageError(run: () => unknown, flag: string | RegExp): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof UsageError, `expected UsageError, got ${String(error)}`);
    assert.equal(error.exitCode, 2);
    if (typeof flag === 'string') assert.ok(error.message.includes(flag), `message ${JSON.stringify(error.message)} should name ${flag}`);
    else assert.match(error.message, flag);
    return true;
  });
}
