// Revocation in the hub: the deny-list of --revoked, checked after every TLS handshake (both agent
// carriers, the CONNECT frontend, the embedded federation API server), and the open agent links
// and CONNECT tunnels that a SIGHUP reload must close because their certificate is now revoked.
// The listeners make one call each; what a refusal logs, counts and sends lives here.
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { AgentIdentity } from '../certs/identity.js';
import { RevocationList, loadRevocationFile, normalizeSerial } from '../certs/revocation.js';
import { refuseLink, type MuxSession } from '../wire/session.js';
import type { ServerMetrics } from './metrics.js';
import type { CarrierKind } from './registry.js';

export type RevocationListener = 'agent_tls' | 'agent_ws' | 'agent_http2' | 'agent_renew' | 'connect_tls' | 'federation';
export type RevokedConnectionKind = 'agent_link' | 'connect_tunnel';

/**
 * Logs a refusal. A listener with a ListenerGuard passes `(fields) => guard.refused('revoked', socket, fields)`,
 * so the refusal is one warn line like its other refusals and counted by reason as well.
 */
export type RefusalReport = (fields: Record<string, string>) => void;

interface OpenConnection {
  kind: RevokedConnectionKind;
  serial: string;
  who: Record<string, string>;
  close(reason: string): void;
}

export class RevocationGuard {
  private list: RevocationList;
  private readonly open = new Set<OpenConnection>();

  /** Loads `file` (null: nothing is revoked); a file that does not load throws, so the hub does not start. */
  constructor(
    private readonly file: string | null,
    private readonly metrics: ServerMetrics,
    private readonly log: Logger,
    /** How long a refused agent may take to read its GOAWAY before the carrier is cut. */
    private readonly lingerMs: number,
  ) {
    this.list = file === null ? RevocationList.EMPTY : loadRevocationFile(file);
    metrics.revocationListEntries.set(this.list.size);
  }

  /**
   * After a TLS handshake: true when the peer's certificate is revoked, counted and logged at warn
   * with the serial (not a secret) through `report`, or here without one; the caller then refuses
   * the connection in its protocol's terms.
   */
  refuses(listener: RevocationListener, serial: string | undefined, who: Record<string, string>, report?: RefusalReport): boolean {
    if (!this.list.isRevoked(serial)) return false;
    this.metrics.revokedRefusals.inc({ listener });
    const fields = { serial: display(serial), ...who };
    if (report) report(fields);
    else this.log.warn({ reason: 'revoked', listener, ...fields }, 'refused: certificate revoked');
    return true;
  }

  /** For the federation API server, which logs its own refusals (as a 403 Status): counts them. */
  readonly isRevokedForFederation = (serial: string): boolean => {
    const revoked = this.list.isRevoked(serial);
    if (revoked) this.metrics.revokedRefusals.inc({ listener: 'federation' });
    return revoked;
  };

  /** An agent carrier whose certificate is revoked gets a CERTIFICATE_REVOKED GOAWAY and is closed; returns true then. */
  refusesAgent(carrier: Duplex, kind: CarrierKind, serial: string | undefined, identity: AgentIdentity, report?: RefusalReport): boolean {
    if (!this.refuses(`agent_${kind}`, serial, { cluster: identity.cluster, tenant: identity.tenant, carrier: kind }, report)) return false;
    refuseLink(carrier, 'CERTIFICATE_REVOKED', `agent certificate serial ${display(serial)} is revoked`, this.lingerMs);
    return true;
  }

  /** Keeps an agent link until it closes, so that revoking its certificate closes it at once. */
  trackAgentLink(session: MuxSession, serial: string | undefined, identity: AgentIdentity): void {
    const untrack = this.track('agent_link', serial, { cluster: identity.cluster, tenant: identity.tenant }, (reason) =>
      session.destroy(new Error(reason), { reason, code: 'CERTIFICATE_REVOKED' }),
    );
    session.once('close', untrack);
  }

  /** Keeps an open connection until the returned function is called; revoking its certificate closes it. */
  track(kind: RevokedConnectionKind, serial: string | undefined, who: Record<string, string>, close: (reason: string) => void): () => void {
    if (serial === undefined) return () => undefined;
    const entry: OpenConnection = { kind, serial, who, close };
    this.open.add(entry);
    return () => this.open.delete(entry);
  }

  /**
   * SIGHUP: re-reads the file. A file that does not load keeps the old list (logged as an error);
   * otherwise every open agent link and CONNECT tunnel whose certificate is now revoked is closed.
   */
  reload(): void {
    if (this.file === null) return;
    let next: RevocationList;
    try {
      next = loadRevocationFile(this.file);
    } catch (error) {
      this.log.error({ err: (error as Error).message, entries: this.list.size }, 'revocation list reload failed; keeping the old one');
      return;
    }
    this.list = next;
    this.metrics.revocationListEntries.set(next.size);
    let closed = 0;
    for (const connection of [...this.open]) {
      if (!next.isRevoked(connection.serial)) continue;
      this.open.delete(connection);
      closed++;
      this.metrics.revokedClosed.inc({ kind: connection.kind });
      this.log.warn({ reason: 'revoked', kind: connection.kind, serial: display(connection.serial), ...connection.who }, 'closed: certificate revoked');
      connection.close(`certificate serial ${display(connection.serial)} is revoked`);
    }
    this.log.info({ entries: next.size, closed }, 'revocation list reloaded');
  }
}

function display(serial: string | undefined): string {
  return (serial !== undefined && normalizeSerial(serial)) || String(serial);
}
