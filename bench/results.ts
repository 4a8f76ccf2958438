// Result registry: flat dotted keys while measuring, a table and target verdicts for
// people, a nested object for --json.

export type ResultValues = Readonly<Record<string, number>>;

/**
 * A pass/miss condition over results. `check` may read keys that were never recorded
 * (they read as undefined, so arithmetic gives NaN); any non-finite outcome prints as n/a.
 */
export interface Target {
  label: string;
  check(results: ResultValues): number;
  min?: number;
  max?: number;
  /** Set when the target bounds a single key, so that the table shows it on that key's row. */
  key?: string;
}

/** A target that bounds one recorded value. */
export function limit(key: string, bound: { min?: number; max?: number }): Target {
  const relation = bound.min !== undefined ? `>= ${bound.min}` : `<= ${bound.max}`;
  return { label: `${key} ${relation}`, check: (results) => results[key], key, ...bound };
}

export class Results {
  private readonly values = new Map<string, number>();

  record(key: string, value: number): void {
    this.values.set(key, value);
  }

  snapshot(): ResultValues {
    return Object.fromEntries(this.values);
  }

  /** `{"a.b.c": 1}` becomes `{"a": {"b": {"c": 1}}}`; NaN becomes null. */
  toNested(): Record<string, unknown> {
    const root: Record<string, unknown> = {};
    for (const [key, value] of this.values) {
      const parts = key.split('.');
      let node = root;
      for (const part of parts.slice(0, -1)) {
        node[part] ??= {};
        node = node[part] as Record<string, unknown>;
      }
      node[parts[parts.length - 1]] = Number.isFinite(value) ? value : null;
    }
    return root;
  }

  /** The results table, then every target with its measured value and verdict. */
  format(targets: Target[]): string {
    const values = this.snapshot();
    const singleKeyTargets = new Map(targets.filter((t) => t.key !== undefined).map((t) => [t.key!, t]));
    // Keys a target bounds show up even when nothing recorded them, so that a gap is visible.
    const keys = [...new Set([...this.values.keys(), ...singleKeyTargets.keys()])];
    const rows = keys.map((key) => {
      const target = singleKeyTargets.get(key);
      return [key, formatNumber(values[key]), unitOf(key), target ? bound(target) : '', target ? verdict(target, values) : ''];
    });
    const lines = [...table(['key', 'value', 'unit', 'target', 'result'], rows), '', 'targets:'];
    lines.push(
      ...table(
        ['target', 'measured', 'bound', 'result'],
        targets.map((t) => [t.label, formatNumber(evaluate(t, values)), bound(t), verdict(t, values)]),
      ),
    );
    return lines.join('\n');
  }
}

function evaluate(target: Target, values: ResultValues): number {
  try {
    return target.check(values);
  } catch {
    return NaN;
  }
}

function verdict(target: Target, values: ResultValues): string {
  const measured = evaluate(target, values);
  if (typeof measured !== 'number' || !Number.isFinite(measured)) return 'n/a';
  const pass = (target.min === undefined || measured >= target.min) && (target.max === undefined || measured <= target.max);
  return pass ? 'pass' : 'miss';
}

function bound(target: Target): string {
  return [target.min !== undefined ? `>= ${target.min}` : '', target.max !== undefined ? `<= ${target.max}` : ''].filter(Boolean).join(' ');
}

function formatNumber(value: number | undefined): string {
  if (typeof value !== 'number' || !Number.isFinite(value)) return 'n/a';
  return Math.abs(value) >= 100 ? value.toFixed(1) : value.toFixed(3);
}

/** Units follow from the key naming convention: `throughput_MBps`, `latency_ms`, `bytes_per_…`, `…_ratio`. */
function unitOf(key: string): string {
  const parts = key.split('.');
  if (parts.some((part) => part.endsWith('_MBps'))) return 'MB/s';
  if (parts.some((part) => part.endsWith('_ms'))) return 'ms';
  const last = parts[parts.length - 1];
  if (last.startsWith('bytes_')) return 'B';
  if (last.endsWith('_ratio')) return 'x';
  return '';
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column].length)));
  const numeric = (column: number) => column === 1;
  return [header, ...rows].map((row) =>
    row
      .map((cell, column) => (numeric(column) ? cell.padStart(widths[column]) : cell.padEnd(widths[column])))
      .join('  ')
      .trimEnd(),
  );
}
