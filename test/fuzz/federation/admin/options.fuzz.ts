// Fuzzes fedctl's command line (federation/admin/options.ts): commands, cluster names, labels,
// type names, kubeconfig's credential forms: any argv gives a command, 'help', or a UsageError (exit 2).
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { parseFedctlOptions } from '../../../../federation/admin/options.js';
import { argvArb, optionsProperty, type FlagValues } from '../../arbitraries.js';
import { fuzzTarget } from '../../support.js';

const FLAGS: FlagValues = {
  kubeconfig: ['kc.yaml'], context: ['federation'], namespace: ['kube-federation-system'], 'api-endpoint': ['https://kubernetes.default.svc:443'],
  'ca-file': ['ca.crt'], 'token-file': ['t'], 'client-cert': ['c.crt'], 'client-key': ['c.key'],
  label: ['region=east', 'a/b=c', 'k=', '=v', 'example.com/x=y', 'bad key=v'], 'disabled-tls-validations': ['*', 'SubjectName,ValidityPeriod', 'Nope', ',,'],
  'delete-propagated': 'boolean', timeout: ['1', '60', '0', '1.5'], version: ['v1'], delete: 'boolean', help: 'boolean',
  // kubeconfig
  user: ['dana', ''], group: ['ops', 'fedtunnel:tenant:retail', ''], hub: ['https://hub:8443', 'https://hub/x', 'http://hub', '::'], ca: ['ca.crt'], output: ['out.yaml'],
  'client-certificate': ['c.crt'], token: ['t', 'a b', ''], 'oidc-issuer-url': ['https://issuer', 'http://i', 'not a url'], 'oidc-client-id': ['id', ''], 'oidc-extra-scope': ['email', ' '],
};
const POSITIONALS = ['join', 'unjoin', 'enable', 'disable', 'kubeconfig', 'east', 'East', 'deployments.apps', 'configmaps', 'widgets.example.com', '.x', 'a..b'];

fuzzTarget('federation/admin/options', {
  'any argv: a command, help, or a UsageError with exit code 2': {
    runs: 40_000,
    property: () =>
      optionsProperty(
        fc.tuple(fc.constantFrom('join', 'unjoin', 'enable', 'disable', 'kubeconfig', 'nope'), fc.constantFrom('east', 'deployments.apps', 'Bad_Name', ''), argvArb(FLAGS, { positionals: POSITIONALS })).map(([command, target, argv]) => [command, target, ...argv]),
        parseFedctlOptions,
        (options) => {
          assert.ok(['join', 'unjoin', 'enable', 'disable', 'kubeconfig'].includes(options.command));
          if (options.command === 'unjoin') assert.ok(Number.isSafeInteger(options.timeoutSeconds) && options.timeoutSeconds >= 1);
          if (options.command === 'kubeconfig') assert.ok(options.user !== '' && options.hub.startsWith('https://') && options.caFile !== '');
        },
      ),
  },
});
