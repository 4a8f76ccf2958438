// The topology conversion webhook's HTTPS server: POST /convert answers a ConversionReview with
// the pure conversion (review.ts), GET /healthz and GET /metrics; the listener guard bounds
// handshakes, request heads and idle connections. Bad input is a 4xx answer, never a crash.
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { ListenerGuard, type ListenerLimits } from '../../common/listener-guard.js';
import type { Logger } from '../../common/log.js';
import { sendMetrics } from '../../common/metrics.js';
import { parseJson, readBody } from '../apiserver/body.js';
import { ApiError } from '../apiserver/errors.js';
import { TopologyWebhookMetrics } from './metrics.js';
import { answerReview, type ReviewAnswer } from './review.js';

export interface TopologyWebhookServerOptions {
  tls: { cert: Buffer | string; key: Buffer | string };
  log: Logger;
  registry: Registry;
  limits: ListenerLimits;
  maxReviewBytes: number;
}

export interface TopologyWebhookServer {
  server: https.Server;
  guard: ListenerGuard;
}

function sendJson(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) }).end(text);
}

function status(code: number, reason: string, message: string): unknown {
  return { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, code, message };
}

export function createTopologyWebhookServer(options: TopologyWebhookServerOptions): TopologyWebhookServer {
  const { log } = options;
  const metrics = TopologyWebhookMetrics.of(options.registry);

  const convert = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = performance.now();
    let answer: ReviewAnswer;
    try {
      answer = answerReview(parseJson(await readBody(req, options.maxReviewBytes)));
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      metrics.answered('bad_request', 0, (performance.now() - started) / 1000);
      log.warn({ code: err.code, err: err.message }, 'conversion review refused');
      if (!res.headersSent && !res.destroyed) sendJson(res, err.code, err.toStatus());
      return;
    }
    metrics.answered(answer.outcome, answer.objects, (performance.now() - started) / 1000);
    if (answer.outcome === 'failed') {
      const message = (answer.body as { response?: { result?: { message?: string } } }).response?.result?.message;
      log.warn({ objects: answer.objects, err: message }, 'conversion failed');
    } else if (answer.outcome === 'bad_request') log.warn({ err: (answer.body as { message?: string }).message }, 'conversion review refused');
    else log.debug({ objects: answer.objects }, 'converted');
    sendJson(res, answer.status, answer.body);
  };

  const server = https.createServer({ ...options.tls }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const handled = ((): Promise<void> | void => {
      if (path === '/convert') {
        if (req.method !== 'POST') return void res.writeHead(405, { Allow: 'POST' }).end();
        return convert(req, res);
      }
      if (path === '/healthz' && req.method === 'GET') return void res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
      if (path === '/metrics' && req.method === 'GET') return sendMetrics(options.registry, res);
      sendJson(res, 404, status(404, 'NotFound', 'not found'));
    })();
    Promise.resolve(handled).catch((err: unknown) => {
      log.error({ err }, 'request failed');
      if (!res.headersSent) sendJson(res, 500, status(500, 'InternalError', 'internal error'));
      else res.destroy();
    });
  });
  const guard = new ListenerGuard({ listener: 'topology_webhook', limits: options.limits, registry: options.registry, log });
  guard.protect(server);
  return { server, guard };
}
