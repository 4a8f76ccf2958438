// Prometheus metrics of one proxy-server instance. A registry per instance (not prom-client's
// global one) so tests and benchmarks can run several servers in one process.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { AgentRegistry } from './registry.js';

export class ServerMetrics {
  readonly registry = new Registry();
  readonly agentLinks: Counter<'result'>;
  readonly dials: Counter<'cluster' | 'result'>;
  readonly dialDuration: Histogram<'result'>;
  readonly pendingDials: Gauge;
  readonly streamBytes: Counter<'cluster' | 'direction'>;
  readonly streamDuration: Histogram<'cluster'>;
  readonly linkRtt: Histogram<'cluster'>;
  readonly frontendRequests: Counter<'frontend' | 'status'>;
  readonly revokedRefusals: Counter<'listener'>;
  readonly connectForbidden: Counter;
  readonly revokedClosed: Counter<'kind'>;
  readonly revocationListEntries: Gauge;
  readonly enrolments: Counter<'result'>;
  readonly forwardedDials: Counter<'result'>;
  readonly redials: Counter<'reason'>;

  constructor(agents: AgentRegistry) {
    const registers = [this.registry];
    this.agentLinks = new Counter({
      name: 'fedtunnel_agent_links_total',
      help: 'Agent link attempts by result (accepted, or the reason for refusal)',
      labelNames: ['result'],
      registers,
    });
    new Gauge({
      name: 'fedtunnel_agents',
      help: 'Agent links connected, by cluster and draining state',
      labelNames: ['cluster', 'draining'],
      registers,
      collect() {
        this.reset();
        for (const link of agents.summary()) this.inc({ cluster: link.cluster, draining: String(link.draining) });
      },
    });
    new Gauge({
      name: 'fedtunnel_streams',
      help: 'Tunneled streams open (including dials awaiting an answer), by cluster',
      labelNames: ['cluster'],
      registers,
      collect() {
        this.reset();
        for (const link of agents.summary()) this.inc({ cluster: link.cluster }, link.streams);
      },
    });
    this.dials = new Counter({ name: 'fedtunnel_dials_total', help: 'Dials by cluster and result (ok or error code)', labelNames: ['cluster', 'result'], registers });
    this.dialDuration = new Histogram({
      name: 'fedtunnel_dial_duration_seconds',
      help: 'Time from dial() to an established stream or an error',
      labelNames: ['result'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.forwardedDials = new Counter({
      name: 'fedtunnel_peer_forwarded_dials_total',
      help: 'HA fallback: dials this replica had no agent link for and forwarded to a peer replica, by result (ok or error code)',
      labelNames: ['result'],
      registers,
    });
    this.redials = new Counter({
      name: 'fedtunnel_dial_retries_total',
      help: 'Dials retried on another agent link because the first link went away (GOAWAY or loss) before the agent answered the OPEN, by the error code it gave',
      labelNames: ['reason'],
      registers,
    });
    this.pendingDials = new Gauge({ name: 'fedtunnel_pending_dials', help: 'Dials awaiting the agent', registers });
    this.streamBytes = new Counter({
      name: 'fedtunnel_stream_bytes_total',
      help: 'Bytes carried by closed streams; direction "to_agent" or "from_agent"',
      labelNames: ['cluster', 'direction'],
      registers,
    });
    this.streamDuration = new Histogram({
      name: 'fedtunnel_stream_duration_seconds',
      help: 'Lifetime of tunneled streams',
      labelNames: ['cluster'],
      buckets: [0.01, 0.1, 1, 10, 60, 600, 3600],
      registers,
    });
    this.linkRtt = new Histogram({
      name: 'fedtunnel_link_rtt_seconds',
      help: 'Keepalive round trip of agent links',
      labelNames: ['cluster'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    });
    this.frontendRequests = new Counter({
      name: 'fedtunnel_frontend_requests_total',
      help: 'Frontend requests by frontend and HTTP status',
      labelNames: ['frontend', 'status'],
      registers,
    });
    this.revokedRefusals = new Counter({
      name: 'fedtunnel_revoked_refusals_total',
      help: 'Connections or requests refused after the TLS handshake because the certificate is revoked (--revoked), by listener',
      labelNames: ['listener'],
      registers,
    });
    // No cluster label: the cluster is named by the refused client, so it would be unbounded.
    this.connectForbidden = new Counter({
      name: 'fedtunnel_connect_forbidden_total',
      help: 'CONNECT requests over TLS refused (403 FORBIDDEN) because RBAC does not let the user proxy the cluster',
      registers,
    });
    this.revokedClosed = new Counter({
      name: 'fedtunnel_revoked_closed_total',
      help: 'Open agent links and CONNECT tunnels closed when a reload revoked their certificate, by kind',
      labelNames: ['kind'],
      registers,
    });
    this.enrolments = new Counter({
      name: 'fedtunnel_enrolment_total',
      help: 'Agent enrolments (bootstrap token) and renewals (current certificate): enrolled, renewed, or the refusal code in lower case',
      labelNames: ['result'],
      registers,
    });
    this.revocationListEntries = new Gauge({ name: 'fedtunnel_revocation_list_entries', help: 'Serial numbers on the revocation list in force', registers });
  }
}
