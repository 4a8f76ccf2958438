// What a member object should be (pure): the template with the cluster's overrides, the managed
// label and a per-cluster hash of exactly that content; and, for an update, the fields the member
// owns carried over from the live object (KubeFed's field retention).
import { createHash } from 'node:crypto';
import type { KubeObject } from '../apiserver/storage.js';
import { applyOverrides, overridesFor } from '../kubefed/overrides.js';
import { MANAGED_LABEL, type TargetType } from '../kubefed/api.js';
import { DEFAULT_ANNOTATION_POLICY, HASH_ANNOTATION, type AnnotationPolicy } from '../kubefed/annotation-policy.js';
import { memberAnnotations, propagatedAnnotations } from './annotations.js';

/** Hash of the desired content for one cluster (template + that cluster's overrides), on the member object. */
export { HASH_ANNOTATION };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (isObject(v)) return `{${Object.keys(v).sort().filter((k) => v[k] !== undefined).map((k) => `${JSON.stringify(k)}:${stableJson(v[k])}`).join(',')}}`;
  return JSON.stringify(v ?? null);
}

export function targetApiVersion(t: TargetType): string {
  return t.group ? `${t.group}/${t.version}` : t.version;
}

export interface Desired {
  object: KubeObject;
  hash: string;
}

/**
 * The object `fed` asks for in `cluster`. Annotations (template, then overrides) are propagated as
 * `policy` says (KubeFed drops them all, kubefed#1215), with a record of their keys;
 * finalizers and server-set metadata never are. `clusterLabels` (the KubeFedCluster's labels)
 * decide which selector-based overrides apply. Throws OverrideError when an override cannot apply.
 */
export function desiredObject(fed: KubeObject, target: TargetType, cluster: string, policy: AnnotationPolicy = DEFAULT_ANNOTATION_POLICY, clusterLabels: Record<string, string> = {}): Desired {
  const spec = isObject(fed.spec) ? fed.spec : {};
  const template = structuredClone(isObject(spec.template) ? spec.template : {}) as Record<string, unknown>;
  const templateMeta = isObject(template.metadata) ? template.metadata : {};
  const { labels, annotations } = templateMeta as { labels?: Record<string, string>; annotations?: Record<string, string> };
  const metadata: KubeObject['metadata'] = { name: fed.metadata.name };
  if (target.namespaced) metadata.namespace = fed.metadata.namespace;
  if (labels && Object.keys(labels).length > 0) metadata.labels = { ...labels };
  if (annotations && Object.keys(annotations).length > 0) metadata.annotations = { ...annotations };
  const { metadata: _m, status: _s, ...body } = template;
  void [_m, _s];
  let object: KubeObject = { apiVersion: targetApiVersion(target), kind: target.kind, metadata, ...body };
  object = applyOverrides(object, overridesFor(fed, cluster, clusterLabels));
  // Filtered after the overrides, so the hash covers exactly the annotations members get.
  const propagated = propagatedAnnotations(policy, object.metadata.annotations);
  if (Object.keys(propagated).length > 0) object.metadata.annotations = propagated;
  else delete object.metadata.annotations;
  object.metadata.labels = { ...object.metadata.labels, [MANAGED_LABEL]: 'true' };
  const hash = createHash('sha256').update(stableJson(object)).digest('hex').slice(0, 20);
  object.metadata.annotations = { ...object.metadata.annotations, [HASH_ANNOTATION]: hash };
  return { object, hash };
}

function isService(t: TargetType): boolean {
  return t.group === '' && t.kind === 'Service';
}

/**
 * The object to PUT over `member`: desired content plus what the member cluster owns — its
 * resourceVersion, finalizers, every annotation the controller does not manage (`policy`
 * decides which recorded keys are still removed), a Service's allocated IPs and node ports, a
 * ServiceAccount's token secrets, and replicas when the federated object retains them.
 */
export function withRetainedFields(desired: KubeObject, member: KubeObject, target: TargetType, retainReplicas: boolean, policy: AnnotationPolicy = DEFAULT_ANNOTATION_POLICY): KubeObject {
  const out = structuredClone(desired);
  const mm = member.metadata;
  out.metadata.resourceVersion = mm.resourceVersion;
  if (mm.finalizers?.length) out.metadata.finalizers = [...mm.finalizers];
  out.metadata.annotations = memberAnnotations(out.metadata.annotations, mm.annotations, policy);
  const outSpec = isObject(out.spec) ? out.spec : undefined;
  const memberSpec = isObject(member.spec) ? member.spec : undefined;
  if (isService(target) && outSpec && memberSpec) {
    for (const field of ['clusterIP', 'clusterIPs', 'healthCheckNodePort'] as const) {
      if (outSpec[field] === undefined && memberSpec[field] !== undefined) outSpec[field] = structuredClone(memberSpec[field]);
    }
    if (Array.isArray(outSpec.ports) && Array.isArray(memberSpec.ports)) {
      const live = memberSpec.ports as Array<Record<string, unknown>>;
      for (const port of outSpec.ports as Array<Record<string, unknown>>) {
        if (port.nodePort !== undefined) continue;
        const match = live.find((p) => (port.name !== undefined ? p.name === port.name : p.port === port.port) && p.nodePort !== undefined);
        if (match) port.nodePort = match.nodePort;
      }
    }
  }
  if (target.group === '' && target.kind === 'ServiceAccount' && out.secrets === undefined && member.secrets !== undefined) out.secrets = structuredClone(member.secrets);
  if (retainReplicas && outSpec && memberSpec && memberSpec.replicas !== undefined) outSpec.replicas = memberSpec.replicas;
  return out;
}

/**
 * Whether `have` carries everything `want` says (objects: every key of want, recursively; arrays:
 * same length, element-wise). Fields only the member has — defaults, controller-set annotations —
 * do not count, so a member that adds them is not "drifted" (the update loop of kubefed#982).
 */
export function contains(have: unknown, want: unknown): boolean {
  if (want === undefined) return true;
  if (isObject(want)) {
    if (!isObject(have)) return false;
    return Object.keys(want).every((k) => contains(have[k], want[k]));
  }
  if (Array.isArray(want)) return Array.isArray(have) && have.length === want.length && want.every((w, i) => contains(have[i], w));
  return have === want;
}

/** The member object is as desired: it carries our hash and every field we manage. */
export function isUpToDate(member: KubeObject, write: KubeObject, hash: string): boolean {
  if (member.metadata.annotations?.[HASH_ANNOTATION] !== hash) return false;
  const { resourceVersion: _rv, ...meta } = write.metadata;
  void _rv;
  return contains(member, { ...write, metadata: meta });
}
