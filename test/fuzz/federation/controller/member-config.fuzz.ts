// Fuzzes how the controller reads a member's connection settings from a KubeFedCluster and its
// Secret (federation/controller/member-config.ts) — kubeconfig-like input that arrives through the
// store: any spec and data give a MemberConfig dial() accepts, or MemberConfigError.
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { parseHostPort } from '../../../../common/address.js';
import type { KubeObject } from '../../../../federation/apiserver/storage.js';
import { memberConfig, MemberConfigError } from '../../../../federation/controller/member-config.js';
import { hostArb } from '../../arbitraries.js';
import { fuzzTarget, jsonArb, TRICKY_KEYS, typedOrValue } from '../../support.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const weird = fc.oneof(jsonArb(['name', 'toString'], [], 2), fc.constantFrom(...TRICKY_KEYS).map((k) => JSON.parse(`{${JSON.stringify(k)}: 1}`) as unknown));

const endpointArb = fc.oneof(
  fc.tuple(fc.constantFrom('https://', 'http://', '', 'ftp://', 'https://user@'), hostArb, fc.option(fc.integer({ min: 0, max: 70000 }), { nil: undefined }), fc.constantFrom('', '/', '/path?q')).map(
    ([scheme, host, port, suffix]) => `${scheme}${host.includes(':') ? `[${host}]` : host}${port === undefined ? '' : `:${port}`}${suffix}`,
  ),
  fc.string({ maxLength: 20 }),
  weird,
);

const specArb = fc.record(
  {
    apiEndpoint: endpointArb,
    caBundle: fc.oneof(fc.constant(b64('CA')), fc.string({ maxLength: 8 }), weird),
    secretRef: fc.oneof(fc.constant({ name: 'east-secret' }), fc.record({ name: weird }), weird),
    disabledTLSValidations: fc.oneof(fc.subarray(['*', 'SubjectName', 'ValidityPeriod']), weird),
    proxyURL: fc.string({ maxLength: 8 }),
  },
  { requiredKeys: [] },
);

const dataArb = fc.oneof(
  fc.record({ token: fc.oneof(fc.constant(b64('t\n')), fc.string({ maxLength: 6 }), weird), 'tls.crt': fc.oneof(fc.constant(b64('C')), weird), 'tls.key': fc.oneof(fc.constant(b64('K')), weird), 'ca.crt': fc.oneof(fc.constant(b64('CA2')), weird) }, { requiredKeys: [] }),
  weird,
);

fuzzTarget('federation/controller/member-config', {
  'any KubeFedCluster spec and Secret data: a dialable MemberConfig or MemberConfigError': {
    runs: 60_000,
    property: () =>
      fc.property(fc.oneof(specArb, weird), fc.option(dataArb, { nil: undefined }), (spec, data) => {
        const cluster = { apiVersion: 'core.kubefed.io/v1beta1', kind: 'KubeFedCluster', metadata: { name: 'east', namespace: 'kube-federation-system' }, spec } as KubeObject;
        const secret = data === undefined ? null : ({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'east-secret' }, data } as KubeObject);
        const result = typedOrValue(() => memberConfig(cluster, secret), MemberConfigError);
        if ('error' in result) return;
        const config = result.value;
        assert.ok(parseHostPort(config.address, { allowPortZero: true }) !== null || config.address.startsWith('['), `address ${config.address}`);
        assert.ok(config.server.startsWith('https://'));
        assert.ok(config.token !== undefined || (config.cert !== undefined && config.key !== undefined));
      }),
  },
});
