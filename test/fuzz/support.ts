// Property-based fuzzing with fast-check, seeded and reproducible. Each target file declares its
// properties once with fuzzTarget(); the budget decides how many cases run:
//   - `npm run fuzz` (FUZZ_FULL=1): each property's full `runs`, times FUZZ_RUNS_SCALE (default 1);
//   - `npm test` (quick.test.ts imports every target): at most QUICK_RUNS cases per property.
// Every property draws from its own seed, derived from FUZZ_SEED and its name, so adding a property
// does not change what the others generate. A failure prints the counterexample, the seed and the
// fast-check path, and the command that replays exactly that case.
import fc from 'fast-check';

export const FULL = process.env.FUZZ_FULL === '1';
const QUICK_RUNS = 200;
const DEFAULT_SEED = 20261202;

function numberFromEnv(name: string, fallback: number, valid: (n: number) => boolean): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!valid(n)) throw new Error(`${name}=${text}: not a valid value`);
  return n;
}

export const FUZZ_SEED = numberFromEnv('FUZZ_SEED', DEFAULT_SEED, (n) => Number.isSafeInteger(n));
const SCALE = numberFromEnv('FUZZ_RUNS_SCALE', 1, (n) => Number.isFinite(n) && n > 0);
/** Replays one counterexample (with --grep naming its property), as printed by a failure. */
const REPLAY_PATH = process.env.FUZZ_PATH || undefined;

/** FNV-1a, so a property's seed depends only on FUZZ_SEED and the property's name. */
function seedFor(name: string): number {
  let hash = 0x811c9dc5;
  for (const c of Buffer.from(name)) hash = Math.imul(hash ^ c, 0x01000193);
  return (hash ^ FUZZ_SEED) | 0;
}

export interface FuzzProperty {
  /** Cases in the full run (`npm run fuzz` with FUZZ_RUNS_SCALE=1). */
  runs: number;
  /** Built lazily, so loading a target costs nothing when mocha filters it out. */
  property: () => fc.IRawProperty<unknown, boolean>;
}

interface Tally {
  cases: number;
  ms: number;
}
const tallies = new Map<string, Tally>();

/** Setup for targets that fuzz a real listener: run once around the target's properties. */
export interface FuzzHooks {
  before?: () => Promise<void>;
  after?: () => Promise<void>;
}

export function fuzzTarget(target: string, properties: Record<string, FuzzProperty>, hooks: FuzzHooks = {}): void {
  describe(`fuzz: ${target}`, function () {
    if (FULL) this.timeout(0);
    if (hooks.before) before(hooks.before);
    if (hooks.after) after(hooks.after);
    for (const [name, { runs, property }] of Object.entries(properties)) {
      it(name, async function () {
        const numRuns = FULL ? Math.max(1, Math.round(runs * SCALE)) : Math.min(runs, QUICK_RUNS);
        const seed = seedFor(`${target}: ${name}`);
        const started = performance.now();
        const details = await fc.check(property(), { seed, numRuns, path: REPLAY_PATH, verbose: 1 });
        const tally = tallies.get(target) ?? { cases: 0, ms: 0 };
        tally.cases += details.numRuns;
        tally.ms += performance.now() - started;
        tallies.set(target, tally);
        if (details.failed) {
          const grep = `fuzz: ${target} ${name}`;
          throw new Error(
            `${fc.defaultReportMessage(details) ?? 'property failed'}\n` +
              `FUZZ_SEED=${FUZZ_SEED} (property seed ${details.seed}), path ${JSON.stringify(details.counterexamplePath)}\n` +
              `replay: FUZZ_SEED=${FUZZ_SEED} FUZZ_PATH='${details.counterexamplePath ?? ''}' npm run fuzz -- --grep '${grep}'`,
          );
        }
      });
    }
  });
}

if (FULL) {
  before(function () {
    console.log(`fuzz: FUZZ_SEED=${FUZZ_SEED} FUZZ_RUNS_SCALE=${SCALE}${REPLAY_PATH ? ` FUZZ_PATH=${REPLAY_PATH}` : ''}`);
  });
  after(function () {
    const rows = [...tallies].map(([target, t]) => `  ${target.padEnd(40)} ${String(t.cases).padStart(10)} ${(t.ms / 1000).toFixed(1).padStart(8)} s`);
    const cases = [...tallies.values()].reduce((sum, t) => sum + t.cases, 0);
    const ms = [...tallies.values()].reduce((sum, t) => sum + t.ms, 0);
    console.log(`\nfuzz summary (FUZZ_SEED=${FUZZ_SEED})\n  ${'target'.padEnd(40)} ${'cases'.padStart(10)} ${'time'.padStart(10)}\n${rows.join('\n')}\n  ${'total'.padEnd(40)} ${String(cases).padStart(10)} ${(ms / 1000).toFixed(1).padStart(8)} s`);
  });
}

// Shared arbitraries.

/** Keys that break naive JavaScript object handling, mixed into generated objects like a fuzzer's dictionary. */
export const TRICKY_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', 'toJSON', 'length', '', '$patch', '$retainKeys'];

/** Object keys: mostly short strings, sometimes a tricky one or one from `known`. */
export function keyArb(known: readonly string[] = []): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.string({ maxLength: 6 }) },
    { weight: 1, arbitrary: fc.constantFrom(...TRICKY_KEYS) },
    ...(known.length ? [{ weight: 3, arbitrary: fc.constantFrom(...known) }] : []),
  );
}

/** JSON values whose object keys come from keyArb, so the dictionary words appear at every depth. */
export function jsonArb(known: readonly string[] = [], leaves: fc.Arbitrary<unknown>[] = [], maxDepth = 5): fc.Arbitrary<unknown> {
  const key = keyArb(known);
  const leaf = fc.oneof(fc.constant(null), fc.boolean(), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => x || 0), fc.string({ maxLength: 8 }), ...leaves);
  return fc.letrec<{ value: unknown }>((tie) => ({
    value: fc.oneof(
      { maxDepth, depthSize: 'small' },
      leaf,
      fc.array(tie('value'), { maxLength: 4 }),
      fc.array(fc.tuple(key, tie('value')), { maxLength: 5 }).map(objectFromEntries),
    ),
  })).value;
}

/** Like JSON.parse would build it: "__proto__" becomes an own property, not the prototype. */
export function objectFromEntries(entries: Array<[string, unknown]>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of entries) Object.defineProperty(out, k, { value: v, writable: true, enumerable: true, configurable: true });
  return out;
}

/** Cuts a buffer into chunks at the given (arbitrary, unsorted) positions. */
export function splitAt(buffer: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => (buffer.length === 0 ? 0 : c % (buffer.length + 1))))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    if (p > from) chunks.push(buffer.subarray(from, p));
    from = Math.max(from, p);
  }
  if (from < buffer.length) chunks.push(buffer.subarray(from));
  return chunks;
}

/** Asserts `fn` returns, or throws one of the typed errors; anything else fails the property. */
export function typedOrValue<T>(fn: () => T, ...typed: Array<abstract new (...args: never[]) => Error>): { value: T } | { error: Error } {
  try {
    return { value: fn() };
  } catch (error) {
    if (typed.some((cls) => error instanceof cls)) return { error: error as Error };
    throw error;
  }
}
