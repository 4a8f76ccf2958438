// The federation's client for one member cluster: @kubernetes/client-node (KubernetesObjectApi for
// reads and writes, Watch for watches) with a KubeConfig whose every connection is a tunnel stream
// (TunnelAgent). Errors come out as MemberError with a stable code; every request has a deadline
// except watches, which live as long as the member keeps them.
import https from 'node:https';
import {
  createConfiguration,
  KubeConfig,
  KubernetesObjectApi,
  ServerConfiguration,
  Watch,
  type KubernetesObject,
  type V1APIResource,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { KubeObject } from '../apiserver/storage.js';
import type { TargetType } from '../kubefed/api.js';
import type { WatchEventType } from './informer.js';
import { memberConfig, MemberConfigError, type MemberConfig } from './member-config.js';
import { errorFromFailure, errorFromResponse, MemberError } from './member-errors.js';
import { TunnelAgent, type ClusterDial } from './tunnel-agent.js';

export { memberConfig, MemberConfigError, MemberError, type ClusterDial, type MemberConfig };

const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/** A KubeConfig whose requests use our agents: plain API calls one pool, long-lived watches another. */
class TunnelKubeConfig extends KubeConfig {
  constructor(
    private readonly requestAgent: https.Agent,
    private readonly watchAgent: https.Agent,
  ) {
    super();
  }

  override async applySecurityAuthentication(context: Parameters<KubeConfig['applySecurityAuthentication']>[0]): Promise<void> {
    await super.applySecurityAuthentication(context);
    context.setAgent(this.requestAgent);
  }

  override async applyToFetchOptions(opts: https.RequestOptions): Promise<Awaited<ReturnType<KubeConfig['applyToFetchOptions']>>> {
    const init = await super.applyToFetchOptions(opts);
    return { ...init, agent: this.watchAgent };
  }
}

/** KubernetesObjectApi that knows the member's types from the FederatedTypeConfigs: no discovery round trip through the tunnel. */
class TypedObjectApi extends KubernetesObjectApi {
  readonly known = new Map<string, V1APIResource>();

  protected override async resource(apiVersion: string, kind: string): Promise<V1APIResource | undefined> {
    return this.known.get(`${apiVersion}/${kind}`) ?? super.resource(apiVersion, kind);
  }
}

function apiVersionOf(t: TargetType): string {
  return t.group ? `${t.group}/${t.version}` : t.version;
}

function collectionPath(t: TargetType, namespace?: string): string {
  const base = t.group ? `/apis/${t.group}/${t.version}` : `/api/${t.version}`;
  return `${base}${t.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : ''}/${t.plural}`;
}

export class MemberClient {
  private readonly requestAgent: TunnelAgent;
  private readonly watchAgent: TunnelAgent;
  private readonly kc: TunnelKubeConfig;
  private readonly api: TypedObjectApi;
  private readonly requestTimeoutMs: number;
  private readonly watches = new Set<AbortController>();
  private closed = false;

  constructor(
    readonly config: MemberConfig,
    dial: ClusterDial,
    private readonly options: { log: Logger; requestTimeoutMs?: number; maxConnections?: number },
  ) {
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const dialTimeoutMs = this.requestTimeoutMs;
    this.requestAgent = new TunnelAgent(config, dial, { maxSockets: options.maxConnections ?? 16, dialTimeoutMs });
    this.watchAgent = new TunnelAgent(config, dial, { maxSockets: Infinity, dialTimeoutMs });
    this.kc = new TunnelKubeConfig(this.requestAgent, this.watchAgent);
    this.kc.loadFromOptions({
      clusters: [{ name: config.cluster, server: config.server, skipTLSVerify: config.skipVerify.all }],
      users: [{ name: 'federation', token: config.token }],
      contexts: [{ name: config.cluster, cluster: config.cluster, user: 'federation' }],
      currentContext: config.cluster,
    });
    const timeoutMs = this.requestTimeoutMs;
    this.api = new TypedObjectApi(
      createConfiguration({
        baseServer: new ServerConfiguration(config.server, {}),
        authMethods: { default: this.kc },
        // A member that hangs costs one request its deadline, never a worker forever.
        promiseMiddleware: [{ pre: async (ctx) => (ctx.setSignal(AbortSignal.timeout(timeoutMs)), ctx), post: async (rsp) => rsp }],
      }),
    );
  }

  private know(t: TargetType): { apiVersion: string; kind: string } {
    const apiVersion = apiVersionOf(t);
    const key = `${apiVersion}/${t.kind}`;
    if (!this.api.known.has(key)) this.api.known.set(key, { name: t.plural, kind: t.kind, namespaced: t.namespaced, singularName: '', verbs: [] });
    return { apiVersion, kind: t.kind };
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new MemberError('Unreachable', 'client closed');
    try {
      return await fn();
    } catch (err) {
      const e = err as { code?: unknown; body?: unknown };
      const mapped = typeof e.code === 'number' ? errorFromResponse(e.code, e.body) : errorFromFailure(err);
      this.options.log.debug({ what, code: mapped.code, err: mapped.message }, 'member request failed');
      throw mapped;
    }
  }

  private header(t: TargetType, namespace: string | undefined, name: string): KubernetesObject {
    return { ...this.know(t), metadata: { name, ...(t.namespaced ? { namespace } : {}) } };
  }

  async get(t: TargetType, namespace: string | undefined, name: string): Promise<KubeObject | null> {
    try {
      return (await this.call(`get ${name}`, () => this.api.read(this.header(t, namespace, name) as never))) as unknown as KubeObject;
    } catch (err) {
      if (err instanceof MemberError && err.code === 'NotFound') return null;
      throw err;
    }
  }

  async list(t: TargetType, opts: { labelSelector?: string } = {}): Promise<{ items: KubeObject[]; resourceVersion: string }> {
    const { apiVersion, kind } = this.know(t);
    const out = await this.call(`list ${t.plural}`, () => this.api.list(apiVersion, kind, undefined, undefined, undefined, undefined, undefined, opts.labelSelector));
    // List items carry no apiVersion/kind on the wire.
    const items = out.items.map((o) => ({ ...o, apiVersion, kind }) as unknown as KubeObject);
    return { items, resourceVersion: out.metadata?.resourceVersion ?? '0' };
  }

  create(t: TargetType, obj: KubeObject): Promise<KubeObject> {
    this.know(t);
    return this.call(`create ${obj.metadata.name}`, () => this.api.create(obj as unknown as KubernetesObject)) as Promise<unknown> as Promise<KubeObject>;
  }

  update(t: TargetType, obj: KubeObject): Promise<KubeObject> {
    this.know(t);
    return this.call(`update ${obj.metadata.name}`, () => this.api.replace(obj as unknown as KubernetesObject)) as Promise<unknown> as Promise<KubeObject>;
  }

  async delete(t: TargetType, namespace: string | undefined, name: string, opts: { propagationPolicy?: string; gracePeriodSeconds?: number } = {}): Promise<void> {
    try {
      await this.call(`delete ${name}`, () => this.api.delete(this.header(t, namespace, name), undefined, undefined, opts.gracePeriodSeconds, undefined, opts.propagationPolicy));
    } catch (err) {
      if (!(err instanceof MemberError && err.code === 'NotFound')) throw err;
    }
  }

  /**
   * Watches after `resourceVersion`. onEnd is called once when the watch ends for any reason but
   * stop(): the member closed it, the tunnel stream died, or the member sent an ERROR event (410).
   */
  watch(
    t: TargetType,
    opts: { labelSelector?: string; resourceVersion: string },
    onEvent: (type: WatchEventType, obj: KubeObject) => void,
    onEnd: (err?: Error) => void,
  ): { stop(): void } {
    const { apiVersion, kind } = this.know(t);
    let stopped = false;
    let controller: AbortController | null = null;
    const end = (err?: Error): void => {
      // close() ends every watch: that is not news for the informer (it is stopped too).
      if (stopped || this.closed) return;
      stopped = true;
      if (controller) {
        this.watches.delete(controller);
        controller.abort();
      }
      onEnd(err);
    };
    const watch = new Watch(this.kc);
    watch
      .watch(
        collectionPath(t),
        { labelSelector: opts.labelSelector, resourceVersion: opts.resourceVersion, allowWatchBookmarks: true },
        (type: string, obj: KubeObject) => {
          if (stopped) return;
          if (type === 'ERROR') {
            end(errorFromResponse((obj as unknown as { code?: number }).code ?? 500, obj));
            return;
          }
          onEvent(type as WatchEventType, type === 'BOOKMARK' ? obj : ({ ...obj, apiVersion, kind } as KubeObject));
        },
        (err: unknown) => end(err ? errorFromFailure(err) : undefined),
      )
      .then((c) => {
        controller = c;
        if (stopped) c.abort();
        else this.watches.add(c);
      }, (err: unknown) => end(errorFromFailure(err)));
    return {
      stop: () => {
        if (stopped) return;
        stopped = true;
        if (controller) {
          this.watches.delete(controller);
          controller.abort();
        }
      },
    };
  }

  /** GET /readyz (/healthz for servers without it) through the tunnel, within timeoutMs. */
  async healthz(timeoutMs: number): Promise<void> {
    const r = await this.raw('/readyz', timeoutMs);
    if (r.status === 404) {
      const h = await this.raw('/healthz', timeoutMs);
      if (h.status !== 200) throw errorFromResponse(h.status, h.body);
      return;
    }
    if (r.status !== 200) throw errorFromResponse(r.status, r.body);
  }

  async version(): Promise<string> {
    const r = await this.raw('/version', this.requestTimeoutMs);
    if (r.status !== 200) throw errorFromResponse(r.status, r.body);
    return (JSON.parse(r.body) as { gitVersion?: string }).gitVersion ?? '';
  }

  /** A plain GET for the health endpoints, which client-node has no typed call for. */
  private raw(path: string, timeoutMs: number): Promise<{ status: number; body: string }> {
    if (this.closed) return Promise.reject(new MemberError('Unreachable', 'client closed'));
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.config.token) headers.authorization = `Bearer ${this.config.token}`;
    return new Promise((resolve, reject) => {
      const req = https.get(`${this.config.server}${path}`, { agent: this.requestAgent, headers, signal: AbortSignal.timeout(timeoutMs) }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (body.length < 64 * 1024) body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', (err) => reject(errorFromFailure(err)));
      });
      req.on('error', (err) => reject(errorFromFailure(err)));
    });
  }

  /** Ends every watch and pooled tunnel stream. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.watches) c.abort();
    this.watches.clear();
    this.requestAgent.destroy();
    this.watchAgent.destroy();
  }
}
