// Minimal decoding of Kubernetes protobuf request bodies (application/vnd.kubernetes.protobuf), which
// kubectl's typed clients send for e.g. `kubectl create namespace` / `create configmap` / `create
// secret` / `create rolebinding` / `auth can-i`. Only metadata (name, generateName, namespace,
// labels, annotations, finalizers), the data maps of ConfigMap/Secret, the RBAC kinds and the
// access reviews are understood; other kinds are refused (415).
import { setOwn } from './own-properties.js';

export class ProtobufError extends Error {
  override name = 'ProtobufError';
}

export const PROTOBUF_MEDIA_TYPE = 'application/vnd.kubernetes.protobuf';
const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

interface Field {
  no: number;
  wire: number;
  value: bigint | Buffer;
}

function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (pos >= buf.length) throw new ProtobufError('truncated varint');
      const b = buf[pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 63n) throw new ProtobufError('varint too long');
    }
  };
  while (pos < buf.length) {
    const tag = Number(varint());
    const no = tag >>> 3;
    const wire = tag & 7;
    if (wire === 0) out.push({ no, wire, value: varint() });
    else if (wire === 2) {
      const len = Number(varint());
      if (pos + len > buf.length) throw new ProtobufError('truncated field');
      out.push({ no, wire, value: buf.subarray(pos, pos + len) });
      pos += len;
    } else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else throw new ProtobufError(`unsupported wire type ${wire}`);
    if (pos > buf.length) throw new ProtobufError('truncated field');
  }
  return out;
}

function bytesOf(f: Field): Buffer {
  if (!Buffer.isBuffer(f.value)) throw new ProtobufError(`field ${f.no} is not length-delimited`);
  return f.value;
}

const str = (f: Field): string => bytesOf(f).toString('utf8');

function mapEntry(f: Field, valueAs: 'string' | 'base64'): [string, string] {
  let key = '';
  let value = '';
  for (const e of fields(bytesOf(f))) {
    if (e.no === 1) key = str(e);
    else if (e.no === 2) value = valueAs === 'string' ? str(e) : bytesOf(e).toString('base64');
  }
  return [key, value];
}

function objectMeta(buf: Buffer): Record<string, unknown> {
  const meta: Record<string, unknown> = {};
  const labels: Record<string, string> = {};
  const annotations: Record<string, string> = {};
  const finalizers: string[] = [];
  for (const f of fields(buf)) {
    if (f.no === 1) meta.name = str(f);
    else if (f.no === 2) meta.generateName = str(f);
    else if (f.no === 3) meta.namespace = str(f);
    else if (f.no === 11) {
      const [k, v] = mapEntry(f, 'string');
      setOwn(labels, k, v);
    } else if (f.no === 12) {
      const [k, v] = mapEntry(f, 'string');
      setOwn(annotations, k, v);
    } else if (f.no === 14) finalizers.push(str(f));
  }
  for (const k of ['name', 'generateName', 'namespace']) if (meta[k] === '') delete meta[k];
  if (Object.keys(labels).length) meta.labels = labels;
  if (Object.keys(annotations).length) meta.annotations = annotations;
  if (finalizers.length) meta.finalizers = finalizers;
  return meta;
}

const strings = (parts: Field[], no: number): string[] => parts.filter((f) => f.no === no).map(str);

// Field numbers below are those of k8s.io/api/rbac/v1, authorization/v1 and meta/v1 generated.proto.

/** A PolicyRule. */
function policyRule(buf: Buffer): Record<string, unknown> {
  const parts = fields(buf);
  const rule: Record<string, unknown> = { verbs: strings(parts, 1) };
  const lists: Array<[string, number]> = [['apiGroups', 2], ['resources', 3], ['resourceNames', 4], ['nonResourceURLs', 5]];
  for (const [name, no] of lists) {
    const values = strings(parts, no);
    if (values.length) rule[name] = values;
  }
  return rule;
}

function labelSelector(buf: Buffer): Record<string, unknown> {
  const matchLabels: Record<string, string> = {};
  const matchExpressions: Array<Record<string, unknown>> = [];
  for (const f of fields(buf)) {
    if (f.no === 1) {
      const [k, v] = mapEntry(f, 'string');
      setOwn(matchLabels, k, v);
    } else if (f.no === 2) {
      const parts = fields(bytesOf(f));
      const key = parts.find((p) => p.no === 1);
      const operator = parts.find((p) => p.no === 2);
      matchExpressions.push({ key: key ? str(key) : '', operator: operator ? str(operator) : '', ...(strings(parts, 3).length ? { values: strings(parts, 3) } : {}) });
    }
  }
  return { ...(Object.keys(matchLabels).length ? { matchLabels } : {}), ...(matchExpressions.length ? { matchExpressions } : {}) };
}

/** A message of string fields only (Subject, RoleRef, ResourceAttributes, …): field number → JSON name. */
function stringFields(buf: Buffer, names: Record<number, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fields(buf)) {
    const name = names[f.no];
    if (name !== undefined && f.wire === 2) out[name] = str(f);
  }
  return out;
}

const SUBJECT = { 1: 'kind', 2: 'apiGroup', 3: 'name', 4: 'namespace' };
const ROLE_REF = { 1: 'apiGroup', 2: 'kind', 3: 'name' };
const RESOURCE_ATTRIBUTES = { 1: 'namespace', 2: 'verb', 3: 'group', 4: 'version', 5: 'resource', 6: 'subresource', 7: 'name' };
const NON_RESOURCE_ATTRIBUTES = { 1: 'path', 2: 'verb' };

/** SubjectAccessReviewSpec (user, groups) or SelfSubjectAccessReviewSpec (the attributes only). */
function accessReviewSpec(buf: Buffer): Record<string, unknown> {
  const spec: Record<string, unknown> = {};
  const parts = fields(buf);
  for (const f of parts) {
    if (f.no === 1) spec.resourceAttributes = stringFields(bytesOf(f), RESOURCE_ATTRIBUTES);
    else if (f.no === 2) spec.nonResourceAttributes = stringFields(bytesOf(f), NON_RESOURCE_ATTRIBUTES);
    else if (f.no === 3) spec.user = str(f);
    else if (f.no === 6) spec.uid = str(f);
  }
  if (strings(parts, 4).length) spec.groups = strings(parts, 4);
  return spec;
}

/** Decodes a protobuf-encoded object into its JSON form. */
export function decodeProtobufObject(body: Buffer): Record<string, unknown> {
  if (body.length < 4 || !body.subarray(0, 4).equals(MAGIC)) throw new ProtobufError('missing protobuf magic prefix');
  let apiVersion = '';
  let kind = '';
  let raw: Buffer | undefined;
  for (const f of fields(body.subarray(4))) {
    if (f.no === 1) {
      for (const t of fields(bytesOf(f))) {
        if (t.no === 1) apiVersion = str(t);
        else if (t.no === 2) kind = str(t);
      }
    } else if (f.no === 2) raw = bytesOf(f);
  }
  if (!raw) throw new ProtobufError('missing object');
  const obj: Record<string, unknown> = { apiVersion, kind };
  const parts = fields(raw);
  const maps: Record<string, Record<string, string>> = {};
  const put = (name: string, [k, v]: [string, string]): void => {
    setOwn((maps[name] ??= {}), k, v);
  };
  switch (kind) {
    case 'Namespace':
    case 'ServiceAccount':
    // kubectl auth whoami: metadata only (status is the server's answer).
    case 'SelfSubjectReview':
      for (const f of parts) if (f.no === 1) obj.metadata = objectMeta(bytesOf(f));
      break;
    case 'ConfigMap':
      for (const f of parts) {
        if (f.no === 1) obj.metadata = objectMeta(bytesOf(f));
        else if (f.no === 2) put('data', mapEntry(f, 'string'));
        else if (f.no === 3) put('binaryData', mapEntry(f, 'base64'));
        else if (f.no === 4 && f.wire === 0) obj.immutable = f.value !== 0n;
      }
      break;
    case 'Secret':
      for (const f of parts) {
        if (f.no === 1) obj.metadata = objectMeta(bytesOf(f));
        else if (f.no === 2) put('data', mapEntry(f, 'base64'));
        else if (f.no === 3) obj.type = str(f);
        else if (f.no === 4) put('stringData', mapEntry(f, 'string'));
        else if (f.no === 5 && f.wire === 0) obj.immutable = f.value !== 0n;
      }
      break;
    case 'Role':
    case 'ClusterRole':
      for (const f of parts) {
        if (f.no === 1) obj.metadata = objectMeta(bytesOf(f));
        else if (f.no === 2) ((obj.rules ??= []) as unknown[]).push(policyRule(bytesOf(f)));
        else if (f.no === 3) obj.aggregationRule = { clusterRoleSelectors: fields(bytesOf(f)).filter((s) => s.no === 1).map((s) => labelSelector(bytesOf(s))) };
      }
      break;
    case 'RoleBinding':
    case 'ClusterRoleBinding':
      for (const f of parts) {
        if (f.no === 1) obj.metadata = objectMeta(bytesOf(f));
        else if (f.no === 2) ((obj.subjects ??= []) as unknown[]).push(stringFields(bytesOf(f), SUBJECT));
        else if (f.no === 3) obj.roleRef = stringFields(bytesOf(f), ROLE_REF);
      }
      break;
    case 'SelfSubjectAccessReview':
    case 'SubjectAccessReview':
      for (const f of parts) {
        if (f.no === 1) obj.metadata = objectMeta(bytesOf(f));
        else if (f.no === 2) obj.spec = accessReviewSpec(bytesOf(f));
      }
      break;
    case 'SelfSubjectRulesReview':
      for (const f of parts) {
        if (f.no === 1) obj.metadata = objectMeta(bytesOf(f));
        else if (f.no === 2) obj.spec = stringFields(bytesOf(f), { 1: 'namespace' });
      }
      break;
    default:
      throw new ProtobufError(`protobuf bodies of kind ${JSON.stringify(kind)} are not supported; send JSON`);
  }
  Object.assign(obj, maps);
  obj.metadata ??= {};
  return obj;
}
