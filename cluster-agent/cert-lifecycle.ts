// In --cert-dir mode: a usable certificate before the first link (the one in the directory, or a
// fresh enrolment), then a renewal when it is due, each followed by a new link with the new
// certificate. Transient failures (hub unreachable, 5xx) are retried with the agent's backoff.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { backoffDelay, type ClusterAgent } from './agent.js';
import { EnrolmentFailure, enrol, loadCertificates, renew, renewalDue, type CertificateInfo } from './enrolment.js';
import type { AgentOptions } from './options.js';

/** setTimeout's limit (~24.8 days): a later renewal is re-checked at this interval. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The certificate to start with. Throws an EnrolmentFailure when enrolment is refused for good
 * (the caller exits with its message); retries others until `signal` aborts.
 */
export async function obtainCertificate(options: AgentOptions, log: Logger, signal: AbortSignal): Promise<CertificateInfo> {
  const existing = loadCertificates(options);
  if (existing) {
    log.info({ serial: existing.serial, cluster: existing.identity.cluster, validTo: existing.notAfter.toISOString() }, 'using the certificate in --cert-dir');
    return existing;
  }
  for (let attempt = 0; ; attempt++) {
    try {
      return await enrol(options, log);
    } catch (error) {
      if (!(error instanceof EnrolmentFailure) || error.definitive || signal.aborted) throw error;
      const delayMs = backoffDelay(attempt, options.backoffInitialMs, options.backoffMaxMs);
      log.warn({ code: error.code, err: error.message, attempt, delayMs }, 'enrolment attempt failed; retrying');
      await sleep(delayMs, undefined, { signal });
    }
  }
}

/** Renews the certificate when due, then moves the agent to a new link; retried with backoff on failure. */
export class CertificateRenewal {
  private timer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private stopped = false;

  constructor(
    private readonly options: AgentOptions,
    private readonly agent: ClusterAgent,
    private readonly log: Logger,
  ) {}

  start(current: CertificateInfo): void {
    this.schedule(renewalDue(this.options, current));
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(at: Date): void {
    if (this.stopped) return;
    const delay = at.getTime() - Date.now();
    this.log.info({ renewAt: at.toISOString() }, 'certificate renewal scheduled');
    this.timer = setTimeout(() => (Date.now() >= at.getTime() ? void this.run() : this.schedule(at)), Math.max(0, Math.min(delay, MAX_TIMER_MS)));
  }

  private async run(): Promise<void> {
    if (this.stopped) return;
    try {
      const next = await renew(this.options, this.log);
      if (this.stopped) return;
      this.attempt = 0;
      this.agent.rotateLink();
      this.schedule(renewalDue(this.options, next));
    } catch (error) {
      if (this.stopped) return;
      const delayMs = backoffDelay(this.attempt++, this.options.backoffInitialMs, this.options.backoffMaxMs);
      const code = error instanceof EnrolmentFailure ? error.code : undefined;
      this.log.warn({ code, err: (error as Error).message, attempt: this.attempt, delayMs }, 'certificate renewal failed; retrying');
      this.timer = setTimeout(() => void this.run(), delayMs);
    }
  }
}
