// Annotations on member objects (pure): the managed set a desired object carries (template
// annotations the policy propagates, plus a record of their keys), and the annotations an update
// writes over a live member object — the member's own untouched, keys propagated earlier and no
// longer wanted removed, managed keys set to the template's values.
import { isPreserved, isPropagated, PROPAGATED_ANNOTATION, RESERVED_ANNOTATIONS, type AnnotationPolicy } from '../kubefed/annotation-policy.js';

export type Annotations = Record<string, string>;

/**
 * The annotations the controller manages on members, from the desired object's annotations
 * (template after overrides): those the policy propagates, plus PROPAGATED_ANNOTATION naming
 * them when there are any. The record lives on the member object, so a restarted controller still
 * knows which keys it must remove when they leave the template or the policy.
 */
export function propagatedAnnotations(policy: AnnotationPolicy, annotations: Annotations | undefined): Annotations {
  const out: Annotations = {};
  for (const [key, value] of Object.entries(annotations ?? {})) if (isPropagated(policy, key)) out[key] = value;
  const keys = Object.keys(out).sort();
  if (keys.length > 0) out[PROPAGATED_ANNOTATION] = keys.join(',');
  return out;
}

/** The keys a member object's record says were propagated to it (annotation keys hold no commas). */
export function recordedKeys(annotations: Annotations | undefined): string[] {
  const raw = annotations?.[PROPAGATED_ANNOTATION];
  return raw ? raw.split(',').filter((k) => k !== '') : [];
}

/**
 * The annotations to write over `member`: every member annotation as it is, except the keys its
 * record names that `desired` no longer carries (removed from the template or the policy) — unless
 * the policy now preserves them, then they are left as they are — and `desired` on top.
 */
export function memberAnnotations(desired: Annotations | undefined, member: Annotations | undefined, policy: AnnotationPolicy): Annotations {
  const want = desired ?? {};
  const out: Annotations = { ...member };
  for (const key of recordedKeys(member)) {
    if (!(key in want) && !isPreserved(policy, key) && !RESERVED_ANNOTATIONS.has(key)) delete out[key];
  }
  if (!(PROPAGATED_ANNOTATION in want)) delete out[PROPAGATED_ANNOTATION];
  return { ...out, ...want };
}

/** What writing `next` over `current` does to annotations: keys set (added or changed) and keys removed. */
export function annotationChanges(current: Annotations | undefined, next: Annotations | undefined): { set: string[]; removed: string[] } {
  const before = current ?? {};
  const after = next ?? {};
  return {
    set: Object.keys(after).filter((k) => before[k] !== after[k]),
    removed: Object.keys(before).filter((k) => !(k in after)),
  };
}
