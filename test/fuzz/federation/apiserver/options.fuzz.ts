// Fuzzes the federation API server's command line (federation/apiserver/options.ts): any argv gives
// options, 'help', or a UsageError (exit 2).
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { UsageError } from '../../../../common/flags.js';
import { parseApiServerOptions } from '../../../../federation/apiserver/options.js';
import { argvArb, assertWholeNumbers, type FlagValues } from '../../arbitraries.js';
import { fuzzTarget, typedOrValue } from '../../support.js';

const FLAGS: FlagValues = {
  listen: ['127.0.0.1:6443', '[::]:0'], store: ['sqlite::memory:', 'sqlite:///tmp/x.db', 'mysql://u@h/db', 'etcd://x'], 'mysql-table-prefix': ['kv_'], 'encryption-provider-config': ['e.yaml'],
  ca: ['ca.crt'], cert: ['c.crt'], key: ['c.key'], 'token-file': ['tokens.csv'], member: 'boolean', 'max-body-bytes': ['1024', '3145728', '1073741824'], 'bookmark-interval-ms': ['10', '10000'],
  'log-level': ['info', 'warn'], help: 'boolean',
};

fuzzTarget('federation/apiserver/options', {
  'any argv: options, help, or a UsageError with exit code 2': {
    runs: 30_000,
    property: () =>
      fc.property(argvArb(FLAGS, { base: ['--ca', 'ca.crt', '--cert', 'c.crt', '--key', 'c.key'] }), (argv) => {
        const result = typedOrValue(() => parseApiServerOptions(argv), UsageError);
        if ('error' in result) return assert.equal((result.error as UsageError).exitCode, 2);
        if (result.value === 'help') return;
        assertWholeNumbers(result.value);
        assert.ok(result.value.listen, 'the listener cannot be off');
      }),
  },
});
