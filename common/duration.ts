// Durations on the command line ("90s", "1h", "30d", "1h30m"), in milliseconds. Days are
// allowed because certificate lifetimes and token TTLs are counted in them.
const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds of a duration like "1h30m"; throws a RangeError naming the text otherwise. */
export function parseDuration(text: string): number {
  const re = /(\d+)(ms|s|m|h|d)/y;
  let total = 0;
  let end = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * UNITS[m[2]!]!;
    end = re.lastIndex;
  }
  if (text === '' || end !== text.length) throw new RangeError(`invalid duration ${JSON.stringify(text)}: expected e.g. 90s, 15m, 1h, 30d`);
  return total;
}
