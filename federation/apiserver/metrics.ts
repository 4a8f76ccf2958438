// Prometheus metrics of the federation API server, on an injected registry: the hub's (its admin
// /metrics) for the embedded federation, the process's own (served on GET /metrics) for the
// standalone and member-mode binary. Label values come only from bounded sets — the verbs, the
// plurals of served types, "discovery" and "other" — never from what a client put in a URL.
import http from 'node:http';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { ListenerGuard, type ListenerLimits } from '../../common/listener-guard.js';
import type { Logger } from '../../common/log.js';
import type { Verb } from './authz.js';
import type { ConversionWebhookResult } from './conversion.js';
import { resourceVerb, type Route } from './routes.js';
import { perRegistry, sendMetrics } from '../../common/metrics.js';

export interface RequestLabels {
  /** A Kubernetes verb, or "other" for a method the path does not allow. */
  verb: Verb | 'other';
  /** The API group of a served type; "" for the core group and for everything that is not a served type. */
  group: string;
  /** The plural of a served type, "discovery" (version, API groups and resources, OpenAPI), or "other". */
  resource: string;
}

/** Is group/version/plural served now (a built-in type or a CRD)? */
export type IsServed = (group: string, version: string, plural: string) => boolean;

/** The labels of one request (pure). `watchQuery`: the query has watch=true (or 1). */
export function requestLabels(method: string, route: Route, watchQuery: boolean, isServed: IsServed): RequestLabels {
  switch (route.kind) {
    case 'resource': {
      const verb = resourceVerb(method, route, watchQuery) ?? 'other';
      if (!isServed(route.group, route.version, route.plural)) return { verb, group: '', resource: 'other' };
      return { verb, group: route.group, resource: route.plural };
    }
    case 'version':
    case 'apiVersions':
    case 'apiGroupList':
    case 'apiGroup':
    case 'resourceList':
    case 'openapiV3':
    case 'openapiV2':
      return { verb: method === 'GET' ? 'get' : 'other', group: '', resource: 'discovery' };
    case 'health':
    case 'metrics':
    case 'notFound':
      return { verb: method === 'GET' ? 'get' : 'other', group: '', resource: 'other' };
  }
}

/** The API server metrics of one registry (a second server on the same registry shares them). */
export class ApiServerMetrics {
  readonly requests: Counter<'verb' | 'group' | 'resource' | 'code'>;
  readonly requestDuration: Histogram<'verb'>;
  readonly storageRefusals: Counter<'code'>;
  readonly watches: Gauge<'resource'>;
  readonly conversionWebhookCalls: Counter<'result'>;
  readonly conversionWebhookDuration: Histogram<'result'>;
  readonly authorizationDecisions: Counter<'decision' | 'verb'>;
  readonly impersonations: Counter<'result'>;

  private constructor(registry: Registry) {
    const registers = [registry];
    this.requests = new Counter({
      name: 'fedtunnel_apiserver_requests_total',
      help: 'API server requests by verb, API group, resource (a served plural, "discovery" or "other") and HTTP status; 0: the client left before an answer. Counted when the response ends (watches: when the watch ends)',
      labelNames: ['verb', 'group', 'resource', 'code'],
      registers,
    });
    this.requestDuration = new Histogram({
      name: 'fedtunnel_apiserver_request_duration_seconds',
      help: 'Time from request to the end of the response, by verb (watches are not observed)',
      labelNames: ['verb'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.storageRefusals = new Counter({
      name: 'fedtunnel_apiserver_storage_refusals_total',
      help: 'Requests refused and watches ended because of the store, by store error code (UNAVAILABLE, NO_SPACE, READ_ONLY)',
      labelNames: ['code'],
      registers,
    });
    this.watches = new Gauge({ name: 'fedtunnel_apiserver_watches', help: 'Open watch responses, by resource', labelNames: ['resource'], registers });
    this.conversionWebhookCalls = new Counter({
      name: 'fedtunnel_apiserver_conversion_webhook_calls_total',
      help: 'CRD conversion webhook calls by result: ok, timeout, connection_failed (dial, TLS, connection), http_error (not 200), webhook_failed (result.status not Success), bad_response',
      labelNames: ['result'],
      registers,
    });
    this.conversionWebhookDuration = new Histogram({
      name: 'fedtunnel_apiserver_conversion_webhook_duration_seconds',
      help: 'CRD conversion webhook calls, from dial to a validated response or the failure, by result',
      labelNames: ['result'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.authorizationDecisions = new Counter({
      name: 'fedtunnel_apiserver_authorization_decisions_total',
      help: 'RBAC decisions on authenticated requests, by decision (allowed, denied) and verb (a resource verb, or the lower-case method of a non-resource request)',
      labelNames: ['decision', 'verb'],
      registers,
    });
    this.impersonations = new Counter({
      name: 'fedtunnel_apiserver_impersonation_total',
      help: 'Requests carrying Impersonate-* headers, by result: allowed, denied (RBAC refused one of them: 403), invalid (malformed headers: 400)',
      labelNames: ['result'],
      registers,
    });
  }

  static readonly of = perRegistry((registry) => new ApiServerMetrics(registry));

  /** Counts the request once its response has ended (or the client left): status, and the duration unless a watch. */
  track(res: { once(event: 'close', listener: () => void): unknown; headersSent: boolean; statusCode: number }, labels: RequestLabels): void {
    const started = performance.now();
    res.once('close', () => {
      const { verb, group, resource } = labels;
      this.requests.inc({ verb, group, resource, code: res.headersSent ? String(res.statusCode) : '0' });
      if (verb !== 'watch') this.requestDuration.observe({ verb }, (performance.now() - started) / 1000);
    });
  }

  conversionWebhookCall(result: ConversionWebhookResult, seconds: number): void {
    this.conversionWebhookCalls.inc({ result });
    this.conversionWebhookDuration.observe({ result }, seconds);
  }
}

/**
 * The plain-HTTP listener of `--metrics-listen` (scrapers on the pod network), behind the listener
 * guard like every listener: GET /metrics and nothing else, unauthenticated — so bound to loopback
 * or the pod network only.
 */
export function createMetricsServer(registry: Registry, guard: { listener: string; limits: ListenerLimits; log: Logger }): http.Server {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
      return;
    }
    if (req.method !== 'GET') {
      res.writeHead(405, { Allow: 'GET' }).end();
      return;
    }
    sendMetrics(registry, res);
  });
  new ListenerGuard({ listener: guard.listener, limits: guard.limits, registry, log: guard.log }).protect(server);
  return server;
}
