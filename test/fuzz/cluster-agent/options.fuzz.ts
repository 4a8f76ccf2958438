// Fuzzes cluster-agent's command line (cluster-agent/options.ts), including the destination
// allowlist rules: any argv gives options, 'help', or a UsageError (exit 2).
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { UsageError } from '../../../common/flags.js';
import { parseAgentOptions } from '../../../cluster-agent/options.js';
import { argvArb, assertWholeNumbers, type FlagValues } from '../arbitraries.js';
import { fuzzTarget, typedOrValue } from '../support.js';

/** --ca/--cert/--key must name existing files; any will do for parsing. */
const FILE = '/etc/hostname';
const MS = ['1', '500', '10000', '600000', '3600000'];
const FLAGS: FlagValues = {
  server: ['hub:8091', '[::1]:8091', 'hub:0'], 'server-name': ['hub'], carrier: ['tls', 'ws', 'h2'], proxy: ['http://proxy:3128', 'http://u:p@proxy:3128', 'https://proxy', 'nope'],
  ca: [FILE, '/nonexistent'], cert: [FILE], key: [FILE], apiserver: ['10.96.0.1:443', 'kubernetes.default.svc:443', '[::1]:6443', 'x:0'],
  allow: ['db:5432', 'db:*', '*.svc:443', '10.0.0.0/8:443', '10.0.0.0/33:1', '*:*', '::1/128:22', '[::1]:22', 'a:b'],
  'health-listen': ['127.0.0.1:8093', 'off'], 'dial-timeout': MS, 'connect-timeout': MS, 'drain-timeout': ['0', ...MS], 'backoff-initial': MS, 'backoff-max': MS,
  'max-streams': ['1', '10000'], window: ['65536'], 'keepalive-interval': MS, 'keepalive-timeout': MS, instance: ['agent-0'], 'log-level': ['info', 'trace'], help: 'boolean',
};

fuzzTarget('cluster-agent/options', {
  'any argv: options, help, or a UsageError with exit code 2': {
    runs: 40_000,
    property: () =>
      fc.property(argvArb(FLAGS, { base: ['--server', 'hub:8091', '--ca', FILE, '--cert', FILE, '--key', FILE] }), (argv) => {
        const result = typedOrValue(() => parseAgentOptions(argv), UsageError);
        if ('error' in result) return assert.equal((result.error as UsageError).exitCode, 2);
        if (result.value === 'help') return;
        assertWholeNumbers(result.value);
        assert.ok(result.value.backoffMaxMs >= result.value.backoffInitialMs);
        assert.ok(result.value.server.port > 0);
      }),
  },
});
