// Fuzzes the flag helpers every binary shares (common/flags.ts): any text gives a value inside the
// documented range, or a UsageError (exit code 2) naming the flag.
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { choiceFlag, integerFlag, listenFlag, parseFlags, UsageError } from '../../../common/flags.js';
import { authorityArb, argvArb } from '../arbitraries.js';
import { fuzzTarget, typedOrValue } from '../support.js';

function usageOr<T>(fn: () => T, flag: string): { value: T } | { error: Error } {
  const result = typedOrValue(fn, UsageError);
  if ('error' in result) {
    assert.equal((result.error as UsageError).exitCode, 2);
    assert.ok(result.error.message.includes(flag), result.error.message);
  }
  return result;
}

const numberTextArb = fc.oneof(fc.string({ maxLength: 12 }), fc.bigInt({ min: -(10n ** 20n), max: 10n ** 20n }).map(String), fc.constantFrom('', '0', '007', '1e3', ' 5', '5 ', '+5', '-0', '0x1f', '９'));

fuzzTarget('common/flags', {
  'integerFlag: a whole number within [min, max], or a UsageError naming the flag': {
    runs: 30_000,
    property: () =>
      fc.property(fc.option(numberTextArb, { nil: undefined }), fc.nat(1000), fc.nat(1_000_000), (text, min, span) => {
        const result = usageOr(() => integerFlag('n', text, min, min, min + span), '--n');
        if ('value' in result) assert.ok(Number.isSafeInteger(result.value) && result.value >= min && result.value <= min + span);
      }),
  },
  'listenFlag and choiceFlag: a HostPort / a listed choice, or a UsageError naming the flag': {
    runs: 10_000,
    property: () =>
      fc.property(fc.option(authorityArb(), { nil: undefined }), fc.option(fc.string({ maxLength: 6 }), { nil: undefined }), (listen, choice) => {
        const hostPort = usageOr(() => listenFlag('listen', listen, '127.0.0.1:1'), '--listen');
        if ('value' in hostPort && hostPort.value) assert.ok(Number.isInteger(hostPort.value.port));
        const picked = usageOr(() => choiceFlag('mode', choice, ['on', 'off'], 'on'), '--mode');
        if ('value' in picked) assert.ok(['on', 'off'].includes(picked.value));
      }),
  },
  'parseFlags: the declared flags or a UsageError, never another exception': {
    runs: 30_000,
    property: () =>
      fc.property(argvArb({ a: ['x'], b: 'boolean', c: ['1'] }), (argv) => {
        typedOrValue(() => parseFlags(argv, { a: { type: 'string' }, b: { type: 'boolean' }, c: { type: 'string', multiple: true } }), UsageError);
      }),
  },
});
