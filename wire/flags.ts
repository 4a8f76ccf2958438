// Flag parsing helpers shared by every binary's options module.
import { parseArgs } from 'node:util';
import type { LevelWithSilent } from 'pino';
import { parseHostPort, type HostPort } from './address.js';
import { LOG_LEVELS } from './log.js';

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

export function integerFlag(flag: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value)) throw new UsageError(`--${flag}: expected a whole number, got ${JSON.stringify(value)}`);
  const n = Number(value);
  if (n < min || n > max) throw new UsageError(`--${flag}: must be between ${min} and ${max}, got ${n}`);
  return n;
}

export function requiredFlag(flag: string, value: string | undefined): string {
  if (!value) throw new UsageError(`--${flag} is required`);
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

