#!/usr/bin/env node
/**
 * fedtunnel-certs: admin CLI for the tunnel PKI. Argument validation lives in
 * parseCliOptions (pure, unit-tested); runCommand does the file I/O.
 */
import fs from 'node:fs';
import { isIP } from 'node:net';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { InvalidNameError, isDnsLabel, isDnsName, isSubjectName } from './names.js';
import {
  type CertKeyPair,
  type KeyPairPaths,
  createCA,
  issueAgentCert,
  issueClientCert,
  issueServerCert,
  keyPairPaths,
  readKeyPair,
  writeKeyPair,
} from './pki.js';

export type CliCommand =
  | { command: 'help' }
  | { command: 'init-ca'; dir: string; commonName?: string; days?: number; force: boolean }
  | { command: 'server'; dir: string; name: string; dnsNames: string[]; ipAddresses: string[]; days?: number }
  | { command: 'agent'; dir: string; cluster: string; tenant: string; days?: number }
  | { command: 'client'; dir: string; user: string; groups: string[]; days?: number };

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
  help: { type: 'boolean', short: 'h' },
} as const;

type OptionName = keyof typeof OPTIONS;
type Subcommand = Exclude<CliCommand['command'], 'help'>;

const OPTIONS_BY_COMMAND: Record<Subcommand, readonly OptionName[]> = {
  'init-ca': ['dir', 'cn', 'days', 'force'],
  server: ['dir', 'name', 'dns', 'ip', 'days'],
  agent: ['dir', 'cluster', 'tenant', 'days'],
  client: ['dir', 'user', 'group', 'days'],
};

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
  if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]}'`);
  const subcommand = command as Subcommand;
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
export function runCommand(command: Exclude<CliCommand, { command: 'help' }>): KeyPairPaths {
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
