// Request bodies: size limit (413), media type (415), JSON/YAML decoding and nesting depth (400).
import type { IncomingMessage } from 'node:http';
import YAML, { Parser } from 'yaml';
import { errors } from './errors.js';
import { decodeProtobufObject, PROTOBUF_MEDIA_TYPE, ProtobufError } from './protobuf.js';

export const DEFAULT_MAX_BODY_BYTES = 3 * 1024 * 1024;

/**
 * Deepest nesting of objects and arrays a body may have. JSON.parse builds any depth, but the
 * recursive code after it (patches, JSON.stringify into the store) overflows the stack at a few
 * thousand levels: a 3 MiB body of brackets would be a 500. No Kubernetes object comes near this.
 */
export const MAX_BODY_DEPTH = 1000;

/** Whether objects and arrays in `value` nest deeper than `limit`; iterative, so any depth is measured. */
export function nestedDeeperThan(value: unknown, limit: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth > limit) return true;
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}

/**
 * YAML bodies nest less deep: the yaml package composes recursively and overflows the stack near
 * 800 levels of flow collections, and an overflow that lands inside V8's regular expression
 * compiler aborts the process ("RegExpCompiler Allocation failed") instead of throwing.
 */
export const MAX_YAML_DEPTH = 200;

/** Nesting of YAML collections, read from the parser's syntax tree, which is built without recursion. */
export function yamlDepth(text: string): number {
  let max = 0;
  const stack: Array<[unknown, number]> = [];
  for (const token of new Parser().parse(text)) stack.push([token, 0]);
  while (stack.length > 0) {
    const [token, depth] = stack.pop()! as [{ type?: string; value?: unknown; items?: Array<{ key?: unknown; value?: unknown }> } | undefined, number];
    if (token?.type === 'document') stack.push([token.value, depth]);
    else if (token?.type === 'block-map' || token?.type === 'block-seq' || token?.type === 'flow-collection') {
      max = Math.max(max, depth + 1);
      for (const item of token.items ?? []) stack.push([item.key, depth + 1], [item.value, depth + 1]);
    }
  }
  return max;
}

function checkDepth<T>(value: T): T {
  if (nestedDeeperThan(value, MAX_BODY_DEPTH)) throw errors.badRequest(`the request body nests objects and arrays deeper than ${MAX_BODY_DEPTH} levels`);
  return value;
}

export function mediaType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

/**
 * Reads the whole body, up to `limit` bytes. A larger body is read to its end and discarded (so the
 * client can finish sending and read the 413 Status), up to DRAIN_FACTOR × limit, then the
 * connection is cut.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const declared = Number(req.headers['content-length']);
    let tooLarge = Number.isFinite(declared) && declared > limit;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) tooLarge = true;
      if (tooLarge) {
        chunks.length = 0;
        if (size > limit * DRAIN_FACTOR && !done) {
          done = true;
          // Over HTTP/2 the request is one stream of a shared connection: only that stream is cut.
          const stream = (req as { stream?: { destroy(): void } }).stream;
          if (stream) stream.destroy();
          else req.socket.destroy();
          reject(errors.tooLarge(limit));
        }
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      if (tooLarge) reject(errors.tooLarge(limit));
      else resolve(Buffer.concat(chunks));
    });
    req.on('error', (err) => {
      if (done) return;
      done = true;
      reject(err);
    });
  });
}

const DRAIN_FACTOR = 4;

/** Decodes an object body (create/update/delete options) by its media type. */
export function decodeObjectBody(type: string, body: Buffer): unknown {
  if (type === 'application/json' || type === '') return parseJson(body);
  if (type === 'application/yaml') {
    const text = body.toString('utf8');
    if (yamlDepth(text) > MAX_YAML_DEPTH) throw errors.badRequest(`the YAML body nests collections deeper than ${MAX_YAML_DEPTH} levels`);
    let value: unknown;
    try {
      // Warnings (unknown tags, directives) would go to the server's stderr, written by any client.
      value = YAML.parse(text, { logLevel: 'error' }) as unknown;
    } catch (err) {
      throw errors.badRequest(`invalid YAML body: ${(err as Error).message}`);
    }
    return checkDepth(value);
  }
  if (type === PROTOBUF_MEDIA_TYPE) {
    try {
      return decodeProtobufObject(body);
    } catch (err) {
      if (err instanceof ProtobufError) throw errors.unsupportedMediaType(`${type} (${err.message})`);
      throw err;
    }
  }
  throw errors.unsupportedMediaType(type);
}

export function parseJson(body: Buffer): unknown {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8')) as unknown;
  } catch (err) {
    throw errors.badRequest(`invalid JSON body: ${(err as Error).message}`);
  }
  return checkDepth(value);
}
