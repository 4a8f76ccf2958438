// Start-up helpers shared by every binary: flag parsing and validation (usage errors exit 2),
// help, and the signal handling (drain on SIGTERM/SIGINT, certificate reload on SIGHUP).
import { parseArgs } from 'node:util';
import type { LevelWithSilent } from 'pino';
import { parseHostPort, type HostPort } from './address.js';
import { LOG_LEVELS } from './log.js';
import { parseDuration } from './duration.js';

export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly exitCode = 2;
}

export const DAY_MS = 86_400_000;

export function listenFlag(flag: string, value: string | undefined, fallback: string | null): HostPort | null {
  const text = value ?? fallback;
  if (text === null || text === 'off') return null;
  const parsed = parseHostPort(text, { allowPortZero: true });
  if (!parsed) throw new UsageError(`--${flag}: expected HOST:PORT, got ${JSON.stringify(text)}`);
  return parsed;
}

/** A listener or address that must exist: like listenFlag, but "off" is a usage error. */
export function requiredListenFlag(flag: string, value: string | undefined, fallback: string | null): HostPort {
  const parsed = listenFlag(flag, value, fallback);
  if (!parsed) throw new UsageError(`--${flag}: expected HOST:PORT, got ${JSON.stringify(value ?? fallback ?? '')} (it cannot be off)`);
  return parsed;
}

export function integerFlag(flag: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value)) throw new UsageError(`--${flag}: expected a whole number, got ${JSON.stringify(value)}`);
  const n = Number(value);
  if (n < min || n > max) throw new UsageError(`--${flag}: must be between ${min} and ${max}, got ${n}`);
  return n;
}

/** A duration flag ("90s", "12h", "30d"), at least `minMs`. */
export function durationFlag(flag: string, value: string | undefined, fallback: number, minMs: number): number {
  if (value === undefined) return fallback;
  let ms: number;
  try {
    ms = parseDuration(value);
  } catch (error) {
    throw new UsageError(`--${flag}: ${(error as Error).message}`);
  }
  if (ms < minMs) throw new UsageError(`--${flag}: must be at least ${minMs} ms, got ${JSON.stringify(value)}`);
  return ms;
}

export function choiceFlag<T extends string>(flag: string, value: string | undefined, choices: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!(choices as readonly string[]).includes(value)) throw new UsageError(`--${flag}: expected one of ${choices.join(', ')}, got ${JSON.stringify(value)}`);
  return value as T;
}

export function requiredFlag(flag: string, value: string | undefined): string {
  if (!value) throw new UsageError(`--${flag} is required`);
  return value;
}

/** An optional file flag: null when absent; an empty value is a usage error rather than "no file". */
export function fileFlag(flag: string, value: string | undefined): string | null {
  if (value === undefined) return null;
  if (value === '') throw new UsageError(`--${flag}: expected a file name`);
  return value;
}

export function logLevelFlag(value: string | undefined): LevelWithSilent {
  const level = value ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new UsageError(`--log-level: expected one of ${LOG_LEVELS.join(', ')}`);
  return level as LevelWithSilent;
}

export function parseFlags<T extends Record<string, { type: 'string' | 'boolean'; multiple?: boolean }>>(argv: string[], spec: T) {
  try {
    return parseArgs({ args: argv, options: { ...spec, help: { type: 'boolean' } }, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}


/**
 * The start of every binary: parses argv, prints help and exits 0 for --help, prints the usage
 * error and exits 2 for a bad flag.
 */
export function parseOrExit<T>(binary: string, help: string, parse: (argv: string[]) => T | 'help', argv = process.argv.slice(2)): T {
  let result: T | 'help';
  try {
    result = parse(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`${binary}: ${error.message}\n${help}\n`);
    process.exit(error.exitCode);
  }
  if (result === 'help') {
    process.stdout.write(`${help}\n`);
    process.exit(0);
  }
  return result;
}

type SignalLog = { info(o: object, m: string): void; warn(o: object, m: string): void; error(o: object, m: string): void };

/** SIGHUP reloads certificates; a reload that fails keeps the old ones and says so. */
export function reloadCertificatesOnSighup(log: SignalLog, reload: () => void): void {
  process.on('SIGHUP', () => {
    try {
      reload();
      log.info({}, 'certificates reloaded');
    } catch (error) {
      log.error({ err: (error as Error).message }, 'certificate reload failed; keeping the old ones');
    }
  });
}

/**
 * SIGTERM/SIGINT run `drain` once (then exit 0, or 1 if it fails); a second signal exits at once.
 */
export function exitOnSignals(log: SignalLog, drain: (signal: string) => Promise<void>): void {
  let signals = 0;
  const onSignal = (signal: string): void => {
    if (++signals > 1) {
      log.warn({ signal }, 'second signal: exiting without drain');
      process.exit(1);
    }
    drain(signal).then(
      () => process.exit(0),
      (error: Error) => {
        log.error({ err: error.message }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
}
