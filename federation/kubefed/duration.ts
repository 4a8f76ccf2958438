// Go duration strings (time.ParseDuration), the form KubeFed's metav1.Duration fields take in YAML:
// "10s", "1m30s", "300ms", "1.5h", "0". Pure.

const UNIT_SECONDS: Record<string, number> = { ns: 1e-9, us: 1e-6, 'µs': 1e-6, 'μs': 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };
const PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;

/** Seconds of a Go duration string, or null when it is not one. */
export function parseGoDuration(text: string): number | null {
  let rest = text;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    if (rest[0] === '-') sign = -1;
    rest = rest.slice(1);
  }
  // Go accepts a bare "0" (and only that) without a unit.
  if (rest === '0') return 0;
  if (rest === '') return null;
  let seconds = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < rest.length) {
    const m = PART.exec(rest);
    if (!m) return null;
    seconds += Number(m[1]) * UNIT_SECONDS[m[2]!]!;
  }
  return sign * seconds;
}
