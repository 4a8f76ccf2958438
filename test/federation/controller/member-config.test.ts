import { strict as assert } from 'node:assert';
import { memberConfig, MemberConfigError } from '../../../federation/controller/member-config.js';
import type { KubeObject } from '../../../federation/apiserver/storage.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

function cluster(spec: Record<string, unknown>): KubeObject {
  return { apiVersion: 'core.kubefed.io/v1beta1', kind: 'KubeFedCluster', metadata: { name: 'east', namespace: 'kube-federation-system' }, spec: { secretRef: { name: 'east-secret' }, ...spec } };
}
function secret(data: Record<string, string>): KubeObject {
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'east-secret', namespace: 'kube-federation-system' }, data };
}

describe('controller: member config from KubeFedCluster + Secret', function () {
  it('dials the endpoint address inside the member, with a bearer token and the caBundle', function () {
    const c = memberConfig(cluster({ apiEndpoint: 'https://kubernetes.default.svc:443', caBundle: b64('CA') }), secret({ token: b64('tok\n') }));
    assert.equal(c.address, 'kubernetes.default.svc:443');
    assert.equal(c.servername, 'kubernetes.default.svc');
    assert.equal(c.token, 'tok');
    assert.equal(c.ca?.toString(), 'CA');
    assert.deepEqual(c.skipVerify, { all: false, subjectName: false, validityPeriod: false });
  });

  it('defaults the port to 443 and the scheme to https (client-go), no SNI for an IP, ca.crt from the secret', function () {
    const c = memberConfig(cluster({ apiEndpoint: '10.0.0.1' }), secret({ 'tls.crt': b64('C'), 'tls.key': b64('K'), 'ca.crt': b64('CA2') }));
    assert.equal(c.address, '10.0.0.1:443');
    assert.equal(c.servername, undefined);
    assert.equal(c.cert?.toString(), 'C');
    assert.equal(c.ca?.toString(), 'CA2');
  });

  it('brackets IPv6 addresses and maps disabledTLSValidations', function () {
    const c = memberConfig(cluster({ apiEndpoint: 'https://[::1]:6443', disabledTLSValidations: ['SubjectName'] }), secret({ token: b64('t') }));
    assert.equal(c.address, '[::1]:6443');
    assert.deepEqual(c.skipVerify, { all: false, subjectName: true, validityPeriod: false });
    assert.equal(memberConfig(cluster({ apiEndpoint: 'https://a:1', disabledTLSValidations: ['*'] }), secret({ token: b64('t') })).skipVerify.all, true);
  });

  for (const [what, spec, data, message] of [
    ['no secret', { apiEndpoint: 'https://a:1' }, null, /secret east-secret not found/],
    ['no credential', { apiEndpoint: 'https://a:1' }, {}, /neither a token nor tls.crt and tls.key/],
    ['a certificate without its key', { apiEndpoint: 'https://a:1' }, { token: b64('t'), 'tls.crt': b64('C') }, /go together/],
    ['plain http', { apiEndpoint: 'http://a:1' }, { token: b64('t') }, /must be https/],
    ['no endpoint', { apiEndpoint: '' }, { token: b64('t') }, /apiEndpoint is empty/],
    // Fuzz regressions: each threw a TypeError (or passed an address dial() refuses) instead.
    ['disabledTLSValidations that is not a list (fuzz regression)', { apiEndpoint: 'https://localhost', disabledTLSValidations: {} }, { token: b64('t') }, /disabledTLSValidations must be a list/],
    ['a secretRef.name that is not a string (fuzz regression)', { apiEndpoint: 'https://a:1', secretRef: { name: { toString: 1 } } }, null, /secretRef.name must be a string/],
    ['an apiEndpoint that is not a string (fuzz regression)', { apiEndpoint: { toString: 1 } }, { token: b64('t') }, /apiEndpoint must be a string/],
    ['an endpoint host dial() cannot take (fuzz regression)', { apiEndpoint: '&' }, { token: b64('t') }, /"&" is not a host name or IP address/],
  ] as const) {
    it(`refuses ${what} with a MemberConfigError (ConfigMalformed)`, function () {
      assert.throws(() => memberConfig(cluster(spec), data === null ? null : secret(data as Record<string, string>)), (err: Error) => err instanceof MemberConfigError && message.test(err.message));
    });
  }
});
