// Leak checks for the test process: open handles and timers are compared with a baseline taken
// before the test started. Closed handles are released in the loop's close phase, so the check
// lets a few loop turns pass (bounded) before comparing.
import { strict as assert } from 'node:assert';
import { setImmediate as nextTurn, setTimeout as pause } from 'node:timers/promises';

type Counts = Map<string, number>;

const TRACKED = new Set(['TCPSocketWrap', 'TCPServerWrap', 'PipeWrap', 'PipeServerWrap', 'TLSWrap', 'Timeout', 'Immediate', 'ProcessWrap', 'FSReqCallback']);

function counts(): Counts {
  const result: Counts = new Map();
  for (const kind of process.getActiveResourcesInfo()) {
    if (TRACKED.has(kind)) result.set(kind, (result.get(kind) ?? 0) + 1);
  }
  return result;
}

/**
 * Call at the start of a before() hook and await it. It lets one loop turn pass first, because
 * mocha arms the hook's own timeout timer after the hook function starts: the baseline then
 * holds that timer just as the final check holds the after() hook's.
 */
export async function resourceBaseline(): Promise<Counts> {
  await nextTurn();
  return counts();
}

function excess(baseline: Counts): string[] {
  const now = counts();
  const extra: string[] = [];
  for (const [kind, n] of now) {
    const before = baseline.get(kind) ?? 0;
    if (n > before) extra.push(`${kind}: ${before} → ${n}`);
  }
  return extra;
}

export async function assertNoLeakedResources(baseline: Counts): Promise<void> {
  let extra = excess(baseline);
  // Sockets whose peer is another process close when that process's FIN arrives: allow up to
  // about two seconds of loop turns for it.
  for (let turn = 0; turn < 400 && extra.length > 0; turn++) {
    if (turn < 20) await nextTurn();
    else await pause(5);
    extra = excess(baseline);
  }
  assert.deepEqual(extra, [], `resources leaked by the test: ${extra.join(', ')}`);
}
