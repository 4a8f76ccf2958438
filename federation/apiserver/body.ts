// Request bodies: size limit (413), media type (415), JSON/YAML decoding (400).
import type { IncomingMessage } from 'node:http';
import YAML from 'yaml';
import { errors } from './errors.js';
import { decodeProtobufObject, PROTOBUF_MEDIA_TYPE, ProtobufError } from './protobuf.js';

export const DEFAULT_MAX_BODY_BYTES = 3 * 1024 * 1024;

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
          req.socket.destroy();
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
    try {
      return YAML.parse(body.toString('utf8')) as unknown;
    } catch (err) {
      throw errors.badRequest(`invalid YAML body: ${(err as Error).message}`);
    }
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
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch (err) {
    throw errors.badRequest(`invalid JSON body: ${(err as Error).message}`);
  }
}
