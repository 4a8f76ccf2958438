// The hub's bootstrap tokens: the admin's token file (--bootstrap-tokens, written by
// `fedtunnel-certs token create`, re-read on SIGHUP) and the hub's own ledger of used tokens
// (--bootstrap-tokens-used, default <file>.used). Each file has a single writer — the CLI the
// first, the hub the second — so the two never race on one file; a token is used once its id is in
// the ledger, fsync'd before the certificate is returned, so a restart cannot make it usable again.
// With several hub replicas each needs the same ledger (a shared volume) or a token could be used
// once per replica: the federation store is the place for it then (not done yet, README).
import fs from 'node:fs';
import type { Logger } from 'pino';
import { EnrolmentError, admitToken, parseTokenFile, parseUsedLedger, type BootstrapToken, type TokenRecord } from '../certs/enrolment.js';

export class BootstrapTokenStore {
  private records: Map<string, TokenRecord>;
  private readonly used: Set<string>;

  /** Loads both files (a missing ledger is empty); a token file that does not load throws, so the hub does not start. */
  constructor(
    private readonly file: string,
    private readonly usedFile: string,
    private readonly log: Logger,
  ) {
    this.records = parseTokenFile(fs.readFileSync(file, 'utf8'), file);
    this.used = readLedger(usedFile);
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
    this.log.info({ tokens: this.records.size, used: this.used.size }, 'bootstrap tokens reloaded');
  }

  /**
   * Admits the token and marks it used, durably, before returning its record. Check and mark
   * happen without yielding, so two requests with one token cannot both pass.
   */
  consume(token: BootstrapToken, now = new Date()): TokenRecord {
    const record = admitToken(token, this.records, this.used, now);
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
      throw new EnrolmentError('INTERNAL', `cannot record bootstrap token ${record.id} as used in ${this.usedFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
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
