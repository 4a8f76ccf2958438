// ProxyServer: the agent listener, the registry, the dial contract and its frontends, as one
// object that starts and stops cleanly. main.ts runs it as a process; tests and benchmarks may
// embed it.
import fs from 'node:fs';
import type http from 'node:http';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { AgentRegistry } from './registry.js';
import { AgentListener } from './agent-listener.js';
import { ConnectFrontend, LISTEN_BACKLOG } from './connect-frontend.js';
import { closeServer, listenTcp } from '../common/listen.js';
import { Dialer, type DialFunction } from './dialer.js';
import { ServerMetrics } from './metrics.js';
import { RevocationGuard } from './revocation.js';
import { createAdminServer } from './admin.js';
import { EnrolmentEndpoint } from './enrolment.js';
import { BootstrapTokenStore } from './bootstrap-tokens.js';
import type { CertKeyPair } from '../certs/pki.js';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import type { ServerOptions } from './options.js';
import type { HostPort } from '../common/address.js';
import { openStore } from '../federation/store/open.js';
import { withEncryption } from '../federation/encryption/setup.js';
import type { Store } from '../federation/store/types.js';
import { createApiServer, type ApiServer } from '../federation/apiserver/server.js';
import { OidcAuthenticator } from '../federation/apiserver/oidc.js';
import { oidcOptions } from '../federation/apiserver/oidc-flags.js';
import { federationDialer } from './federation-dialer.js';
import { mayReach } from './targets.js';
import { FederationController } from '../federation/controller/controller.js';
import { parseTokenFile, RequestAuthenticator, TokenAuthenticator } from '../federation/apiserver/authn.js';
import { KubeApiProxy } from './kube-proxy/proxy.js';
import { ClusterDirectory } from './kube-proxy/clusters.js';
import { NAMESPACES, SECRETS, TypeRegistry } from '../federation/apiserver/types.js';
import { StatusPage } from './status/status-page.js';
import { accessFor } from './status/access.js';
import { readFederation } from './status/federation.js';
import type { LeaseView, ReplicaView } from './status/model.js';
import { LeaderElector } from '../federation/controller/leader-election.js';
import { leaseTimingFor } from '../federation/controller/lease.js';
import { ReplicaMembership } from './replicas/membership.js';
import { openMembershipStore } from './replicas/membership-store.js';
import { openUsedTokenTable } from './replicas/used-tokens-store.js';
import { forwardDial, servePeer } from './replicas/peer-forwarding.js';
import { federationStoreOptions } from './replicas/store-options.js';
import { FEATURE_REPLICAS } from '../wire/frames.js';
import { formatHostPort } from '../common/address.js';
import type { AgentLink } from './registry.js';

export interface BoundPorts {
  agentPort: number;
  federationPort: number | null;
  connectPort: number | null;
  adminPort: number | null;
  connectUds: string | null;
}

interface TlsFiles {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

function readTlsFiles(options: ServerOptions): TlsFiles {
  return { ca: fs.readFileSync(options.caFile), cert: fs.readFileSync(options.certFile), key: fs.readFileSync(options.keyFile) };
}

/** The CA that signs enrolled agents' certificates: the first certificate of --ca and --ca-key, which must belong together. */
function readSigningCA(options: ServerOptions): CertKeyPair | null {
  if (!options.caKeyFile) return null;
  const keyPem = fs.readFileSync(options.caKeyFile, 'utf8');
  const caCert = new X509Certificate(fs.readFileSync(options.caFile));
  if (!caCert.checkPrivateKey(createPrivateKey(keyPem))) throw new Error(`--ca-key ${options.caKeyFile} does not belong to the CA certificate in ${options.caFile}`);
  return { certPem: caCert.toString(), keyPem };
}

export class ProxyServer {
  readonly agents: AgentRegistry;
  readonly metrics: ServerMetrics;
  readonly dial: DialFunction;
  private readonly dialer: Dialer;
  private readonly agentListener: AgentListener;
  private readonly connect: ConnectFrontend;
  private readonly admin: http.Server;
  private readonly revocation: RevocationGuard;
  private readonly status: StatusPage;
  private readonly bootstrapTokens: BootstrapTokenStore | null;
  private tlsContext: TlsFiles;
  /** elector: campaigns for the controller lease (--federation-controller on); controller: the one running while this replica holds it. */
  private federation: { api: ApiServer; store: Store; elector: LeaderElector | null; controller: FederationController | null; clusters: ClusterDirectory } | null = null;
  /** One OIDC authenticator (JWKS cache) for the federation API server and the /clusters proxy. */
  private readonly oidc: OidcAuthenticator | undefined;
  private started = false;
  private stopping = false;
  /** HA membership (--advertise-agent-address); null on a single hub. */
  private membership: ReplicaMembership | null = null;
  /** Our CA, certificate and key as a client context: peer forwarding presents the server certificate. */
  private peerContext: tls.SecureContext | null = null;

  constructor(
    private readonly options: ServerOptions,
    private readonly log: Logger,
  ) {
    this.tlsContext = readTlsFiles(options);
    this.agents = new AgentRegistry(options.maxStreamsPerAgent, options.agentRejoinWindowMs);
    this.metrics = new ServerMetrics(this.agents);
    // A revocation list that does not load stops the start (main.ts exits 1 with the message).
    this.revocation = new RevocationGuard(options.revokedFile, this.metrics, log.child({ part: 'revocation' }), options.handshakeTimeoutMs);
    this.status = new StatusPage({
      instance: options.instance,
      agents: this.agents,
      registry: this.metrics.registry,
      log: log.child({ part: 'status' }),
      lease: () => this.leaseView(),
      replicas: () => this.replicaViews(),
      federation: () => (this.federation ? readFederation(this.federation.api.resources) : null),
      accessFor: (who) => accessFor(this.federation?.api.authorizer ?? null, who, (cluster) => this.clusterTenantOf(cluster)),
    });
    // A token file that does not load, or a CA key that is not the CA's, stops the start too.
    this.bootstrapTokens = options.bootstrapTokensFile ? new BootstrapTokenStore(options.bootstrapTokensFile, options.bootstrapTokensUsedFile!, log.child({ part: 'enrolment' }), this.metrics.registry) : null;
    const enrolment = new EnrolmentEndpoint(
      { ca: readSigningCA(options), tokens: this.bootstrapTokens, agentCertTtlMs: options.agentCertTtlMs, bodyTimeoutMs: options.headerTimeoutMs, revocation: this.revocation },
      this.metrics,
      log.child({ part: 'enrolment' }),
    );
    this.dialer = new Dialer(this.agents, this.metrics, log.child({ part: 'dialer' }), options, (cluster, error) => this.status.recordDialFailure(cluster, error.code, error.message));
    this.dial = this.dialer.dial;
    this.agentListener = new AgentListener(this.agents, this.metrics, log.child({ part: 'agents' }), {
      tlsContext: this.tlsContext,
      windowBytes: options.windowBytes,
      keepaliveIntervalMs: options.keepaliveIntervalMs,
      keepaliveTimeoutMs: options.keepaliveTimeoutMs,
      limits: options,
      maxStreamsPerAgent: options.maxStreamsPerAgent,
      instance: options.instance,
      revocation: this.revocation,
      enrolment,
      onRegistered: (link) => this.announceReplicasTo(link),
      // Dials forwarded by peer replicas are served from this replica's own links only (one hop).
      peer: options.replicas ? (socket) => void servePeer(socket, this.dial, options.handshakeTimeoutMs, log.child({ part: 'peer' })) : undefined,
      frontProxies: options.agentFrontProxies,
    });
    // Read here: an unreadable --oidc-ca-file or a bad --token-auth-file fails the start with nothing to close.
    this.oidc = options.oidc ? new OidcAuthenticator(oidcOptions(options.oidc), log.child({ part: 'oidc' })) : undefined;
    const tokens = options.tokenAuthFile ? new TokenAuthenticator(parseTokenFile(fs.readFileSync(options.tokenAuthFile, 'utf8'), options.tokenAuthFile)) : undefined;
    const kubeLog = log.child({ part: 'kube-proxy' });
    const kubeProxy = new KubeApiProxy({
      authenticator: new RequestAuthenticator({ tokens, oidc: this.oidc }, this.metrics.registry, kubeLog),
      authorizer: () => this.federation?.api.authorizer ?? null,
      clusters: () => this.federation?.clusters ?? null,
      agentTenantOf: (cluster) => this.agents.agentTenantOf(cluster),
      revocation: this.revocation,
      registry: this.metrics.registry,
      log: kubeLog,
    });
    this.connect = new ConnectFrontend(this.dial, this.metrics, log.child({ part: 'connect' }), {
      maxHeaderBytes: options.maxHeaderBytes,
      limits: options,
      udsDefaultCluster: options.udsDefaultCluster,
      revocation: this.revocation,
      // The federation's RBAC once it runs; until then, and without it, only system:masters.
      mayReach: (who, cluster) => mayReach(this.federation?.api.authorizer ?? null, who, cluster, this.clusterTenantOf(cluster)),
      status: this.status,
      kubeProxy,
    });
    this.admin = createAdminServer(options.instance, this.agents, this.dialer, this.metrics, () => this.started && !this.stopping, { limits: options, log: log.child({ part: 'admin' }) });
  }

  async start(): Promise<BoundPorts> {
    const { options } = this;
    // Replicas share the used-token ledger: in place before the agent listener takes an enrolment.
    if (options.replicas && this.bootstrapTokens) await this.bootstrapTokens.shareLedger(await openUsedTokenTable(options.federationStore), options.instance);
    const agentPort = await listenTcp(this.agentListener.server, options.agentListen.host, options.agentListen.port, LISTEN_BACKLOG);
    if (options.replicas) await this.startMembership(agentPort);
    const connectPort = options.connectListen ? await this.connect.listenTls(options.connectListen.host, options.connectListen.port, this.tlsContext) : null;
    if (options.connectUds) await this.connect.listenUnix(options.connectUds);
    const adminPort = options.adminListen ? await listenTcp(this.admin, options.adminListen.host, options.adminListen.port, LISTEN_BACKLOG) : null;
    const federationPort = options.federationListen ? await this.startFederation(options.federationListen) : null;
    if (connectPort !== null && federationPort === null) {
      this.log.warn('no embedded federation (--federation-listen off): CONNECT over TLS is refused to every user not in system:masters, as no RBAC can grant proxy');
    }
    this.status.start();
    this.started = true;
    return { agentPort, federationPort, connectPort, adminPort, connectUds: options.connectUds };
  }

  /**
   * Joins the replica set: heartbeats into the membership table, tells agents the live set on
   * every change, makes clusters seen by any replica NO_AGENT here, and forwards dials this
   * replica has no link for to a peer that has one.
   */
  private async startMembership(agentPort: number): Promise<void> {
    const { replicas } = this.options;
    const advertised = { ...replicas!.advertiseAgentAddress };
    if (advertised.port === 0) advertised.port = agentPort;
    const log = this.log.child({ part: 'replicas' });
    const membership = new ReplicaMembership(await openMembershipStore(this.options.federationStore), {
      id: this.options.instance,
      address: formatHostPort(advertised),
      heartbeatMs: replicas!.heartbeatMs,
      ttlMs: replicas!.ttlMs,
      clusters: () => this.agents.connectedClusters(),
      log,
      registry: this.metrics.registry,
    });
    this.membership = membership;
    // Subscribed before the first heartbeat: agents that linked while it runs hear its result too.
    membership.on('change', () => {
      for (const link of this.agents.links()) this.announceReplicasTo(link);
    });
    // A cluster's first link here, or its last one gone: peers learn it at once, not a heartbeat later.
    this.agents.onChange(() => membership.nudge());
    await membership.start();
    this.agents.setSeenElsewhere((cluster) => membership.hasSeen(cluster));
    this.dialer.forwarder = {
      peerFor: (cluster) => membership.peerFor(cluster),
      forward: (peer, request, signal) => forwardDial(peer.address, request, { secureContext: () => this.clientContext() }, signal),
    };
    log.info({ address: formatHostPort(advertised), heartbeatMs: replicas!.heartbeatMs, ttlMs: replicas!.ttlMs, live: membership.announcement() }, 'joined the replica set');
  }

  /** Sends the live replica set to an agent that understands it (older agents are told nothing). */
  private announceReplicasTo(link: AgentLink): void {
    const replicas = this.membership?.announcement();
    if (!replicas || replicas.length === 0 || !link.session.peerSupports(FEATURE_REPLICAS)) return;
    link.session.sendReplicas({ replicas });
  }

  private clientContext(): tls.SecureContext {
    this.peerContext ??= tls.createSecureContext(this.tlsContext);
    return this.peerContext;
  }

  /** The replicas the status page lists: the live set from the membership table, or just this one. */
  private replicaViews(): ReplicaView[] | null {
    if (!this.membership) return null;
    return this.membership.live().map((r) => ({ instance: r.id, self: r.id === this.options.instance, startedAt: null, address: r.address, agentClusters: r.clusters.length }));
  }

  /** A cluster's tenant for reach decisions: its KubeFedCluster's label, else its agent certificate's tenant. */
  private clusterTenantOf(cluster: string): string | undefined {
    return this.federation?.clusters.get(cluster)?.tenantLabel ?? this.agents.agentTenantOf(cluster);
  }

  /** The federation's own API server, in this process, on its own port, with the server's TLS material. */
  private async startFederation(at: HostPort): Promise<number> {
    // Discovery runs in the background: an issuer that is down delays OIDC users, not the hub.
    const oidc = this.oidc;
    const raw = await openStore(this.options.federationStore, federationStoreOptions(this.options.federationStore, this.options.replicas));
    // Secrets at rest are encrypted (README "Secrets at rest"); metrics on this server's /metrics.
    const store = await withEncryption(raw, this.options.federationStore, this.options.federationEncryptionConfig, this.log.child({ part: 'encryption' }), this.metrics.registry).catch(async (err) => {
      await raw.close();
      throw err;
    });
    const registry = new TypeRegistry();
    registry.add(NAMESPACES);
    // Member credentials (KubeFedCluster spec.secretRef) are Secrets in kube-federation-system.
    registry.add(SECRETS);
    // CRD conversion webhooks (the topology webhook among them) are reached through the tunnel
    // (<host>.<cluster>.tunnel); other addresses only with --federation-direct-egress.
    const webhook = this.options.topologyWebhook;
    const topologyWebhook = webhook ? { url: webhook.url, caBundle: fs.readFileSync(webhook.caFile).toString('base64') } : undefined;
    const dialer = federationDialer(this.dial, { directEgress: this.options.federationDirectEgress });
    // Tenant admission checks KubeFedCluster labels against the tenants of agent certificates.
    const tenancy = { agentTenantOf: (cluster: string) => this.agents.agentTenantOf(cluster), untenantedPlacement: this.options.federationUntenantedPlacement };
    const api = await createApiServer({ store, registry, log: this.log.child({ part: 'federation' }), tls: this.tlsContext, dialer, kubefed: { defaultTypes: true, topologyWebhook, tenancy }, oidc,
      isRevoked: this.revocation.isRevokedForFederation,
      // The hub's listener limits apply to its federation listener too; its metrics are on the hub's admin /metrics.
      listener: { name: 'federation', limits: this.options }, metrics: this.metrics.registry });
    oidc?.start();
    // What /clusters/<name>/ needs of each joined cluster, kept current by watches (no store read per request).
    const clusters = new ClusterDirectory(api.resources, this.dial, this.log.child({ part: 'kube-proxy' }), this.options.dialTimeoutMs);
    const federation: NonNullable<ProxyServer['federation']> = { api, store, elector: null, controller: null, clusters };
    // Replicas sharing the store run the controller on one of them at a time: the lease holder.
    if (this.options.federationController) {
      federation.elector = new LeaderElector({
        store,
        identity: this.options.instance,
        timing: leaseTimingFor(this.options.controllerLeaseDurationMs),
        log: this.log.child({ part: 'lease' }),
        metrics: this.metrics.registry,
        startedLeading: () => {
          federation.controller = this.newController(api);
          federation.controller.start();
        },
        stoppedLeading: async () => {
          const controller = federation.controller;
          federation.controller = null;
          await controller?.stop();
        },
      });
    }
    this.federation = federation;
    const port = await api.listen(at.host, at.port);
    clusters.start();
    federation.elector?.start();
    return port;
  }

  /** The controller of one lease term. It reaches member clusters only through dial(): it is given nothing else. */
  private newController(api: ApiServer): FederationController {
    return new FederationController({
      resources: api.resources,
      dial: this.dial,
      links: this.agents,
      log: this.log.child({ part: 'controller' }),
      metrics: this.metrics.registry,
      unreachableDeletion: { mode: this.options.unreachableDeletion === 'orphan' ? 'Orphan' : 'Wait', afterMs: this.options.unreachableDeletionTimeoutMs },
      memberRequestTimeoutMs: this.options.memberRequestTimeoutMs,
      untenantedPlacement: this.options.federationUntenantedPlacement,
    });
  }

  /** Who runs the federation controller (the lease holder as this replica last read it), for the status page. */
  private leaseView(): LeaseView {
    const elector = this.federation?.elector;
    if (!elector) return { mode: 'off', holder: null, note: 'no federation controller on this hub' };
    const { holder, leading, record } = elector.state();
    if (!record) return { mode: 'lease', holder: null, note: 'no replica holds the controller lease yet' };
    const whose = leading ? 'this replica leads' : 'this replica follows';
    const renewed = holder ? `renewed ${record.renewTime} (holder's clock)` : `released ${record.renewTime}`;
    return { mode: 'lease', holder, note: `lease of ${record.leaseDurationMs / 1000}s, ${renewed}, ${record.transitions} transitions; ${whose}` };
  }

  /** Test and bench hook: whether this replica runs the federation controller now. */
  get leadsController(): boolean {
    return this.federation?.elector?.isLeader ?? false;
  }

  /**
   * Re-reads the CA, certificate and key (SIGHUP): new handshakes on every listener use them, open
   * links keep theirs. A file that fails to load leaves the old material in place.
   */
  reloadCertificates(): void {
    const next = readTlsFiles(this.options);
    tls.createSecureContext(next); // throws on a bad pair before anything is swapped
    this.tlsContext = next;
    this.peerContext = null;
    this.agentListener.server.setSecureContext(next);
    this.connect.setSecureContext(next);
    this.federation?.api.server.setSecureContext(next);
  }

  /** Re-reads --revoked (SIGHUP) and closes open links and tunnels of newly revoked certificates; a bad file keeps the old list. */
  reloadRevocations(): void {
    this.revocation.reload();
  }

  /** Re-reads --bootstrap-tokens (SIGHUP); a bad file keeps the old tokens. */
  reloadBootstrapTokens(): void {
    this.bootstrapTokens?.reload();
  }

  /**
   * SIGTERM, in this order: /readyz answers 503 (for --shutdown-delay, so a load balancer takes the
   * replica out before anything is refused); the federation controller stops and the lease is
   * released (another replica leads at once); the frontends take no new connections, say
   * Connection: close on every further response and end open federation watches cleanly (clients
   * resume from their resourceVersion elsewhere); short requests in flight finish; then every agent
   * is told GOAWAY (it links to another replica) and open streams finish until the deadline.
   */
  async stop(drainTimeoutMs = this.options.drainTimeoutMs): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.options.shutdownDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.options.shutdownDelayMs));
    const deadline = Date.now() + drainTimeoutMs;
    // Leave the replica set first: peers announce the set without us, and our own agents hear it
    // from us at once (before the GOAWAY below), so none of them redials this replica meanwhile.
    if (this.membership) {
      const others = this.membership.announcement().filter((r) => r.id !== this.options.instance);
      await this.membership.stop();
      for (const link of this.agents.links()) if (link.session.peerSupports(FEATURE_REPLICAS)) link.session.sendReplicas({ replicas: others });
    }
    // First the controller: its member watches are tunnel streams the drain below would wait for.
    await this.federation?.elector?.stop();
    // Status event streams never end by themselves: end them so the CONNECT listener can close.
    this.status.close();
    // Idle pooled /clusters connections are tunnel streams too; requests in flight keep theirs until the deadline.
    this.federation?.clusters.stop();
    this.connect.stopAccepting();
    const closingApi = this.federation?.api.close({ graceMs: drainTimeoutMs });
    const closingListener = this.agentListener.close();
    await this.connect.shortRequestsDone(deadline);
    const links = this.agents.links();
    for (const link of links) link.session.goAway('server shutting down');
    await Promise.all(
      links.map(
        (link) =>
          new Promise<void>((resolve) => {
            if (link.session.isClosed) return resolve();
            link.session.once('close', () => {
              clearTimeout(timer);
              resolve();
            });
            const check = (): void => {
              if (link.session.streamCount === 0) link.session.end();
              else if (Date.now() >= deadline) link.session.destroy(new Error('drain deadline passed'));
              else timer = setTimeout(check, Math.min(100, Math.max(1, deadline - Date.now())));
            };
            let timer: NodeJS.Timeout | undefined;
            check();
          }),
      ),
    );
    await Promise.all([closingListener, this.connect.close(), closeServer(this.admin), closingApi]);
    await this.bootstrapTokens?.close();
    await this.federation?.store.close();
  }
}
