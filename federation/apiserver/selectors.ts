// Label and field selectors (pure): parse the query-string form, match against labels/fields.
// Throws SelectorError on malformed input; the HTTP layer turns it into 400 BadRequest.

export class SelectorError extends Error {
  override name = 'SelectorError';
}

export type LabelRequirement =
  | { key: string; op: 'exists' | '!' }
  | { key: string; op: '=' | '!='; value: string }
  | { key: string; op: 'in' | 'notin'; values: string[] };

const KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;

export function isLabelKey(key: string): boolean {
  return KEY.test(key);
}

export function isLabelValue(value: string): boolean {
  return VALUE.test(value);
}

function checkKey(key: string): string {
  if (!isLabelKey(key)) throw new SelectorError(`invalid label key "${key}"`);
  return key;
}

function checkValue(value: string): string {
  if (!isLabelValue(value)) throw new SelectorError(`invalid label value "${value}"`);
  return value;
}

/** Splits on commas outside parentheses. */
function splitTop(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '(') depth++;
    else if (c === ')') {
      depth--;
      if (depth < 0) throw new SelectorError('unbalanced parentheses');
    } else if (c === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  if (depth !== 0) throw new SelectorError('unbalanced parentheses');
  parts.push(text.slice(start));
  return parts;
}

export function parseLabelSelector(text: string | null | undefined): LabelRequirement[] {
  if (text === null || text === undefined || text.trim() === '') return [];
  return splitTop(text).map((raw) => {
    const part = raw.trim();
    if (part === '') throw new SelectorError('empty requirement in label selector');
    let m = /^!\s*(\S+)$/.exec(part);
    if (m) return { key: checkKey(m[1]!), op: '!' as const };
    m = /^(\S+?)\s+(in|notin)\s*\((.*)\)$/.exec(part);
    if (m) {
      const values = m[3]!.split(',').map((v) => checkValue(v.trim()));
      return { key: checkKey(m[1]!), op: m[2] as 'in' | 'notin', values };
    }
    m = /^([^=!\s]+)\s*(==|=|!=)\s*(.*)$/.exec(part);
    if (m) return { key: checkKey(m[1]!), op: m[2] === '!=' ? ('!=' as const) : ('=' as const), value: checkValue(m[3]!.trim()) };
    if (/^[^\s=!()]+$/.test(part)) return { key: checkKey(part), op: 'exists' as const };
    throw new SelectorError(`unable to parse requirement "${part}"`);
  });
}

export function matchLabels(requirements: LabelRequirement[], labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  return requirements.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(l, r.key);
    const v = has ? l[r.key] : undefined;
    switch (r.op) {
      case 'exists':
        return has;
      case '!':
        return !has;
      case '=':
        return has && v === r.value;
      case '!=':
        return !has || v !== r.value;
      case 'in':
        return has && r.values.includes(v!);
      case 'notin':
        return !has || !r.values.includes(v!);
    }
  });
}

export interface FieldRequirement {
  field: string;
  op: '=' | '!=';
  value: string;
}

export const SUPPORTED_FIELDS = ['metadata.name', 'metadata.namespace'] as const;

export function parseFieldSelector(text: string | null | undefined, supported: readonly string[] = SUPPORTED_FIELDS): FieldRequirement[] {
  if (text === null || text === undefined || text.trim() === '') return [];
  return text.split(',').map((raw) => {
    const m = /^\s*([^=!\s]+)\s*(==|=|!=)\s*(.*?)\s*$/.exec(raw);
    if (!m) throw new SelectorError(`invalid field selector requirement "${raw}"`);
    if (!supported.includes(m[1]!)) throw new SelectorError(`field label not supported: ${m[1]}`);
    return { field: m[1]!, op: m[2] === '!=' ? ('!=' as const) : ('=' as const), value: m[3]! };
  });
}

export function matchFields(requirements: FieldRequirement[], fields: Record<string, string>): boolean {
  return requirements.every((r) => {
    const v = fields[r.field] ?? '';
    return r.op === '=' ? v === r.value : v !== r.value;
  });
}

/** The value an equality requirement pins a field to, if any (lets a list narrow its key prefix). */
export function pinnedField(requirements: FieldRequirement[], field: string): string | undefined {
  return requirements.find((r) => r.field === field && r.op === '=')?.value;
}
