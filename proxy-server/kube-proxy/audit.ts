// One audit line and the metrics of each proxied request, written when it ends (a watch or an
// upgrade: when it closes). The path is logged without its query (it may carry secrets); bytes
// are counted on the client connection.
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { KubeProxyMetrics } from './metrics.js';

/** What a request's audit line names: the admitted request (admission.ts's Admitted) as it is, with no copy of its own. */
export interface AuditRecord {
  identity: { user: string; groups: readonly string[] };
  impersonatedBy?: string;
  cluster: { name: string };
  verb: string;
  /** The member path without its query. */
  route: { memberPath: string };
}

/** The status of a request whose client went away before the response ended (nginx's convention). */
export const CLIENT_CLOSED = 499;

/** What the audit line reads bytes from: a net.Socket, or an h2 stream's own counts. */
export interface ByteCounts {
  readonly bytesRead: number;
  readonly bytesWritten: number;
}

interface AuditLine {
  user: string;
  groups: readonly string[];
  impersonatedBy?: string | undefined;
  cluster: string;
  verb: string;
  path: string;
  status: number;
  bytesIn: number;
  bytesOut: number;
  ms: number;
  sid: string | undefined;
}

export class AuditTrail {
  constructor(
    private readonly log: Logger,
    private readonly metrics: KubeProxyMetrics,
  ) {}

  /**
   * Starts timing a request whose bytes `socket` counts (its connection, or for an h2 stream a
   * counter of its own: the connection is shared); call the returned function once, with the final
   * status and stream id.
   */
  begin(record: AuditRecord, socket: ByteCounts): (status: number, sid: string | undefined) => void {
    const started = performance.now();
    const read0 = socket.bytesRead;
    const written0 = socket.bytesWritten;
    let done = false;
    return (status, sid) => {
      if (done) return;
      done = true;
      const seconds = (performance.now() - started) / 1000;
      const cluster = record.cluster.name;
      this.metrics.requests.inc({ cluster, verb: record.verb, code: String(status) });
      this.metrics.duration.observe({ cluster, verb: record.verb }, seconds);
      // One object of one shape per line: pino leaves out undefined fields (impersonatedBy, sid).
      const line: AuditLine = { user: record.identity.user, groups: record.identity.groups, impersonatedBy: record.impersonatedBy, cluster, verb: record.verb, path: record.route.memberPath, status, bytesIn: socket.bytesRead - read0, bytesOut: socket.bytesWritten - written0, ms: Math.round(seconds * 1000), sid };
      this.log.info(line, 'kube-proxy audit');
    };
  }
}
