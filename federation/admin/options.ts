// fedctl's command line, parsed and validated in one pure function (exit 2 with a message on a
// bad invocation). The commands mirror kubefedctl: join, unjoin, enable, disable; and kubeconfig
// (a user's kubeconfig for the hub's /clusters/<name>/ proxy).
import { parseArgs } from 'node:util';
import { UsageError } from '../../common/flags.js';
import { isDns1035Label, parseTargetTypeName } from '../kubefed/api.js';
import { normalizeHubUrl } from './user-kubeconfig.js';

export const FEDCTL_HELP = `usage: fedctl <command> [options]

Commands (like kubefedctl; the federation is the --context of --kubeconfig):
  join <cluster> --api-endpoint URL (--token-file F | --client-cert F --client-key F)
                 [--ca-file F] [--label k=v]... [--disabled-tls-validations '*'|SubjectName,ValidityPeriod]
      Creates the KubeFedCluster and its credential Secret. URL names the member's API server as
      seen from inside the member (e.g. https://kubernetes.default.svc:443): the hub reaches it
      through that cluster's agent. Re-running join updates both.
  unjoin <cluster> [--delete-propagated] [--timeout SECONDS]
      Removes the KubeFedCluster and its Secret. --delete-propagated first has the controller delete
      every object it propagated to the cluster (and waits for it, up to --timeout [60]).
  enable <type> [--version V]
      Federates a type: <plural>[.<group>] as in kubectl api-resources (configmaps,
      deployments.apps, widgets.example.com). Creates its FederatedTypeConfig, which registers
      Federated<Kind>. The type must be served by the federation API server (apply its CRD there).
  disable <type> [--delete]
      Stops propagating a type (propagation: Disabled); --delete removes its FederatedTypeConfig.
  kubeconfig --user NAME [--group G]... --hub https://HOST:PORT --ca FILE [-o FILE] CREDENTIAL
      Writes a kubeconfig for a user of the hub's /clusters/<name>/ proxy: one cluster and context
      per KubeFedCluster the user may reach (SubjectAccessReview: verb proxy on
      clusters.core.kubefed.io named after it; users in fedtunnel:tenant:<X> groups only clusters of
      their tenants), context name = cluster name, current context = the first. -o writes FILE
      (mode 0600, atomically) instead of stdout. No reachable cluster: exit 1. CREDENTIAL is one of
        --client-certificate F --client-key F     (embedded; its CN must be --user)
        --token T | --token-file F                (embedded)
        --oidc-issuer-url U --oidc-client-id ID [--oidc-extra-scope S]...
                                                  (exec: kubectl oidc-login get-token, kubelogin)

Common options:
  --kubeconfig FILE   [$KUBECONFIG or ~/.kube/config]
  --context NAME      the federation's context [current context]
  --namespace NS      the KubeFed system namespace [kube-federation-system]`;

export type FedctlCommand =
  | { command: 'join'; cluster: string; apiEndpoint: string; caFile: string | null; tokenFile: string | null; clientCert: string | null; clientKey: string | null; labels: Record<string, string>; disabledTlsValidations: string[] }
  | { command: 'unjoin'; cluster: string; deletePropagated: boolean; timeoutSeconds: number }
  | { command: 'enable'; type: string; version: string | null }
  | { command: 'disable'; type: string; delete: boolean }
  | { command: 'kubeconfig'; user: string; groups: string[]; hub: string; caFile: string; output: string | null; credential: CredentialFlags };

/** The credential flags of `kubeconfig` (files are read by main.ts). */
export type CredentialFlags =
  | { kind: 'certificate'; certFile: string; keyFile: string }
  | { kind: 'token'; token: string }
  | { kind: 'token-file'; tokenFile: string }
  | { kind: 'oidc'; issuerUrl: string; clientId: string; extraScopes: string[] };

export type FedctlOptions = FedctlCommand & { kubeconfig: string | null; context: string | null; namespace: string };

const LABEL = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?=([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

export function parseFedctlOptions(argv: string[]): FedctlOptions | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        help: { type: 'boolean', short: 'h' },
        kubeconfig: { type: 'string' },
        context: { type: 'string' },
        namespace: { type: 'string' },
        'api-endpoint': { type: 'string' },
        'ca-file': { type: 'string' },
        'token-file': { type: 'string' },
        'client-cert': { type: 'string' },
        'client-key': { type: 'string' },
        label: { type: 'string', multiple: true },
        'disabled-tls-validations': { type: 'string' },
        'delete-propagated': { type: 'boolean' },
        timeout: { type: 'string' },
        version: { type: 'string' },
        delete: { type: 'boolean' },
        user: { type: 'string' },
        group: { type: 'string', multiple: true },
        hub: { type: 'string' },
        ca: { type: 'string' },
        output: { type: 'string', short: 'o' },
        'client-certificate': { type: 'string' },
        token: { type: 'string' },
        'oidc-issuer-url': { type: 'string' },
        'oidc-client-id': { type: 'string' },
        'oidc-extra-scope': { type: 'string', multiple: true },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  const [command, target, ...extra] = parsed.positionals;
  if (v.help || !command) return 'help';
  if (extra.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
  const common = { kubeconfig: v.kubeconfig ?? null, context: v.context ?? null, namespace: v.namespace ?? 'kube-federation-system' };
  const only = (allowed: string[]): void => {
    const given = Object.keys(v).filter((k) => !['help', 'kubeconfig', 'context', 'namespace'].includes(k));
    const wrong = given.find((k) => !allowed.includes(k));
    if (wrong) throw new UsageError(`--${wrong} does not apply to ${command}`);
  };
  switch (command) {
    case 'join': {
      only(['api-endpoint', 'ca-file', 'token-file', 'client-cert', 'client-key', 'label', 'disabled-tls-validations']);
      const cluster = clusterName(target);
      if (!v['api-endpoint']) throw new UsageError('join: --api-endpoint is required');
      const hasCert = Boolean(v['client-cert']) || Boolean(v['client-key']);
      if (hasCert && !(v['client-cert'] && v['client-key'])) throw new UsageError('join: --client-cert and --client-key go together');
      if (!hasCert && !v['token-file']) throw new UsageError('join: a credential is required: --token-file, or --client-cert and --client-key');
      const labels: Record<string, string> = {};
      for (const l of v.label ?? []) {
        if (!LABEL.test(l)) throw new UsageError(`--label ${JSON.stringify(l)}: expected key=value`);
        const i = l.indexOf('=');
        labels[l.slice(0, i)] = l.slice(i + 1);
      }
      const disabled = (v['disabled-tls-validations'] ?? '').split(',').filter(Boolean);
      for (const d of disabled) if (!['*', 'SubjectName', 'ValidityPeriod'].includes(d)) throw new UsageError(`--disabled-tls-validations: unknown ${JSON.stringify(d)} (expected *, SubjectName or ValidityPeriod)`);
      return { ...common, command, cluster, apiEndpoint: v['api-endpoint'], caFile: v['ca-file'] ?? null, tokenFile: v['token-file'] ?? null, clientCert: v['client-cert'] ?? null, clientKey: v['client-key'] ?? null, labels, disabledTlsValidations: disabled };
    }
    case 'unjoin': {
      only(['delete-propagated', 'timeout']);
      const timeoutSeconds = Number(v.timeout ?? 60);
      if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 1) throw new UsageError('--timeout: expected a whole number of seconds ≥ 1');
      return { ...common, command, cluster: clusterName(target), deletePropagated: v['delete-propagated'] ?? false, timeoutSeconds };
    }
    case 'enable':
    case 'disable': {
      only(command === 'enable' ? ['version'] : ['delete']);
      if (!target) throw new UsageError(`${command}: the type is required, e.g. deployments.apps`);
      try {
        parseTargetTypeName(target);
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
      return command === 'enable' ? { ...common, command, type: target, version: v.version ?? null } : { ...common, command, type: target, delete: v.delete ?? false };
    }
    case 'kubeconfig': {
      only(['user', 'group', 'hub', 'ca', 'output', 'client-certificate', 'client-key', 'token', 'token-file', 'oidc-issuer-url', 'oidc-client-id', 'oidc-extra-scope']);
      if (target) throw new UsageError(`kubeconfig: unexpected argument ${JSON.stringify(target)}`);
      if (!v.user) throw new UsageError('kubeconfig: --user is required');
      if (!v.hub) throw new UsageError('kubeconfig: --hub is required (https://HOST:PORT of the hub)');
      const hub = normalizeHubUrl(v.hub);
      if (!hub) throw new UsageError(`--hub ${JSON.stringify(v.hub)}: expected https://HOST[:PORT] without a path`);
      if (!v.ca) throw new UsageError('kubeconfig: --ca is required (the CA of the hub\'s certificate)');
      const groups = v.group ?? [];
      if (groups.some((g) => g === '')) throw new UsageError('--group: empty group name');
      return { ...common, command, user: v.user, groups, hub, caFile: v.ca, output: v.output ?? null, credential: credentialFlags(v) };
    }
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  }
}

function clusterName(name: string | undefined): string {
  if (!name) throw new UsageError('the cluster name is required');
  if (!isDns1035Label(name)) throw new UsageError(`cluster name ${JSON.stringify(name)}: expected a lowercase RFC 1035 label`);
  return name;
}

/** Exactly one credential form, complete. */
function credentialFlags(v: Record<string, string | boolean | string[] | undefined>): CredentialFlags {
  const str = (k: string): string | undefined => (typeof v[k] === 'string' ? (v[k] as string) : undefined);
  const forms: string[] = [];
  if (str('client-certificate') !== undefined || str('client-key') !== undefined) forms.push('--client-certificate/--client-key');
  if (str('token') !== undefined) forms.push('--token');
  if (str('token-file') !== undefined) forms.push('--token-file');
  if (str('oidc-issuer-url') !== undefined || str('oidc-client-id') !== undefined || v['oidc-extra-scope'] !== undefined) forms.push('--oidc-*');
  if (forms.length === 0) throw new UsageError('kubeconfig: a credential is required: --client-certificate and --client-key, --token, --token-file, or --oidc-issuer-url and --oidc-client-id');
  if (forms.length > 1) throw new UsageError(`kubeconfig: one credential only, got ${forms.join(' and ')}`);
  switch (forms[0]) {
    case '--client-certificate/--client-key': {
      const certFile = str('client-certificate');
      const keyFile = str('client-key');
      if (!certFile || !keyFile) throw new UsageError('kubeconfig: --client-certificate and --client-key go together');
      return { kind: 'certificate', certFile, keyFile };
    }
    case '--token': {
      const token = str('token')!;
      if (token === '' || /\s/.test(token)) throw new UsageError('--token: empty or contains whitespace');
      return { kind: 'token', token };
    }
    case '--token-file':
      if (!str('token-file')) throw new UsageError('--token-file: empty file name');
      return { kind: 'token-file', tokenFile: str('token-file')! };
    default: {
      const issuerUrl = str('oidc-issuer-url');
      const clientId = str('oidc-client-id');
      if (!issuerUrl || !clientId) throw new UsageError('kubeconfig: --oidc-issuer-url and --oidc-client-id go together');
      let issuer: URL;
      try {
        issuer = new URL(issuerUrl);
      } catch {
        throw new UsageError(`--oidc-issuer-url ${JSON.stringify(issuerUrl)}: not a URL`);
      }
      if (issuer.protocol !== 'https:') throw new UsageError('--oidc-issuer-url: must be https');
      const extraScopes = (v['oidc-extra-scope'] as string[] | undefined) ?? [];
      if (extraScopes.some((s) => s === '' || /\s/.test(s))) throw new UsageError('--oidc-extra-scope: empty or contains whitespace');
      return { kind: 'oidc', issuerUrl, clientId, extraScopes };
    }
  }
}
