// The hub's bootstrap tokens: the admin's token file (--bootstrap-tokens, written by
// `fedtunnel-certs token create`, re-read on SIGHUP) and the ledger of used tokens. A single hub
// keeps the ledger in a file (--bootstrap-tokens-used, default <file>.used); each file has a single
// writer — the CLI the first, the hub the second — so the two never race on one file; a token is
// used once its id is in the ledger, fsync'd before the certificate is returned, so a restart
// cannot make it usable again. Replicas (--advertise-agent-address) share the ledger in the
// federation store's database instead (replicas/used-tokens-store.ts): a file per replica would let
// a token be used once per replica. Their file ledger, if any, is imported there at start (tokens
// spent before the hub ran as replicas stay spent) and no longer written.
import fs from 'node:fs';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { EnrolmentError, admitToken, claimOutcome, parseTokenFile, parseUsedLedger, tokenUsed, type BootstrapToken, type TokenRecord } from '../certs/enrolment.js';
import type { UsedTokenTable } from './replicas/used-tokens-store.js';

export class BootstrapTokenStore {
  private records: Map<string, TokenRecord>;
  private readonly used: Set<string>;
  /** The replicas' shared ledger once shareLedger ran; then the file ledger is no longer consulted (also not after close). */
  private shared: { table: UsedTokenTable; replica: string; closed: boolean } | null = null;
  private readonly claims: Counter;

  /** Loads both files (a missing ledger is empty); a token file that does not load throws, so the hub does not start. */
  constructor(
    private readonly file: string,
    private readonly usedFile: string,
    private readonly log: Logger,
    registry?: Registry,
  ) {
    this.records = parseTokenFile(fs.readFileSync(file, 'utf8'), file);
    this.used = readLedger(usedFile);
    this.claims = new Counter({
      name: 'fedtunnel_bootstrap_token_claims_total',
      help: 'Bootstrap tokens marked used, by ledger (file: a single hub; store: the replicas\' shared table) and result: claimed, retried (the same key again), used (refused), failed (the ledger could not be written or reached)',
      labelNames: ['ledger', 'result'],
      registers: registry ? [registry] : [],
    });
  }

  /**
   * Replicas: from now on tokens are claimed in the shared table. The ids of this hub's file ledger
   * go in first (without a key, so they are refused to everyone); the table is closed by close().
   */
  async shareLedger(table: UsedTokenTable, replica: string): Promise<void> {
    const spent = [...this.used].map((id) => ({ id, cluster: this.records.get(id)?.cluster ?? '', usedBy: replica, keySha256: '' }));
    await table.importUsed(spent);
    this.shared = { table, replica, closed: false };
    this.log.info({ ledger: 'store', imported: spent.length }, 'used bootstrap tokens are recorded in the federation store (replicas)');
  }

  get ledger(): 'file' | 'store' {
    return this.shared ? 'store' : 'file';
  }

  /** Closes the shared table; a claim after this is LEDGER_UNAVAILABLE, never a fall-back to the file. */
  async close(): Promise<void> {
    if (!this.shared || this.shared.closed) return;
    this.shared.closed = true;
    await this.shared.table.close();
  }

  get size(): number {
    return this.records.size;
  }

  /** SIGHUP: re-reads the token file; one that does not load keeps the old tokens (logged as an error). */
  reload(): void {
    try {
      this.records = parseTokenFile(fs.readFileSync(this.file, 'utf8'), this.file);
      for (const id of readLedger(this.usedFile)) this.used.add(id);
    } catch (error) {
      this.log.error({ err: (error as Error).message, tokens: this.records.size }, 'bootstrap token reload failed; keeping the old tokens');
      return;
    }
    this.log.info({ tokens: this.records.size, ledger: this.ledger, ...(this.shared ? {} : { used: this.used.size }) }, 'bootstrap tokens reloaded');
  }

  /**
   * Admits the token and marks it used, durably, before returning its record (the certificate is
   * issued only after). `keySha256`: the enrolling key (publicKeySha256), recorded by the shared ledger.
   */
  async consume(token: BootstrapToken, keySha256: string, now = new Date()): Promise<TokenRecord> {
    return this.shared ? this.claimShared(this.shared, token, keySha256, now) : this.claimInFile(token, now);
  }

  /** The shared table decides single use: of two replicas (or two requests here) racing on one id, one insert goes in. */
  private async claimShared(shared: { table: UsedTokenTable; replica: string; closed: boolean }, token: BootstrapToken, keySha256: string, now: Date): Promise<TokenRecord> {
    // Known, right secret, not expired; whether it is used is the table's answer, not a local cache.
    const record = admitToken(token, this.records, new Set(), now);
    let stored: { inserted: boolean; keySha256: string };
    try {
      if (shared.closed) throw new Error('the hub is stopping');
      stored = await shared.table.claim({ id: record.id, cluster: record.cluster, usedBy: shared.replica, keySha256 });
    } catch (error) {
      this.claims.inc({ ledger: 'store', result: 'failed' });
      // Nothing is issued: if the insert did commit, the agent's retry with its same key is recognised.
      throw new EnrolmentError('LEDGER_UNAVAILABLE', `cannot record bootstrap token ${record.id} as used in the federation store: ${(error as { code?: string }).code ?? (error as Error).message}`);
    }
    const outcome = claimOutcome(stored.inserted, stored.keySha256, keySha256);
    this.claims.inc({ ledger: 'store', result: outcome });
    if (outcome === 'used') throw tokenUsed(record.id);
    if (outcome === 'retried') this.log.info({ tokenId: record.id, cluster: record.cluster }, 'bootstrap token presented again with the key it enrolled; issuing again');
    return record;
  }

  /** Check and mark happen without yielding, so two requests with one token cannot both pass. */
  private claimInFile(token: BootstrapToken, now: Date): TokenRecord {
    let record: TokenRecord;
    try {
      record = admitToken(token, this.records, this.used, now);
    } catch (error) {
      if (error instanceof EnrolmentError && error.code === 'TOKEN_USED') this.claims.inc({ ledger: 'file', result: 'used' });
      throw error;
    }
    this.used.add(record.id);
    try {
      const fd = fs.openSync(this.usedFile, 'a', 0o600);
      try {
        fs.writeSync(fd, `${record.id} ${now.toISOString()} ${record.cluster}\n`);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    } catch (error) {
      // It stays used in memory: a token we could not record is not handed out twice by this process either.
      this.claims.inc({ ledger: 'file', result: 'failed' });
      throw new EnrolmentError('INTERNAL', `cannot record bootstrap token ${record.id} as used in ${this.usedFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
    this.claims.inc({ ledger: 'file', result: 'claimed' });
    return record;
  }
}

function readLedger(file: string): Set<string> {
  try {
    return parseUsedLedger(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return new Set();
    throw error;
  }
}
