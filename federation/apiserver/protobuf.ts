// Minimal decoding of Kubernetes protobuf request bodies (application/vnd.kubernetes.protobuf), which
// kubectl's typed clients send for e.g. `kubectl create namespace` / `create configmap` / `create
// secret`. Only metadata (name, generateName, namespace, labels, annotations, finalizers) and the
// data maps of ConfigMap/Secret are understood; other kinds are refused (415).
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
    default:
      throw new ProtobufError(`protobuf bodies of kind ${JSON.stringify(kind)} are not supported; send JSON`);
  }
  Object.assign(obj, maps);
  obj.metadata ??= {};
  return obj;
}
