// metav1.LabelSelector ({matchLabels, matchExpressions}) as KubeFed's clusterSelector uses it:
// validation with Kubernetes' rules and conversion to the API server's label requirements, so
// matching is the same code as `kubectl get -l`. Pure.
import { isLabelKey, isLabelValue, type LabelRequirement } from '../apiserver/selectors.js';
import type { FieldError } from '../apiserver/validation.js';

export const SELECTOR_OPERATORS = ['In', 'NotIn', 'Exists', 'DoesNotExist'] as const;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Field errors of a label selector at `path` (Kubernetes' ValidateLabelSelector rules). */
export function validateLabelSelector(selector: unknown, path: string): FieldError[] {
  const errs: FieldError[] = [];
  const bad = (field: string, message: string): void => void errs.push({ field, message });
  if (!isObject(selector)) return [{ field: path, message: 'Invalid value: must be an object' }];
  const { matchLabels, matchExpressions } = selector;
  if (matchLabels !== undefined && matchLabels !== null) {
    if (!isObject(matchLabels)) bad(`${path}.matchLabels`, 'Invalid value: must be a map of strings');
    else {
      for (const [key, value] of Object.entries(matchLabels)) {
        if (!isLabelKey(key)) bad(`${path}.matchLabels`, `Invalid value: ${JSON.stringify(key)}: not a valid label key`);
        if (typeof value !== 'string' || !isLabelValue(value)) bad(`${path}.matchLabels`, `Invalid value: ${JSON.stringify(value)}: not a valid label value`);
      }
    }
  }
  if (matchExpressions !== undefined && matchExpressions !== null) {
    if (!Array.isArray(matchExpressions)) bad(`${path}.matchExpressions`, 'Invalid value: must be a list');
    else {
      matchExpressions.forEach((expr: unknown, i) => {
        const at = `${path}.matchExpressions[${i}]`;
        if (!isObject(expr)) return bad(at, 'Invalid value: must be an object');
        if (typeof expr.key !== 'string' || expr.key === '') bad(`${at}.key`, 'Required value');
        else if (!isLabelKey(expr.key)) bad(`${at}.key`, `Invalid value: ${JSON.stringify(expr.key)}: not a valid label key`);
        const values = expr.values ?? [];
        if (!Array.isArray(values) || values.some((v) => typeof v !== 'string')) return bad(`${at}.values`, 'Invalid value: must be a list of strings');
        values.forEach((v: string, j) => {
          if (!isLabelValue(v)) bad(`${at}.values[${j}]`, `Invalid value: ${JSON.stringify(v)}: not a valid label value`);
        });
        switch (expr.operator) {
          case 'In':
          case 'NotIn':
            if (values.length === 0) bad(`${at}.values`, 'Required value: must be specified when `operator` is \'In\' or \'NotIn\'');
            break;
          case 'Exists':
          case 'DoesNotExist':
            if (values.length > 0) bad(`${at}.values`, 'Forbidden: may not be specified when `operator` is \'Exists\' or \'DoesNotExist\'');
            break;
          case undefined:
          case '':
            bad(`${at}.operator`, 'Required value');
            break;
          default:
            bad(`${at}.operator`, `Unsupported value: ${JSON.stringify(expr.operator)}: supported values: ${SELECTOR_OPERATORS.map((o) => `"${o}"`).join(', ')}`);
        }
      });
    }
  }
  return errs;
}

export class SelectorShapeError extends Error {
  override readonly name = 'SelectorShapeError';
  readonly code = 'InvalidSelector';
}

/**
 * The requirements of a valid label selector ({} → none: it matches everything). Throws
 * SelectorShapeError for a selector validateLabelSelector rejects.
 */
export function labelSelectorRequirements(selector: Record<string, unknown>): LabelRequirement[] {
  const errs = validateLabelSelector(selector, 'selector');
  if (errs.length > 0) throw new SelectorShapeError(`${errs[0]!.field}: ${errs[0]!.message}`);
  const out: LabelRequirement[] = [];
  for (const [key, value] of Object.entries((selector.matchLabels ?? {}) as Record<string, string>)) out.push({ key, op: '=', value });
  for (const expr of (selector.matchExpressions ?? []) as Array<{ key: string; operator: string; values?: string[] }>) {
    const values = expr.values ?? [];
    switch (expr.operator) {
      case 'In':
        out.push({ key: expr.key, op: 'in', values });
        break;
      case 'NotIn':
        out.push({ key: expr.key, op: 'notin', values });
        break;
      case 'Exists':
        out.push({ key: expr.key, op: 'exists' });
        break;
      default:
        out.push({ key: expr.key, op: '!' });
    }
  }
  return out;
}
