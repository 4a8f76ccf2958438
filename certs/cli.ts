#!/usr/bin/env node
/**
 * fedtunnel-certs: admin CLI for the tunnel PKI. Argument validation lives in
 * parseCliOptions (pure, unit-tested); runCommand does the file I/O.
 */
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import type { PeerCertificate } from 'node:tls';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { agentIdentityFromPeer } from './identity.js';
import { parseDuration } from '../common/duration.js';
import { type TokenRecord, certificateFingerprint, formatToken, formatTokenRecord, generateToken, parseTokenFile, tokenRecord } from './enrolment.js';
import { InvalidNameError, isDnsLabel, isDnsName, isSubjectName } from './names.js';
import { REVOCATION_FILE_NAME, RevocationList, RevocationListError, formatRevocationEntry, invalidNoteReason, normalizeSerial } from './revocation.js';
import {
  type CertKeyPair,
  type KeyPairPaths,
  createCA,
  issueAgentCert,
  issueClientCert,
  issueServerCert,
  keyPairPaths,
  readKeyPair,
  writeFileAtomically,
  writeKeyPair,
} from './pki.js';

export type CliCommand =
  | { command: 'help' }
  | { command: 'init-ca'; dir: string; commonName?: string; days?: number; force: boolean }
  | { command: 'server'; dir: string; name: string; dnsNames: string[]; ipAddresses: string[]; days?: number }
  | { command: 'agent'; dir: string; cluster: string; tenant: string; days?: number }
  | { command: 'client'; dir: string; user: string; groups: string[]; days?: number }
  | { command: 'revoke'; dir: string; target: string; reason?: string }
  | { command: 'revoked'; dir: string }
  | { command: 'token'; action: 'create'; dir: string; cluster: string; tenant: string; ttlMs: number };

type IssueCommand = Extract<CliCommand, { command: 'init-ca' | 'server' | 'agent' | 'client' }>;
type RevocationCommand = Extract<CliCommand, { command: 'revoke' | 'revoked' }>;
type TokenCommand = Extract<CliCommand, { command: 'token' }>;

/** Where token create writes, next to revoked.txt; the hub reads it with --bootstrap-tokens. */
export const BOOTSTRAP_TOKENS_FILE_NAME = 'bootstrap-tokens.txt';

/** Bad invocation; reported with exit code 2. */
export class UsageError extends Error {
  readonly code = 'USAGE';

  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const USAGE = `Usage: fedtunnel-certs <command> [options]

Commands:
  init-ca --dir D [--cn NAME] [--days N] [--force]
      Create the CA (ca.crt, ca.key). Refuses to replace an existing CA unless --force.
  server --dir D --name NAME [--dns HOST]... [--ip ADDR]... [--days N]
      Issue the proxy-server certificate (server.crt, server.key).
  agent --dir D --cluster C --tenant T [--days N]
      Issue a cluster agent certificate (agent-<C>.crt, agent-<C>.key).
  client --dir D --user U [--group G]... [--days N]
      Issue a user client certificate (client-<U>.crt, client-<U>.key).
  revoke --dir D <CERT-FILE | SERIAL> [--reason TEXT]
      Add the certificate's serial number to D/revoked.txt (created if missing). Then send SIGHUP
      to the proxy-server (and any apiserver) started with --revoked D/revoked.txt.
  revoked --dir D
      List the revoked serial numbers in D/revoked.txt.
  token create --dir D --cluster C [--tenant T] [--ttl DURATION]
      Create a single-use bootstrap token for cluster C's agent (tenant T [default], valid for
      DURATION [1h]; e.g. 15m, 24h, 7d). Prints the token once on stdout; D/bootstrap-tokens.txt
      keeps only its SHA-256. Then send SIGHUP to the proxy-server started with
      --bootstrap-tokens D/bootstrap-tokens.txt.

Options:
  -h, --help   Show this help.
`;

const OPTIONS = {
  dir: { type: 'string' },
  cn: { type: 'string' },
  days: { type: 'string' },
  force: { type: 'boolean' },
  name: { type: 'string' },
  dns: { type: 'string', multiple: true },
  ip: { type: 'string', multiple: true },
  cluster: { type: 'string' },
  tenant: { type: 'string' },
  user: { type: 'string' },
  group: { type: 'string', multiple: true },
  reason: { type: 'string' },
  ttl: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type OptionName = keyof typeof OPTIONS;
type Subcommand = Exclude<CliCommand['command'], 'help'>;

const OPTIONS_BY_COMMAND: Record<Subcommand, readonly OptionName[]> = {
  'init-ca': ['dir', 'cn', 'days', 'force'],
  server: ['dir', 'name', 'dns', 'ip', 'days'],
  agent: ['dir', 'cluster', 'tenant', 'days'],
  client: ['dir', 'user', 'group', 'days'],
  revoke: ['dir', 'reason'],
  revoked: ['dir'],
  token: ['dir', 'cluster', 'tenant', 'ttl'],
};

export const DEFAULT_TOKEN_TTL_MS = 3_600_000;
export const DEFAULT_TOKEN_TENANT = 'default';

export function parseCliOptions(argv: string[]): CliCommand {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) return { command: 'help' };

  const [command, ...extra] = positionals;
  if (command === undefined) throw new UsageError('missing command (see --help)');
  if (!Object.hasOwn(OPTIONS_BY_COMMAND, command)) throw new UsageError(`unknown command '${command}' (see --help)`);
  const subcommand = command as Subcommand;
  const positionalCount = subcommand === 'revoke' || subcommand === 'token' ? 1 : 0;
  if (extra.length > positionalCount) throw new UsageError(`unexpected argument '${extra[positionalCount]}'`);
  if (extra.length < positionalCount) throw new UsageError(subcommand === 'token' ? 'token: expected the action create' : `${subcommand}: name a certificate file or a serial number`);
  for (const option of Object.keys(values) as OptionName[]) {
    if (!OPTIONS_BY_COMMAND[subcommand].includes(option)) throw new UsageError(`option --${option} is not valid for ${subcommand}`);
  }

  const dir = required(values.dir, 'dir');
  const days = values.days === undefined ? undefined : positiveInteger(values.days, 'days');
  switch (subcommand) {
    case 'init-ca':
      return {
        command: 'init-ca',
        dir,
        commonName: values.cn === undefined ? undefined : validated(values.cn, 'cn', isSubjectName),
        days,
        force: values.force ?? false,
      };
    case 'server':
      return {
        command: 'server',
        dir,
        name: validated(required(values.name, 'name'), 'name', isSubjectName),
        dnsNames: (values.dns ?? []).map((dnsName) => validated(dnsName, 'dns', isDnsName)),
        ipAddresses: (values.ip ?? []).map((ip) => validated(ip, 'ip', (address) => isIP(address) !== 0)),
        days,
      };
    case 'agent':
      return {
        command: 'agent',
        dir,
        cluster: validated(required(values.cluster, 'cluster'), 'cluster', isDnsLabel),
        tenant: validated(required(values.tenant, 'tenant'), 'tenant', isDnsLabel),
        days,
      };
    case 'client':
      return {
        command: 'client',
        dir,
        user: validated(required(values.user, 'user'), 'user', isSubjectName),
        groups: (values.group ?? []).map((group) => validated(group, 'group', isSubjectName)),
        days,
      };
    case 'revoke': {
      const problem = values.reason === undefined ? null : invalidNoteReason(values.reason);
      if (problem !== null) throw new UsageError(`--reason ${problem}`);
      return { command: 'revoke', dir, target: extra[0]!, ...(values.reason?.trim() ? { reason: values.reason.trim() } : {}) };
    }
    case 'revoked':
      return { command: 'revoked', dir };
    case 'token': {
      if (extra[0] !== 'create') throw new UsageError(`token: unknown action '${extra[0]}' (expected create)`);
      let ttlMs = DEFAULT_TOKEN_TTL_MS;
      if (values.ttl !== undefined) {
        try {
          ttlMs = parseDuration(values.ttl);
        } catch (error) {
          throw new UsageError(`--ttl: ${(error as Error).message}`);
        }
        if (ttlMs < 1000) throw new UsageError('--ttl must be at least 1s');
      }
      return {
        command: 'token',
        action: 'create',
        dir,
        cluster: validated(required(values.cluster, 'cluster'), 'cluster', isDnsLabel),
        tenant: values.tenant === undefined ? DEFAULT_TOKEN_TENANT : validated(values.tenant, 'tenant', isDnsLabel),
        ttlMs,
      };
    }
  }
}

function required(value: string | undefined, option: OptionName): string {
  if (value === undefined || value === '') throw new UsageError(`missing required option --${option}`);
  return value;
}

function validated(value: string, option: OptionName, isValid: (value: string) => boolean): string {
  if (!isValid(value)) throw new UsageError(`invalid value for --${option}: ${JSON.stringify(value)}`);
  return value;
}

function positiveInteger(value: string, option: OptionName): number {
  const number = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(number) || number < 1) {
    throw new UsageError(`--${option} must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return number;
}

/** Performs the command and returns the paths it wrote. */
export function runCommand(command: IssueCommand): KeyPairPaths {
  switch (command.command) {
    case 'init-ca': {
      const paths = keyPairPaths(command.dir, 'ca');
      if (!command.force && (fs.existsSync(paths.cert) || fs.existsSync(paths.key))) {
        // Replacing a CA invalidates every certificate it issued.
        throw new Error(`a CA already exists in ${command.dir}; use --force to replace it`);
      }
      return writeKeyPair(command.dir, 'ca', createCA({ commonName: command.commonName, days: command.days }));
    }
    case 'server':
      return writeKeyPair(
        command.dir,
        'server',
        issueServerCert(readCA(command.dir), {
          commonName: command.name,
          dnsNames: command.dnsNames,
          ipAddresses: command.ipAddresses,
          days: command.days,
        }),
      );
    case 'agent':
      return writeKeyPair(
        command.dir,
        `agent-${command.cluster}`,
        issueAgentCert(readCA(command.dir), { cluster: command.cluster, tenant: command.tenant, days: command.days }),
      );
    case 'client':
      return writeKeyPair(
        command.dir,
        `client-${command.user}`,
        issueClientCert(readCA(command.dir), { user: command.user, groups: command.groups, days: command.days }),
      );
  }
}

/** Performs revoke/revoked and returns what to print. */
export function runRevocationCommand(command: RevocationCommand): string {
  const file = path.join(command.dir, REVOCATION_FILE_NAME);
  const text = readIfExists(file);
  let list: RevocationList;
  try {
    list = RevocationList.parse(text ?? '');
  } catch (error) {
    // Never rewrite a file we cannot read back: the operator fixes the line first.
    if (error instanceof RevocationListError) throw new Error(`${file} ${error.message}`);
    throw error;
  }
  if (command.command === 'revoked') {
    if (list.entries.length === 0) return `no certificates revoked in ${file}${text === null ? ' (the file does not exist)' : ''}\n`;
    return list.entries.map((entry) => (entry.note === '' ? entry.serial : `${entry.serial}  ${entry.note}`)).join('\n') + '\n';
  }

  const { serial, holder } = revocationTarget(command.target);
  const existing = list.entry(serial);
  if (existing) return `serial ${serial} is already revoked (${file} line ${existing.line}); nothing changed\n`;
  const note = [new Date().toISOString().replace(/\.\d+Z$/, 'Z'), holder, command.reason && `reason: ${command.reason}`].filter(Boolean).join(' ');
  const before = text === null || text === '' || text.endsWith('\n') ? (text ?? '') : `${text}\n`;
  fs.mkdirSync(command.dir, { recursive: true, mode: 0o700 });
  // Not secret (0644), but replaced atomically: a hub reloading on SIGHUP never reads half a file.
  writeFileAtomically(file, `${before}${formatRevocationEntry(serial, note)}\n`, 0o644);
  return (
    `revoked serial ${serial}${holder ? ` (${holder})` : ''} in ${file}\n` +
    `apply it: send SIGHUP to the proxy-server (and any apiserver) started with --revoked ${file}, e.g. kill -HUP <pid>;\n` +
    `open agent links and CONNECT tunnels of this certificate are closed at once\n`
  );
}

/**
 * token create: appends the token's hashed record to D/bootstrap-tokens.txt (replaced atomically,
 * as the hub re-reads it on SIGHUP) and returns the token, which is printed once and kept nowhere.
 */
export function runTokenCommand(command: TokenCommand, now = new Date()): { token: string; file: string; record: TokenRecord; caFingerprint: string } {
  const file = path.join(command.dir, BOOTSTRAP_TOKENS_FILE_NAME);
  const text = readIfExists(file) ?? '';
  const records = parseTokenFile(text, file);
  let token = generateToken();
  while (records.has(token.id)) token = generateToken();
  const record = tokenRecord(token, command.cluster, command.tenant, new Date(now.getTime() + command.ttlMs));
  // The agent pins the CA by this fingerprint; printing it here saves the admin a step.
  const caFingerprint = certificateFingerprint(readCA(command.dir).certPem);
  const header = text === '' ? '# fedtunnel bootstrap tokens: <id> <sha256 of secret> <cluster> <tenant> <expires>\n' : text.endsWith('\n') ? '' : '\n';
  fs.mkdirSync(command.dir, { recursive: true, mode: 0o700 });
  writeFileAtomically(file, `${text}${header}${formatTokenRecord(record)}\n`, 0o600);
  return { token: formatToken(token), file, record, caFingerprint };
}

/** The serial (and, from a certificate file, who holds it) named by a file path or a hex serial. */
function revocationTarget(target: string): { serial: string; holder?: string } {
  const contents = readIfExists(target, null);
  if (contents === null) {
    const serial = normalizeSerial(target);
    if (serial === null) throw new Error(`${target}: no such file, and not a serial number (hex digits, colons allowed)`);
    return { serial };
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(contents);
  } catch {
    throw new Error(`${target} is not a certificate (expected PEM or DER X.509)`);
  }
  const agent = agentIdentityFromPeer({ subjectaltname: cert.subjectAltName ?? '' } as PeerCertificate);
  const commonName = /^CN=(.*)$/m.exec(cert.subject)?.[1] ?? '';
  // The holder goes into the note, which must stay on its line and free of comment marks.
  const holder = agent ? `agent ${agent.tenant}/${agent.cluster}` : `CN=${commonName.replace(/[#\u0000-\u001f\u007f]/g, '?')}`;
  return { serial: normalizeSerial(cert.serialNumber)!, holder };
}

/** A file's contents, or null when it does not exist. */
function readIfExists(file: string, encoding: BufferEncoding): string | null;
function readIfExists(file: string, encoding: null): Buffer | null;
function readIfExists(file: string): string | null;
function readIfExists(file: string, encoding: BufferEncoding | null = 'utf8'): string | Buffer | null {
  try {
    return fs.readFileSync(file, encoding === null ? undefined : encoding);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

function readCA(dir: string): CertKeyPair {
  try {
    return readKeyPair(dir, 'ca');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`no CA in ${dir}; run init-ca first`);
    throw error;
  }
}

/** Runs the CLI and returns the process exit code. */
export function main(argv: string[]): number {
  try {
    const command = parseCliOptions(argv);
    if (command.command === 'help') {
      process.stdout.write(USAGE);
      return 0;
    }
    if (command.command === 'token') {
      const { token, file, record, caFingerprint } = runTokenCommand(command);
      // Only the token on stdout (`… > token` works); the rest is advice for the admin.
      process.stdout.write(`${token}\n`);
      process.stderr.write(
        `bootstrap token ${record.id} for cluster ${record.cluster} (tenant ${record.tenant}), single-use, expires ${record.expires.toISOString()}; recorded (hashed) in ${file}\n` +
          `apply it: send SIGHUP to the proxy-server started with --bootstrap-tokens ${file}\n` +
          `on the member: cluster-agent --server HUB:PORT --ca-fingerprint ${caFingerprint} --bootstrap-token-file FILE --cert-dir DIR\n`,
      );
      return 0;
    }
    if (command.command === 'revoke' || command.command === 'revoked') {
      process.stdout.write(runRevocationCommand(command));
      return 0;
    }
    const paths = runCommand(command);
    process.stdout.write(`${paths.cert}\n${paths.key}\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`error: ${(error as Error).message}\n`);
    return error instanceof UsageError || error instanceof InvalidNameError ? 2 : 1;
  }
}

/** True when this file is the process entry point, including via an npm bin symlink. */
function isEntryPoint(): boolean {
  const scriptPath = process.argv[1];
  if (scriptPath === undefined) return false;
  try {
    return import.meta.url === pathToFileURL(fs.realpathSync(scriptPath)).href;
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  process.exitCode = main(process.argv.slice(2));
}
