// A minimal OpenAPI v2 (Swagger 2.0) document at /openapi/v2. kubectl 1.27/1.28 fetch it for apply
// (to look up patch strategies) and fail on a 404; an empty document makes them fall back to their
// built-in types. kubectl asks for the protobuf form (gnostic openapi_v2.Document); JSON otherwise.
import type { IncomingMessage, ServerResponse } from 'node:http';

/** What kubectl sends in Accept; not a valid media type for Go's mime parser, so responses use the dotted form (as kube-openapi does). */
export const OPENAPI_V2_PROTOBUF = 'application/com.github.proto-openapi.spec.v2@v1.0+protobuf';
export const OPENAPI_V2_PROTOBUF_RESPONSE = 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf';

const TITLE = 'fedtunnel apiserver';
const VERSION = 'v1.32.0';

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

function lengthDelimited(field: number, bytes: Buffer): Buffer {
  return Buffer.concat([Buffer.from([(field << 3) | 2, ...varint(bytes.length)]), bytes]);
}

/** openapi_v2.Document{swagger: "2.0", info: {title, version}, paths: {}} in protobuf wire format. */
export function openApiV2Protobuf(): Buffer {
  const info = Buffer.concat([lengthDelimited(1, Buffer.from(TITLE)), lengthDelimited(2, Buffer.from(VERSION))]);
  return Buffer.concat([lengthDelimited(1, Buffer.from('2.0')), lengthDelimited(2, info), lengthDelimited(8, Buffer.alloc(0))]);
}

export const OPENAPI_V2_JSON = { swagger: '2.0', info: { title: TITLE, version: VERSION }, paths: {}, definitions: {} };

export function sendOpenApiV2(req: IncomingMessage, res: ServerResponse): void {
  const accept = req.headers.accept ?? '';
  const proto = accept.includes(OPENAPI_V2_PROTOBUF) || accept.includes(OPENAPI_V2_PROTOBUF_RESPONSE);
  const body = proto ? openApiV2Protobuf() : Buffer.from(JSON.stringify(OPENAPI_V2_JSON));
  res.writeHead(200, { 'Content-Type': proto ? OPENAPI_V2_PROTOBUF_RESPONSE : 'application/json', 'Content-Length': body.length, 'Cache-Control': 'no-cache, private' });
  res.end(body);
}
