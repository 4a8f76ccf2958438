// Arbitraries shared by several fuzz targets (kept out of the *.fuzz.ts files, which register suites).
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { formatHostPort, isValidHost, type HostPort } from '../../common/address.js';
import { SMP_SCHEMA } from '../../federation/apiserver/strategic-merge.js';
import { jsonArb, keyArb, objectFromEntries } from './support.js';

export const hostArb = fc.oneof(fc.domain().filter(isValidHost), fc.ipV4(), fc.ipV6(), fc.constantFrom('localhost', '0.0.0.0', '::', '::1', '::ffff:127.0.0.1'));
export const hostPortArb: fc.Arbitrary<HostPort> = fc.record({ host: hostArb, port: fc.integer({ min: 1, max: 65535 }) });

/** Valid authorities with a few characters replaced, inserted or deleted, or random text. */
export function authorityArb(valid: fc.Arbitrary<string> = hostPortArb.map(formatHostPort)): fc.Arbitrary<string> {
  const alphabet = fc.constantFrom(...':[]./-%@\0 \r\n\tAZaz09\u00e9\u0130\u212a'.split(''), '65536', '00080', '-1', '1e3', '0x50');
  const edit = fc.tuple(fc.constantFrom('replace', 'insert', 'delete'), fc.nat(), alphabet);
  return fc.oneof(
    { weight: 3, arbitrary: fc.tuple(valid, fc.array(edit, { maxLength: 3 })).map(([text, edits]) => edits.reduce((s, [kind, at, c]) => {
      const i = s.length === 0 ? 0 : at % s.length;
      return kind === 'replace' ? s.slice(0, i) + c + s.slice(i + 1) : kind === 'insert' ? s.slice(0, i) + c + s.slice(i) : s.slice(0, i) + s.slice(i + 1);
    }, text)) },
    { weight: 1, arbitrary: fc.string({ maxLength: 40, unit: 'binary' }) },
    { weight: 1, arbitrary: fc.stringMatching(/^\[?[0-9a-fA-F:.]{0,20}\]?:[0-9]{0,6}$/) },
  );
}


/** Field names of Kubernetes objects, mixed into generated JSON. */
export const KUBE_KEYS = ['apiVersion', 'kind', 'metadata', 'name', 'namespace', 'labels', 'annotations', 'spec', 'template', 'containers', 'ports', 'containerPort', 'env', 'value', 'data', 'status', 'conditions', 'type', 'args'];

type Obj = Record<string, unknown>;

/** Every object is a plain one with Object.prototype, every array a real array: nothing was injected. */
export function assertPlainJson(value: unknown): void {
  const stack = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v !== 'object' || v === null) continue;
    assert.equal(Object.getPrototypeOf(v), Array.isArray(v) ? Array.prototype : Object.prototype, 'an object with a foreign prototype');
    stack.push(...Object.values(v));
  }
}

/** Kubernetes-like objects: a kind with or without a strategic schema and random fields. */
export const targetArb: fc.Arbitrary<Obj> = fc
  .tuple(fc.constantFrom(...Object.keys(SMP_SCHEMA), 'example.com/v1/Widget'), fc.array(fc.tuple(keyArb(KUBE_KEYS), jsonArb(KUBE_KEYS)), { maxLength: 5 }))
  .map(([gvk, fields]) => {
    const slash = gvk.lastIndexOf('/');
    return objectFromEntries([['apiVersion', gvk.slice(0, slash)], ['kind', gvk.slice(slash + 1)], ['metadata', { name: 'x' }], ...fields]);
  });


/** Flags of a binary: each with values worth trying (boolean flags take none). */
export type FlagValues = Record<string, readonly string[] | 'boolean'>;

const EDGE_VALUES = ['', '0', '-1', '1', '10', '1e3', '0x10', ' 1', '1.5', '99999999999999999999', 'off', 'on', '=', '--', '-h', 'NaN', '127.0.0.1:0', '[::1]:8080', ':80', 'host:', 'a:b:c'];

/**
 * Command lines for a parser: flags in both `--flag value` and `--flag=value` forms with good,
 * edge and random values, booleans given values, unknown flags, short options and positionals,
 * optionally after `base` (the required flags, so parsing gets past them).
 */
export function argvArb(flags: FlagValues, { base = [] as string[], positionals = [] as string[] } = {}): fc.Arbitrary<string[]> {
  const names = Object.keys(flags);
  const value = (name: string): fc.Arbitrary<string> => {
    const good = flags[name];
    return fc.oneof(...(Array.isArray(good) && good.length > 0 ? [fc.constantFrom(...good)] : []), fc.constantFrom(...EDGE_VALUES), fc.string({ maxLength: 12 }));
  };
  const token: fc.Arbitrary<string[]> = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...names).chain((name) => (flags[name] === 'boolean' ? fc.constantFrom([`--${name}`], [`--${name}=true`], [`--${name}`, 'x']) : fc.tuple(value(name), fc.boolean()).map(([v, inline]) => (inline ? [`--${name}=${v}`] : [`--${name}`, v])))) },
    { weight: 1, arbitrary: fc.constantFrom(['--help'], ['-h'], ['--'], ['-'], ['--no-such-flag'], ['-x'], ['--=x'], ['---x']) },
    { weight: 1, arbitrary: fc.oneof(fc.constantFrom(...positionals, 'extra'), fc.string({ maxLength: 8 })).map((p) => [p]) },
  );
  return fc.tuple(fc.boolean(), fc.array(token, { maxLength: 6 })).map(([withBase, tokens]) => [...(withBase ? base : []), ...tokens.flat()]);
}

/** Whatever an option parser returned: every number in it is a safe integer (durations, sizes, ports). */
export function assertWholeNumbers(options: object): void {
  for (const [key, v] of Object.entries(options)) {
    if (typeof v === 'number') assert.ok(Number.isSafeInteger(v) && v >= 0, `${key} = ${v}`);
    else if (v && typeof v === 'object' && 'port' in v) assertWholeNumbers(v);
  }
}
