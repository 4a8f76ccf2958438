// The status page as one part the hub mounts: collector (state, history), event stream, routes.
// server.ts creates it and hands its serve() to the CONNECT TLS listener; the dialer reports
// failures to it.
import type http from 'node:http';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { UserIdentity } from '../../certs/identity.js';
import type { AgentRegistry } from '../registry.js';
import { StatusCollector } from './collector.js';
import { StatusStream } from './events.js';
import type { Access, FederationView, LeaseView, ReplicaView } from './model.js';
import { StatusRoutes } from './routes.js';

export interface StatusPageOptions {
  instance: string;
  agents: AgentRegistry;
  registry: Registry;
  log: Logger;
  lease: () => LeaseView;
  /** HA: the live replicas (membership table); null: this replica alone. */
  replicas?: () => ReplicaView[] | null;
  /** Reads the federation's state; null while (or when) the hub has no embedded federation. */
  federation: () => Promise<FederationView> | null;
  accessFor: (who: UserIdentity) => Access;
}

export class StatusPage {
  readonly collector: StatusCollector;
  private readonly stream: StatusStream;
  private readonly routes: StatusRoutes;

  constructor(options: StatusPageOptions) {
    this.collector = new StatusCollector({ instance: options.instance, agents: options.agents, lease: options.lease, replicas: options.replicas, federation: options.federation, log: options.log });
    this.stream = new StatusStream(this.collector, options.registry, options.log);
    this.routes = new StatusRoutes(this.collector, this.stream, options.accessFor);
  }

  start(): void {
    this.collector.start();
  }

  readonly serve = (req: http.IncomingMessage, res: http.ServerResponse, who: UserIdentity): void => this.routes.serve(req, res, who);

  readonly recordDialFailure = (cluster: string, code: string, message: string): void => this.collector.recordDialFailure(cluster, code, message);

  /** Ends the event streams and the sampling timer. */
  close(): void {
    this.stream.close();
    this.collector.stop();
  }
}
