// Reading Prometheus text (a /metrics scrape) in tests.

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** "name{a="1",b="2"}" as a name and a canonical label string (labels sorted), so label order does not matter. */
function canonical(sample: string): string {
  const m = SAMPLE.exec(sample);
  if (!m) throw new Error(`not a metric sample: ${sample}`);
  const labels = [...(m[2] ?? '').matchAll(LABEL)].map(([, k, v]) => `${k}="${v}"`).sort();
  return `${m[1]}{${labels.join(',')}}`;
}

/** The value of one sample, e.g. `fedtunnel_x_total{listener="a"}` (labels in any order), 0 when absent. */
export function metric(text: string, sample: string): number {
  const want = canonical(sample);
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    if (canonical(line.slice(0, space)) === want) return Number(line.slice(space + 1));
  }
  return 0;
}
