// Fuzzes fedctl's command line (federation/admin/options.ts): commands, cluster names, labels,
// type names: any argv gives a command, 'help', or a UsageError (exit 2).
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { UsageError } from '../../../../common/flags.js';
import { parseFedctlOptions } from '../../../../federation/admin/options.js';
import { argvArb, type FlagValues } from '../../arbitraries.js';
import { fuzzTarget, typedOrValue } from '../../support.js';

const FLAGS: FlagValues = {
  kubeconfig: ['kc.yaml'], context: ['federation'], namespace: ['kube-federation-system'], 'api-endpoint': ['https://kubernetes.default.svc:443'],
  'ca-file': ['ca.crt'], 'token-file': ['t'], 'client-cert': ['c.crt'], 'client-key': ['c.key'],
  label: ['region=east', 'a/b=c', 'k=', '=v', 'example.com/x=y', 'bad key=v'], 'disabled-tls-validations': ['*', 'SubjectName,ValidityPeriod', 'Nope', ',,'],
  'delete-propagated': 'boolean', timeout: ['1', '60', '0', '1.5'], version: ['v1'], delete: 'boolean', help: 'boolean',
};
const POSITIONALS = ['join', 'unjoin', 'enable', 'disable', 'east', 'East', 'deployments.apps', 'configmaps', 'widgets.example.com', '.x', 'a..b'];

fuzzTarget('federation/admin/options', {
  'any argv: a command, help, or a UsageError with exit code 2': {
    runs: 40_000,
    property: () =>
      fc.property(fc.constantFrom('join', 'unjoin', 'enable', 'disable', 'nope'), fc.constantFrom('east', 'deployments.apps', 'Bad_Name', ''), argvArb(FLAGS, { positionals: POSITIONALS }), (command, target, argv) => {
        const result = typedOrValue(() => parseFedctlOptions([command, target, ...argv]), UsageError);
        if ('error' in result) return assert.equal((result.error as UsageError).exitCode, 2);
        if (result.value === 'help') return;
        assert.ok(['join', 'unjoin', 'enable', 'disable'].includes(result.value.command));
        if (result.value.command === 'unjoin') assert.ok(Number.isSafeInteger(result.value.timeoutSeconds) && result.value.timeoutSeconds >= 1);
      }),
  },
});
