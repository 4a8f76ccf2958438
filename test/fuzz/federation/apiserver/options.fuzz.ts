// Fuzzes the federation API server's command line (federation/apiserver/options.ts): any argv gives
// options, 'help', or a UsageError (exit 2).
import { strict as assert } from 'node:assert';
import { parseApiServerOptions } from '../../../../federation/apiserver/options.js';
import { argvArb, assertWholeNumbers, optionsProperty, type FlagValues } from '../../arbitraries.js';
import { fuzzTarget } from '../../support.js';

const FLAGS: FlagValues = {
  listen: ['127.0.0.1:6443', '[::]:0'], store: ['sqlite::memory:', 'sqlite:///tmp/x.db', 'mysql://u@h/db', 'etcd://x'], 'mysql-table-prefix': ['kv_'], 'encryption-provider-config': ['e.yaml'],
  ca: ['ca.crt'], cert: ['c.crt'], key: ['c.key'], 'token-file': ['tokens.csv'], member: 'boolean', 'max-body-bytes': ['1024', '3145728', '1073741824'], 'bookmark-interval-ms': ['10', '10000'],
  'log-level': ['info', 'warn'], help: 'boolean',
};

fuzzTarget('federation/apiserver/options', {
  'any argv: options, help, or a UsageError with exit code 2': {
    runs: 30_000,
    property: () =>
      optionsProperty(argvArb(FLAGS, { base: ['--ca', 'ca.crt', '--cert', 'c.crt', '--key', 'c.key'] }), parseApiServerOptions, (options) => {
        assertWholeNumbers(options);
        assert.ok(options.listen, 'the listener cannot be off');
      }),
  },
});
