// Figures of the fault tests (time to a typed failure, time to recovery, data lost): printed under
// the test and appended as JSON lines to .test-tmp/fault-report.jsonl, the table of the fault suite.
import fs from 'node:fs';
import path from 'node:path';
import { scratchDir } from './paths.js';

export interface FaultFigures {
  fault: string;
  /** From the fault to the first typed failure a client saw. */
  typedFailureMs: number | null;
  /** From the end of the fault (restart, heal) to the first success. */
  recoveryMs: number | null;
  /** Acknowledged writes or requests lost; every test asserts 0. */
  lost: number;
  notes?: string;
}

export function reportFault(figures: FaultFigures): void {
  const ms = (v: number | null): string => (v === null ? '-' : `${v} ms`);
  console.log(`      ${figures.fault}: typed failure after ${ms(figures.typedFailureMs)}, recovery ${ms(figures.recoveryMs)}, lost ${figures.lost}${figures.notes ? ` (${figures.notes})` : ''}`);
  fs.appendFileSync(path.join(scratchDir('.'), 'fault-report.jsonl'), `${JSON.stringify({ ...figures, at: new Date().toISOString() })}\n`);
}
