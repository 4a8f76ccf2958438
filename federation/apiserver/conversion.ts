// Version conversion of custom resources (apiextensions.k8s.io/v1 contract): strategy None only
// rewrites apiVersion; strategy Webhook POSTs a ConversionReview over HTTPS (certificate checked
// against the CRD's caBundle), the connection being made through an injectable dialer (in the
// proxy-server: its tunnel dial()). Responses are validated strictly: any problem fails the whole
// request with a 500 InternalError Status, so no partially converted object is ever returned or written.
import { randomUUID } from 'node:crypto';
import https from 'node:https';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { MAX_BODY_DEPTH, nestedDeeperThan } from './body.js';
import { ApiError } from './errors.js';
import type { KubeObject } from './storage.js';
import type { CrdVersioning } from './types.js';

/**
 * Opens a byte stream to "host:port" (IPv6 hosts in brackets). `serverNameOf` says which name the
 * peer's certificate must carry when the dialer's addressing differs from it (the proxy-server's
 * tunnel naming, proxy-server/targets.ts); absent: the host itself.
 */
export interface Dialer {
  (hostPort: string): Promise<Duplex>;
  serverNameOf?(host: string): string;
}

export const DEFAULT_CONVERSION_TIMEOUT_MS = 10_000;

export function splitHostPort(hostPort: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(hostPort) ?? /^([^:]+):(\d+)$/.exec(hostPort);
  if (!m) throw new Error(`invalid host:port "${hostPort}"`);
  return { host: m[1]!, port: Number(m[2]) };
}

export const netDialer: Dialer = (hostPort) =>
  new Promise((resolve, reject) => {
    const { host, port } = splitHostPort(hostPort);
    const socket = net.connect({ host, port });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });

/** How a webhook call ended (the `result` label of the conversion webhook metrics). */
export type ConversionWebhookResult = 'ok' | 'timeout' | 'connection_failed' | 'http_error' | 'webhook_failed' | 'bad_response';

/** A failed conversion: a 500 InternalError Status for the client, `result` for the metrics. */
export class ConversionWebhookError extends ApiError {
  override name = 'ConversionWebhookError';

  constructor(
    readonly result: Exclude<ConversionWebhookResult, 'ok'>,
    crdName: string,
    why: string,
  ) {
    super(500, 'InternalError', `conversion webhook for ${crdName} failed: ${why}`);
  }
}

export interface ConverterOptions {
  dialer?: Dialer;
  timeoutMs?: number;
  /** Told of every webhook call: how it ended and how long it took (the API server's metrics). */
  onWebhookCall?: (result: ConversionWebhookResult, seconds: number) => void;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (isObject(v)) return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${stableJson(v[k])}`).join(',')}}`;
  return JSON.stringify(v ?? null);
}

/** What was asked of a conversion webhook. */
export interface ConversionRequest {
  uid: string;
  desiredAPIVersion: string;
  objects: KubeObject[];
}

/** Names a value in an error message without converting it (String() of {"toString": 1} throws). */
function describeValue(v: unknown): string {
  return typeof v === 'string' ? v : v === undefined ? 'no status' : `a status of type ${v === null ? 'null' : typeof v}`;
}

/**
 * Validates a webhook's ConversionReview response (the body text) against the request and returns
 * the converted objects, in order. Pure, so every way a response can be wrong is tested without a
 * webhook. Anything wrong is a ConversionWebhookError (500 InternalError).
 */
export function checkConversionResponse(crdName: string, text: string, request: ConversionRequest): KubeObject[] {
  const { uid, desiredAPIVersion, objects } = request;
  const fail = (why: string, result: 'bad_response' | 'webhook_failed' = 'bad_response'): Error => new ConversionWebhookError(result, crdName, why);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw fail('the response is not JSON');
  }
  // stableJson below recurses; a response nested deeper than any request body could be is refused.
  if (nestedDeeperThan(parsed, MAX_BODY_DEPTH)) throw fail(`the response nests deeper than ${MAX_BODY_DEPTH} levels`);
  if (!isObject(parsed) || parsed.kind !== 'ConversionReview' || !isObject(parsed.response)) throw fail('the response is not a ConversionReview with a response');
  const response = parsed.response;
  if (response.uid !== uid) throw fail(`the response uid ${JSON.stringify(response.uid)} does not match the request uid ${uid}`);
  const result = isObject(response.result) ? response.result : {};
  if (result.status !== 'Success') throw fail(`the webhook reported ${describeValue(result.status)}${typeof result.message === 'string' ? `: ${result.message}` : ''}`, 'webhook_failed');
  const converted = response.convertedObjects;
  if (!Array.isArray(converted)) throw fail('the response has no convertedObjects');
  if (converted.length !== objects.length) throw fail(`expected ${objects.length} converted objects, got ${converted.length}`);
  return converted.map((c: unknown, i) => {
    const orig = objects[i]!;
    if (!isObject(c) || !isObject(c.metadata)) throw fail(`converted object ${i} is not an object with metadata`);
    if (c.apiVersion !== desiredAPIVersion) throw fail(`converted object ${i} has apiVersion ${JSON.stringify(c.apiVersion)}, expected ${desiredAPIVersion}`);
    if (c.kind !== orig.kind) throw fail(`converted object ${i} changed kind from ${String(orig.kind)} to ${JSON.stringify(c.kind)}`);
    const { labels: _l1, annotations: _a1, ...origMeta } = orig.metadata;
    const { labels: _l2, annotations: _a2, ...newMeta } = c.metadata;
    void [_l1, _a1, _l2, _a2];
    for (const field of ['name', 'namespace', 'uid'] as const) {
      if (stableJson(origMeta[field]) !== stableJson(newMeta[field])) throw fail(`converted object ${i} changed metadata.${field}`);
    }
    if (stableJson(origMeta) !== stableJson(newMeta)) throw fail(`converted object ${i} changed metadata other than labels and annotations`);
    for (const m of ['labels', 'annotations'] as const) {
      const v = c.metadata[m];
      if (v !== undefined && (!isObject(v) || Object.values(v).some((x) => typeof x !== 'string'))) throw fail(`converted object ${i} has invalid metadata.${m}`);
    }
    return c as KubeObject;
  });
}

export class Converter {
  private readonly dialer: Dialer;
  private readonly timeoutMs: number;
  private readonly onWebhookCall: ConverterOptions['onWebhookCall'];

  constructor(options: ConverterOptions = {}) {
    this.dialer = options.dialer ?? netDialer;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_CONVERSION_TIMEOUT_MS;
    this.onWebhookCall = options.onWebhookCall;
  }

  /** Converts every object whose apiVersion is not `desiredAPIVersion` (order kept). */
  async convert(crd: CrdVersioning, objects: KubeObject[], desiredAPIVersion: string): Promise<KubeObject[]> {
    const pending = objects.map((o, i) => ({ o, i })).filter(({ o }) => o.apiVersion !== desiredAPIVersion);
    if (pending.length === 0) return objects;
    const out = [...objects];
    if (crd.conversion.strategy === 'None') {
      for (const { o, i } of pending) out[i] = { ...o, apiVersion: desiredAPIVersion };
      return out;
    }
    const converted = await this.webhook(crd, crd.conversion, pending.map((p) => p.o), desiredAPIVersion);
    pending.forEach(({ i }, j) => (out[i] = converted[j]!));
    return out;
  }

  private async webhook(crd: CrdVersioning, hook: Extract<CrdVersioning['conversion'], { strategy: 'Webhook' }>, objects: KubeObject[], desiredAPIVersion: string): Promise<KubeObject[]> {
    const uid = randomUUID();
    const review = { apiVersion: 'apiextensions.k8s.io/v1', kind: 'ConversionReview', request: { uid, desiredAPIVersion, objects } };
    const started = performance.now();
    let result: ConversionWebhookResult = 'ok';
    try {
      let text: string;
      try {
        text = await this.post(crd.name, hook.url, hook.caBundle, JSON.stringify(review));
      } catch (err) {
        throw err instanceof ConversionWebhookError ? err : new ConversionWebhookError('connection_failed', crd.name, (err as Error).message);
      }
      return checkConversionResponse(crd.name, text, { uid, desiredAPIVersion, objects });
    } catch (err) {
      result = err instanceof ConversionWebhookError ? err.result : 'bad_response';
      throw err;
    } finally {
      this.onWebhookCall?.(result, (performance.now() - started) / 1000);
    }
  }

  /** POSTs the review; a timeout or an answer other than 200 is a ConversionWebhookError, anything else a plain Error (the connection failed). */
  private async post(crdName: string, url: string, caBundle: string | undefined, body: string): Promise<string> {
    const u = new URL(url);
    if (u.protocol !== 'https:') throw new Error(`webhook URL ${url} is not https`);
    const host = u.hostname.replace(/^\[|\]$/g, '');
    const port = u.port ? Number(u.port) : 443;
    const ca = caBundle ? Buffer.from(caBundle, 'base64') : undefined;
    const deadline = Date.now() + this.timeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ConversionWebhookError('timeout', crdName, `timed out after ${this.timeoutMs} ms`)), this.timeoutMs);
    });
    let raw: Duplex | undefined;
    let socket: tls.TLSSocket | undefined;
    try {
      const dialing = this.dialer(net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`);
      dialing.then((s) => {
        // Dialed after the deadline: nobody uses this stream.
        if (Date.now() >= deadline && s !== raw) s.destroy();
      }, () => undefined);
      raw = await Promise.race([dialing, timeout]);
      const identity = this.dialer.serverNameOf?.(host) ?? host;
      socket = tls.connect({ socket: raw, ca, host: identity, ...(net.isIP(identity) ? {} : { servername: identity }) });
      return await Promise.race([
        timeout,
        new Promise<string>((resolve, reject) => {
          const req = https.request(
            {
              method: 'POST',
              host,
              port,
              path: `${u.pathname}${u.search}`,
              headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'Content-Length': Buffer.byteLength(body) },
              createConnection: () => socket!,
            },
            (res) => {
              const chunks: Buffer[] = [];
              res.on('data', (c: Buffer) => chunks.push(c));
              res.on('error', reject);
              res.on('end', () => {
                const text = Buffer.concat(chunks).toString('utf8');
                if (res.statusCode !== 200) reject(new ConversionWebhookError('http_error', crdName, `HTTP ${res.statusCode}: ${text.slice(0, 200)}`));
                else resolve(text);
              });
            },
          );
          req.on('error', reject);
          req.end(body);
        }),
      ]);
    } finally {
      clearTimeout(timer);
      socket?.destroy();
      raw?.destroy();
    }
  }
}
