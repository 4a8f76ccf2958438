// The HTTPS front of the API server: client-certificate authentication, authorization, routing to
// discovery documents and resource operations, Status errors for every failure.
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { Registry } from 'prom-client';
import type { Logger } from '../../common/log.js';
import { DEFAULT_LISTENER_LIMITS, ListenerGuard, type ListenerLimits } from '../../common/listener-guard.js';
import { closeServer, listenTcp } from '../../common/listen.js';
import { ALPN_H2_FIRST, serveHttp2 } from '../../common/http2-listener.js';
import { sendMetrics } from '../../common/metrics.js';
import { StoreError, type Store } from '../store/types.js';
import { RequestAuthenticator, revokedClientCertificate, unauthenticatedReason, type TokenAuthenticator } from './authn.js';
import type { OidcAuthenticator } from './oidc.js';
import { forbiddenMessage, type UserInfo } from './authz.js';
import { answerReview, isReviewType } from './access-review.js';
import { decideImpersonation, ImpersonationForbidden } from './impersonation.js';
import { effectiveGroups, isResourceRequest, type Attributes, type Authorizer } from './rbac.js';
import { installRbac } from './rbac-install.js';
import { isRbacType } from './rbac-api.js';
import { escalationError } from './rbac-escalation.js';
import { DEFAULT_MAX_BODY_BYTES, decodeObjectBody, mediaType, parseJson, readBody } from './body.js';
import { apiGroup, apiGroupList, apiResourceList, apiVersions, SERVER_VERSION } from './discovery.js';
import type { Dialer } from './conversion.js';
import { installCrdSupport } from './crd.js';
import { installKubeFed, type TenancyOptions } from '../kubefed/install.js';
import type { TopologyWebhookConfig } from '../kubefed/crds.js';
import { ApiError, errors } from './errors.js';
import { ApiServerMetrics, requestLabels } from './metrics.js';
import { openApiV3 } from './openapi.js';
import { sendOpenApiV2 } from './openapiv2.js';
import { PROTOBUF_MEDIA_TYPE } from './protobuf.js';
import { PATCH_TYPES } from './patch.js';
import { Resources } from './resources.js';
import { parseRequestUrl, resourceVerb, type ResourceRoute, type Route } from './routes.js';
import { parseFieldSelector, parseLabelSelector, SelectorError } from './selectors.js';
import { parseResourceVersion, type KubeObject } from './storage.js';
import { toTable, wantsTable } from './table.js';
import { groupVersion, type ResourceType, type TypeRegistry } from './types.js';
import { serveWatch } from './watch.js';
import { installPods } from './pods/install.js';
import { podStreamKind } from './pods/streaming.js';

export interface ApiServerOptions {
  store: Store;
  registry: TypeRegistry;
  tls: { ca: Buffer | string; cert: Buffer | string; key: Buffer | string };
  log: Logger;
  maxBodyBytes?: number;
  bookmarkIntervalMs?: number;
  /** Static bearer tokens (--token-file); client certificates are always accepted. */
  tokens?: TokenAuthenticator;
  /** OIDC ID tokens (--oidc-*), tried after client certificates and the token file. */
  oidc?: OidcAuthenticator;
  /** Opens connections to CRD conversion webhooks (default: net.connect; in the proxy-server: its tunnel dial()). */
  dialer?: Dialer;
  conversionTimeoutMs?: number;
  /**
   * Serve the KubeFed API (core.kubefed.io, Federated<Kind> types); defaultTypes: also the default
   * FederatedTypeConfigs; topologyWebhook: also serve the cell form v1beta2, converted by that webhook;
   * tenancy: the tenants of agent certificates and where untenanted objects go.
   */
  kubefed?: { defaultTypes: boolean; topologyWebhook?: TopologyWebhookConfig; tenancy?: TenancyOptions };
  /** Certificate revocation (--revoked): a verified client certificate whose serial (hex) this accepts is refused with 403. */
  isRevoked?: (serialHex: string) => boolean;
  /** The listener's name (log field and metrics label) and limits (handshake, header, idle, unauthenticated connections). */
  listener?: { name: string; limits: ListenerLimits };
  /**
   * Where this server's metrics go (requests, storage refusals, watches, conversion webhooks,
   * listener refusals): in the proxy-server the hub's registry (its admin /metrics); default a
   * registry of its own.
   */
  metrics?: Registry;
  /** Serve GET /metrics (Prometheus text of `metrics`) to authenticated users, as kube-apiserver does. */
  serveMetrics?: boolean;
  /**
   * Offer HTTP/2 (ALPN h2, then http/1.1), as kube-apiservers do: the hub multiplexes every
   * /clusters request and watch for a member over one h2 connection. Member mode sets it.
   */
  http2?: boolean;
  /** Member mode: serve pods with exec/attach/port-forward/log; execEnabled runs processes (--enable-pod-exec). */
  pods?: { execEnabled: boolean };
  /**
   * Log one info line per authenticated request with the identity it runs as (after impersonation)
   * and who impersonated it (--log-identities): proof of which identity reached a member. Off by
   * default: one line per request is too chatty for the hub.
   */
  logIdentities?: boolean;
}

export interface ApiServer {
  server: https.Server;
  resources: Resources;
  /** RBAC over this server's objects (in memory, watch-fed): what the hub's other front doors authorize with. */
  authorizer: Authorizer;
  listen(host: string, port: number): Promise<number>;
  /**
   * Stops: no new connections, responses from now on say Connection: close, open watches end
   * cleanly, requests in flight get up to `graceMs` (default 0) to finish, then every connection closes.
   */
  close(options?: { graceMs?: number }): Promise<void>;
}

function sendJson(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-cache, private' });
  res.end(text);
}

/** Field by field: a client may send roleRef's keys in any order. */
function sameRoleRef(a: unknown, b: unknown): boolean {
  const x = (a ?? {}) as Record<string, unknown>;
  const y = (b ?? {}) as Record<string, unknown>;
  return x.apiGroup === y.apiGroup && x.kind === y.kind && x.name === y.name;
}

function isTrue(v: string | null): boolean {
  return v === 'true' || v === '1';
}

export async function createApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const { store, registry, log } = options;
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const bookmarkIntervalMs = options.bookmarkIntervalMs ?? 10_000;
  const metricsRegistry = options.metrics ?? new Registry();
  const metrics = ApiServerMetrics.of(metricsRegistry);
  const resources = new Resources(store, registry);
  await resources.ensureNamespace('default');
  const crds = await installCrdSupport(resources, {
    dialer: options.dialer,
    conversionTimeoutMs: options.conversionTimeoutMs,
    onWebhookCall: (result, seconds) => metrics.conversionWebhookCall(result, seconds),
    log,
  });
  const kubefed = options.kubefed ? await installKubeFed(resources, { log, defaultTypes: options.kubefed.defaultTypes, topologyWebhook: options.kubefed.topologyWebhook, tenancy: options.kubefed.tenancy, metrics: metricsRegistry }) : null;
  const rbac = await installRbac(resources, log);
  const authn = new RequestAuthenticator({ tokens: options.tokens, oidc: options.oidc }, metricsRegistry, log);
  /** Decides (and counts) one request; a denial is kube's 403 Forbidden. */
  const authorizeRequest = (attrs: Attributes): void => {
    const decision = rbac.authorize(attrs);
    metrics.authorizationDecisions.inc({ decision: decision.allowed ? 'allowed' : 'denied', verb: attrs.verb });
    if (decision.allowed) return;
    log.debug({ user: attrs.user, groups: attrs.groups, verb: attrs.verb, ...(isResourceRequest(attrs) ? { group: attrs.apiGroup, resource: attrs.resource, namespace: attrs.namespace, name: attrs.name } : { path: attrs.path }) }, 'forbidden');
    const details = isResourceRequest(attrs) ? { ...(attrs.name ? { name: attrs.name } : {}), group: attrs.apiGroup, kind: attrs.resource } : undefined;
    throw new ApiError(403, 'Forbidden', forbiddenMessage(attrs), details);
  };
  /** RBAC for impersonation checks, counted like request decisions (verb impersonate). */
  const countedRbac: Authorizer = {
    authorize: (attrs) => {
      const decision = rbac.authorize(attrs);
      metrics.authorizationDecisions.inc({ decision: decision.allowed ? 'allowed' : 'denied', verb: attrs.verb });
      return decision;
    },
  };
  const pods = options.pods ? await installPods(resources, { log, metrics: metricsRegistry, execEnabled: options.pods.execEnabled }) : undefined;
  const isNamespacedPlural = (g: string, v: string, p: string): boolean => registry.lookup(g, v, p)?.namespaced === true;
  const isServed = (g: string, v: string, p: string): boolean => registry.lookup(g, v, p) !== undefined;

  /** A refusal because of the store (down, full, read-only) is the operator's to fix: warn, with the database's error, and count it. */
  const storageRefused = (err: ApiError, context: Record<string, unknown>, msg: string): void => {
    if (!(err.cause instanceof StoreError)) return;
    metrics.storageRefusals.inc({ code: err.cause.code });
    log.warn({ ...context, code: err.code, reason: err.reason, storeError: err.cause.code, err: err.cause.message }, msg);
  };

  // Client certificates are optional (bearer tokens); one that is presented but fails
  // verification is refused by the guard with its reason.
  /** Aborted by close(): open watches end cleanly. */
  const shutdown = new AbortController();
  /** Requests whose response has not closed yet (close() waits for them within its grace). */
  let inFlight = 0;
  let idle: (() => void) | null = null;
  const server = https.createServer({ ...options.tls, requestCert: true, rejectUnauthorized: false, ...(options.http2 ? { ALPNProtocols: ALPN_H2_FIRST } : {}) }, (req, res) => {
    inFlight++;
    res.once('close', () => {
      if (--inFlight === 0) idle?.();
    });
    // Shutting down: the client's next request goes to a new connection (another replica behind the load balancer).
    if (shutdown.signal.aborted) res.setHeader('Connection', 'close');
    const { url, route } = parseRequestUrl(req.url ?? '/', isNamespacedPlural);
    metrics.track(res, requestLabels(req.method ?? 'GET', route, isTrue(url?.searchParams.get('watch') ?? null), isServed));
    handle(req, res, url, route).catch((err: unknown) => {
      const apiErr = err instanceof ApiError ? err : errors.internal('internal error');
      if (!(err instanceof ApiError)) log.error({ err, method: req.method, url: req.url }, 'request failed');
      else storageRefused(err, { method: req.method, url: req.url }, 'request failed: storage');
      if (res.headersSent) {
        res.destroy();
        return;
      }
      // Whatever of the body was not read is drained, so the client can finish sending and read the Status.
      req.resume();
      sendJson(res, apiErr.code, apiErr.toStatus());
    });
  });
  // Only member mode answers upgrades (exec, attach, port-forward); elsewhere Node's default closes them.
  if (pods) {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      upgrade(req, socket, head).catch((err: unknown) => pods.streaming.upgradeFailed(socket, err));
    });
  }
  const guard = new ListenerGuard({
    listener: options.listener?.name ?? 'apiserver',
    limits: options.listener?.limits ?? DEFAULT_LISTENER_LIMITS,
    registry: metricsRegistry,
    log,
    clientCertificate: 'optional',
  });
  const h2 = options.http2 ? serveHttp2(server, guard) : undefined;
  guard.protect(server);

  async function handle(req: IncomingMessage, res: ServerResponse, url: URL | null, route: Route): Promise<void> {
    if (!url) throw errors.badRequest('invalid request URL');
    log.debug({ method: req.method, url: req.url }, 'request');
    if (route.kind === 'health') {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('ok');
      return;
    }
    const user = await authenticate(req, url.pathname);
    const method = req.method ?? 'GET';
    if (route.kind !== 'resource' && method !== 'GET') throw errors.methodNotSupported(method, url.pathname);
    // Non-resource paths (discovery, OpenAPI, version, metrics) are RBAC nonResourceURLs.
    if (route.kind !== 'resource' && route.kind !== 'notFound' && (route.kind !== 'metrics' || options.serveMetrics)) {
      authorizeRequest({ user: user.user, groups: user.groups, verb: 'get', path: url.pathname });
    }
    switch (route.kind) {
      case 'version':
        return sendJson(res, 200, SERVER_VERSION);
      case 'apiVersions':
        return sendJson(res, 200, apiVersions(req.headers.host ?? ''));
      case 'apiGroupList':
        return sendJson(res, 200, apiGroupList(registry));
      case 'apiGroup': {
        const doc = apiGroup(registry, route.group);
        if (!doc) throw errors.pathNotFound();
        return sendJson(res, 200, doc);
      }
      case 'resourceList': {
        const doc = apiResourceList(registry, route.group, route.version);
        if (!doc) throw errors.pathNotFound();
        return sendJson(res, 200, doc);
      }
      case 'openapiV3': {
        const doc = openApiV3(registry, url.pathname);
        if (!doc) throw errors.pathNotFound();
        return sendJson(res, 200, doc);
      }
      case 'openapiV2':
        return sendOpenApiV2(req, res);
      case 'metrics': {
        // Like kube-apiserver: RBAC nonResourceURL /metrics (the system:monitoring group has it by default).
        if (!options.serveMetrics) throw errors.pathNotFound();
        return sendMetrics(metricsRegistry, res);
      }
      case 'notFound':
        throw errors.pathNotFound();
      case 'resource':
        return handleResource(req, res, url, route, user);
    }
  }

  /**
   * Who the request runs as (groups as RBAC sees them): the caller, or whom it impersonates with
   * Impersonate-* headers if the caller's RBAC allows it (as kube-apiserver). 403 for a revoked
   * client certificate or a denied impersonation, 401 for no credentials, 400 for malformed
   * impersonation headers. Requests and upgrades (exec, attach, port-forward) all come through here.
   */
  async function authenticate(req: IncomingMessage, path: string): Promise<UserInfo> {
    const revoked = revokedClientCertificate(req, options.isRevoked);
    if (revoked) {
      guard.refused('revoked', req.socket, { user: revoked.user, serial: revoked.serial });
      throw errors.forbidden(`client certificate serial ${revoked.serial} is revoked`);
    }
    const authenticated = await authn.authenticate(req);
    if (!authenticated) throw unauthenticated(req);
    const caller: UserInfo = { ...authenticated, groups: effectiveGroups(authenticated.user, authenticated.groups) };
    let impersonated: UserInfo | null;
    try {
      impersonated = decideImpersonation(req.rawHeaders, caller, countedRbac);
    } catch (err) {
      metrics.impersonations.inc({ result: err instanceof ImpersonationForbidden ? 'denied' : 'invalid' });
      if (err instanceof ImpersonationForbidden) log.debug({ user: caller.user, groups: caller.groups, resource: err.denied.resource, name: err.denied.name }, 'impersonation forbidden');
      throw err;
    }
    if (impersonated) metrics.impersonations.inc({ result: 'allowed' });
    const identity = impersonated ?? caller;
    if (options.logIdentities) log.info({ user: identity.user, groups: identity.groups, impersonatedBy: impersonated ? caller.user : null, method: req.method, path }, 'identity');
    return identity;
  }

  async function upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const { url, route } = parseRequestUrl(req.url ?? '/', isNamespacedPlural);
    if (!url) throw errors.badRequest('invalid request URL');
    const { user, groups } = await authenticate(req, url.pathname);
    if (route.kind !== 'resource' || podStreamKind(route) === null || route.subresource === 'log') throw errors.pathNotFound();
    // exec, attach and port-forward are `create` on their subresource whatever the method (a WebSocket
    // exec is a GET; kube-apiservers before 1.35 checked it as `get`).
    authorizeRequest({ user, groups, verb: 'create', apiGroup: '', resource: 'pods', subresource: route.subresource, name: route.name, namespace: route.namespace });
    await pods!.streaming.upgrade(req, socket, head, route, url);
  }

  async function handleResource(req: IncomingMessage, res: ServerResponse, url: URL, route: ResourceRoute, user: UserInfo): Promise<void> {
    const t = registry.lookup(route.group, route.version, route.plural);
    if (!t) throw errors.pathNotFound();
    const podStream = pods ? podStreamKind(route) : null;
    if (podStream === 'log') {
      if (req.method !== 'GET') throw errors.methodNotSupported(req.method ?? '', url.pathname);
      authorizeRequest({ user: user.user, groups: user.groups, verb: 'get', apiGroup: '', resource: 'pods', subresource: 'log', name: route.name, namespace: route.namespace });
      return pods!.streaming.serveLog(req, res, route, url);
    }
    if (podStream !== null) throw errors.badRequest(`${route.subresource} needs an upgraded connection: SPDY/3.1 or websocket`);
    if (route.subresource !== undefined && !(route.subresource === 'status' && t.hasStatus)) throw errors.pathNotFound();
    const method = req.method ?? 'GET';
    const q = url.searchParams;
    const ns = route.namespace;
    const name = route.name;
    const status = route.subresource === 'status';
    if (t.namespaced && name !== undefined && ns === undefined) throw errors.pathNotFound();
    const verb = resourceVerb(method, route, isTrue(q.get('watch')));
    if (verb === null) throw errors.methodNotSupported(method, url.pathname);
    if (isReviewType(t) && verb !== 'create') throw errors.methodNotSupported(method, url.pathname);
    authorizeRequest({ user: user.user, groups: user.groups, verb, apiGroup: t.group, resource: t.plural, subresource: route.subresource, name, namespace: ns });
    if (isReviewType(t)) return sendJson(res, 201, answerReview(t, await objectBody(req), user, rbac));
    const dryRun = q.getAll('dryRun').includes('All');
    const table = wantsTable(req.headers.accept);
    const includeObject = q.get('includeObject') ?? undefined;
    const render = (obj: KubeObject): unknown => (table ? toTable(t, [obj], { resourceVersion: obj.metadata.resourceVersion, includeObject }) : obj);

    switch (verb) {
      case 'list':
      case 'watch': {
        let labels, fields;
        try {
          labels = parseLabelSelector(q.get('labelSelector'));
          fields = parseFieldSelector(q.get('fieldSelector'));
        } catch (err) {
          if (err instanceof SelectorError) throw errors.badRequest(err.message);
          throw err;
        }
        if (route.watchPath && name !== undefined) fields = [...fields, { field: 'metadata.name', op: '=' as const, value: name }];
        if (verb === 'watch') {
          const fromRevision = rv(q.get('resourceVersion'));
          const timeout = q.get('timeoutSeconds');
          return serveWatch(res, store, resources, t, {
            namespace: ns,
            labels,
            fields,
            fromRevision,
            bookmarks: isTrue(q.get('allowWatchBookmarks')),
            bookmarkIntervalMs,
            timeoutSeconds: timeout !== null && /^[0-9]+$/.test(timeout) ? Number(timeout) : undefined,
            render,
            shutdown: shutdown.signal,
            opened: () => metrics.watches.inc({ resource: t.plural }),
            ended: (reason, error) => {
              metrics.watches.dec({ resource: t.plural });
              if (error) storageRefused(error, { resource: t.plural, namespace: ns }, 'watch ended: storage');
              log.debug({ resource: t.plural, namespace: ns, reason }, 'watch ended');
            },
          });
        }
        const limitText = q.get('limit');
        if (limitText !== null && !/^[0-9]+$/.test(limitText)) throw errors.badRequest(`invalid limit "${limitText}"`);
        const out = await resources.list(t, ns, { labels, fields, limit: limitText ? Number(limitText) : undefined, continueToken: q.get('continue') ?? undefined });
        if (table) return sendJson(res, 200, toTable(t, out.items, { resourceVersion: out.resourceVersion, continue: out.continueToken, includeObject }));
        return sendJson(res, 200, {
          kind: `${t.kind}List`,
          apiVersion: groupVersion(t),
          metadata: { resourceVersion: out.resourceVersion, ...(out.continueToken ? { continue: out.continueToken } : {}) },
          items: out.items,
        });
      }
      case 'get':
        return sendJson(res, 200, render(await resources.get(t, ns, name!)));
      case 'create': {
        const body = await objectBody(req);
        const created = isRbacType(t)
          ? await withoutEscalation(user, t, dryRun, () => resources.create(t, ns, body, { dryRun: true }), () => resources.create(t, ns, body))
          : await resources.create(t, ns, body, { dryRun, user });
        log.debug({ user: user.user, resource: t.plural, namespace: ns, name: created.metadata.name }, 'created');
        return sendJson(res, 201, render(created));
      }
      case 'update': {
        const body = await objectBody(req);
        if (isRbacType(t)) return sendJson(res, 200, render(await withoutEscalation(user, t, dryRun, () => resources.update(t, ns, name!, body, { dryRun: true }), (checked) => resources.update(t, ns, name!, checked), await resources.get(t, ns, name!))));
        return sendJson(res, 200, render(await resources.update(t, ns, name!, body, { status, dryRun, user })));
      }
      case 'patch': {
        const type = mediaType(req);
        if (!(type in PATCH_TYPES)) throw errors.unsupportedMediaType(type);
        const patch = parseJson(await readBody(req, maxBody));
        // The patched object is checked, then written with the version it was computed from (409 if it changed since).
        if (isRbacType(t)) return sendJson(res, 200, render(await withoutEscalation(user, t, dryRun, () => resources.patch(t, ns, name!, type, patch, { dryRun: true }), (checked) => resources.update(t, ns, name!, checked), await resources.get(t, ns, name!))));
        return sendJson(res, 200, render(await resources.patch(t, ns, name!, type, patch, { status, dryRun, user })));
      }
      case 'delete': {
        const raw = await readBody(req, maxBody);
        const policies = ['Foreground', 'Background', 'Orphan'];
        const checkPolicy = (p: unknown): void => {
          if (p !== undefined && p !== null && !policies.includes(p as string)) throw errors.badRequest(`propagationPolicy: unsupported value ${JSON.stringify(p)}, expected one of ${policies.join(', ')}`);
        };
        for (const p of q.getAll('propagationPolicy')) checkPolicy(p);
        let expected: number | undefined;
        let expectedUid: string | undefined;
        let bodyDryRun = false;
        if (raw.length > 0) {
          const opts = decodeObjectBody(mediaType(req), raw) as { preconditions?: { resourceVersion?: string; uid?: string }; dryRun?: string[]; propagationPolicy?: unknown } | null;
          if (typeof opts !== 'object' || opts === null) throw errors.badRequest('DeleteOptions must be an object');
          checkPolicy(opts.propagationPolicy);
          expected = rv(opts.preconditions?.resourceVersion);
          expectedUid = opts.preconditions?.uid;
          bodyDryRun = Array.isArray(opts.dryRun) && opts.dryRun.includes('All');
        }
        const out = await resources.delete(t, ns, name!, { expected, expectedUid, dryRun: dryRun || bodyDryRun });
        if (out.pending) return sendJson(res, 200, render(out.object));
        return sendJson(res, 200, {
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Success',
          details: { name: out.object.metadata.name, group: t.group, kind: t.plural, uid: out.object.metadata.uid },
        });
      }
    }
  }

  /**
   * Writes an RBAC object only if it grants nothing the user does not hold (rbac-escalation.ts):
   * `preview` computes and validates the result without writing it (a dry run), `write` stores it.
   * `before`: the object an update or patch replaces — a binding's roleRef cannot change (kube).
   */
  async function withoutEscalation(user: UserInfo, t: ResourceType, dryRun: boolean, preview: () => Promise<KubeObject>, write: (checked: KubeObject) => Promise<KubeObject>, before?: KubeObject): Promise<KubeObject> {
    const result = await preview();
    if (before && before.roleRef !== undefined && !sameRoleRef(before.roleRef, result.roleRef)) {
      throw errors.invalid(t.kind, result.metadata.name ?? '', [{ field: 'roleRef', message: `Invalid value: ${JSON.stringify(result.roleRef)}: cannot change roleRef` }]);
    }
    const refused = escalationError(rbac, user, t, result);
    if (refused) {
      metrics.authorizationDecisions.inc({ decision: 'denied', verb: 'escalate' });
      throw refused;
    }
    return dryRun ? result : write(result);
  }

  /** A 401, logged at warn and counted by reason once per connection (sampled in a flood). */
  function unauthenticated(req: IncomingMessage): ApiError {
    guard.refused(unauthenticatedReason(req), req.socket);
    return errors.unauthorized();
  }

  function rv(text: string | null | undefined): number | undefined {
    try {
      return parseResourceVersion(text);
    } catch {
      throw errors.badRequest(`invalid resourceVersion "${String(text)}"`);
    }
  }

  async function objectBody(req: IncomingMessage): Promise<unknown> {
    const type = mediaType(req);
    if (type !== 'application/json' && type !== 'application/yaml' && type !== PROTOBUF_MEDIA_TYPE && type !== '') throw errors.unsupportedMediaType(type);
    return decodeObjectBody(type, await readBody(req, maxBody));
  }

  return {
    server,
    resources,
    authorizer: rbac,
    listen: (host: string, port: number): Promise<number> => listenTcp(server, host, port),
    async close(closeOptions?: { graceMs?: number }): Promise<void> {
      shutdown.abort();
      crds.stop();
      kubefed?.stop();
      const graceMs = closeOptions?.graceMs ?? 0;
      if (graceMs > 0) {
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        guard.closeUnauthenticated();
        if (inFlight > 0) {
          let timer: NodeJS.Timeout | undefined;
          await new Promise<void>((resolve) => {
            idle = resolve;
            timer = setTimeout(resolve, graceMs);
          });
          clearTimeout(timer);
          idle = null;
        }
        server.closeAllConnections();
        h2?.closeAll();
        await stopped;
      } else {
        const closed = closeServer(server);
        h2?.closeAll();
        guard.closeUnauthenticated();
        await closed;
      }
      rbac.stop();
      pods?.close();
    },
  };
}

