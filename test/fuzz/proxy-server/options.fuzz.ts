// Fuzzes proxy-server's command line (proxy-server/options.ts): any argv gives options, 'help', or
// a UsageError (exit 2) — never another exception, never a half-validated option.
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { UsageError } from '../../../common/flags.js';
import { parseServerOptions } from '../../../proxy-server/options.js';
import { argvArb, assertWholeNumbers, type FlagValues } from '../arbitraries.js';
import { fuzzTarget, typedOrValue } from '../support.js';

const LISTEN = ['0.0.0.0:8091', '127.0.0.1:0', '[::1]:8090', 'off'];
const MS = ['10', '1000', '30000', '600000', '86400000'];
const FLAGS: FlagValues = {
  ca: ['ca.crt'], cert: ['s.crt'], key: ['s.key'],
  'agent-listen': LISTEN, 'connect-listen': LISTEN, 'connect-uds': ['/tmp/c.sock'], 'uds-default-cluster': ['east', 'East'], 'admin-listen': LISTEN,
  'dial-timeout': MS, 'max-pending-dials': ['1', '1000'], 'max-streams-per-agent': ['1', '1000000'], window: ['65536', '4194304'],
  'keepalive-interval': MS, 'keepalive-timeout': MS, 'handshake-timeout': MS, 'max-header-bytes': ['1024', '16384'], 'drain-timeout': ['0', ...MS],
  'federation-listen': LISTEN, 'federation-store': ['sqlite::memory:', 'mysql://u:p@h:3306/db', 'postgres://x'], 'federation-encryption-config': ['enc.yaml'],
  'federation-controller': ['on', 'off'], 'unreachable-deletion': ['wait', 'orphan'], 'unreachable-deletion-timeout': MS, 'member-request-timeout': MS,
  instance: ['hub-0'], 'log-level': ['info', 'debug', 'silent'], help: 'boolean',
};

fuzzTarget('proxy-server/options', {
  'any argv: options, help, or a UsageError with exit code 2': {
    runs: 40_000,
    property: () =>
      fc.property(argvArb(FLAGS, { base: ['--ca', 'ca.crt', '--cert', 's.crt', '--key', 's.key'] }), (argv) => {
        const result = typedOrValue(() => parseServerOptions(argv), UsageError);
        if ('error' in result) return assert.equal((result.error as UsageError).exitCode, 2);
        if (result.value === 'help') return;
        assertWholeNumbers(result.value);
        assert.ok(result.value.keepaliveTimeoutMs > result.value.keepaliveIntervalMs);
        assert.ok(result.value.agentListen, 'the agent listener cannot be off');
      }),
  },
});
