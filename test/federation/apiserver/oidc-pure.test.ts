// OIDC pieces without I/O: claim mapping (kube-apiserver's prefix and groups rules), jose error →
// refusal reason, and the --oidc-* flags of both binaries.
import { strict as assert } from 'node:assert';
import { errors as joseErrors } from 'jose';
import { effectiveUsernamePrefix, userFromClaims, type ClaimMapping } from '../../../federation/apiserver/oidc-claims.js';
import { refusalOf } from '../../../federation/apiserver/oidc.js';
import { oidcFlagOptions, oidcOptions } from '../../../federation/apiserver/oidc-flags.js';
import { parseApiServerOptions, type ApiServerOptions } from '../../../federation/apiserver/options.js';
import { parseServerOptions, type ServerOptions } from '../../../proxy-server/options.js';
import { assertUsageError } from '../../support/usage.js';

const ISSUER = 'https://issuer.example';
const base: ClaimMapping = { usernameClaim: 'sub', usernamePrefix: undefined, groupsClaim: 'groups', groupsPrefix: '' };

describe('apiserver: OIDC claim mapping (pure)', function () {
  it('prefixes user names as kube-apiserver does: "<issuer>#" by default, none for email, the flag when given', function () {
    assert.equal(effectiveUsernamePrefix(base, ISSUER), `${ISSUER}#`);
    assert.equal(effectiveUsernamePrefix({ ...base, usernameClaim: 'email' }, ISSUER), '');
    assert.equal(effectiveUsernamePrefix({ ...base, usernamePrefix: 'oidc:' }, ISSUER), 'oidc:');
    assert.equal(effectiveUsernamePrefix({ ...base, usernamePrefix: '' }, ISSUER), '');
    assert.deepEqual(userFromClaims({ sub: 'u1' }, base, ISSUER), { user: `${ISSUER}#u1`, groups: [] });
  });

  it('maps groups from a string or an array, prefixed, skipping empty names', function () {
    const m = { ...base, usernamePrefix: 'o:', groupsPrefix: 'g:' };
    assert.deepEqual(userFromClaims({ sub: 'u', groups: ['a', '', 'b'] }, m, ISSUER), { user: 'o:u', groups: ['g:a', 'g:b'] });
    assert.deepEqual(userFromClaims({ sub: 'u', groups: 'a' }, m, ISSUER), { user: 'o:u', groups: ['g:a'] });
    assert.deepEqual(userFromClaims({ sub: 'u' }, m, ISSUER), { user: 'o:u', groups: [] });
    assert.deepEqual(userFromClaims({ sub: 'u', groups: ['a'] }, { ...m, groupsClaim: null }, ISSUER), { user: 'o:u', groups: [] }, 'no groups claim configured');
  });

  it('refuses a missing or non-string user claim, a groups claim of another shape, and an unverified email', function () {
    assert.deepEqual(userFromClaims({}, base, ISSUER), { refused: 'missing_username' });
    assert.deepEqual(userFromClaims({ sub: '' }, base, ISSUER), { refused: 'missing_username' });
    assert.deepEqual(userFromClaims({ sub: 42 }, base, ISSUER), { refused: 'missing_username' });
    assert.deepEqual(userFromClaims({ sub: 'u', groups: [1] }, base, ISSUER), { refused: 'bad_groups_claim' });
    assert.deepEqual(userFromClaims({ sub: 'u', groups: { a: 1 } }, base, ISSUER), { refused: 'bad_groups_claim' });
    const email = { ...base, usernameClaim: 'email' };
    assert.deepEqual(userFromClaims({ email: 'a@x', email_verified: false }, email, ISSUER), { refused: 'email_not_verified' });
    assert.deepEqual(userFromClaims({ email: 'a@x', email_verified: 'true' }, email, ISSUER), { refused: 'email_not_verified' });
    assert.deepEqual(userFromClaims({ email: 'a@x', email_verified: true }, email, ISSUER), { user: 'a@x', groups: [] });
    assert.deepEqual(userFromClaims({ email: 'a@x' }, email, ISSUER), { user: 'a@x', groups: [] });
  });

  it('names the refusal of each jose error; anything else is the issuer being unavailable', function () {
    const payload = {};
    assert.equal(refusalOf(new joseErrors.JWTExpired('x', payload)), 'expired');
    assert.equal(refusalOf(new joseErrors.JWTClaimValidationFailed('x', payload, 'aud')), 'wrong_audience');
    assert.equal(refusalOf(new joseErrors.JWTClaimValidationFailed('x', payload, 'iss')), 'wrong_issuer');
    assert.equal(refusalOf(new joseErrors.JWTClaimValidationFailed('x', payload, 'nbf')), 'not_yet_valid');
    assert.equal(refusalOf(new joseErrors.JWTClaimValidationFailed('x', payload, 'exp', 'missing')), 'invalid_claims');
    assert.equal(refusalOf(new joseErrors.JWSSignatureVerificationFailed()), 'bad_signature');
    assert.equal(refusalOf(new joseErrors.JWKSNoMatchingKey()), 'unknown_key');
    assert.equal(refusalOf(new joseErrors.JOSEAlgNotAllowed('x')), 'disallowed_algorithm');
    assert.equal(refusalOf(new joseErrors.JWSInvalid('x')), 'malformed');
    assert.equal(refusalOf(new joseErrors.JWKSTimeout()), 'issuer_unavailable');
    assert.equal(refusalOf(new Error('ECONNREFUSED')), 'issuer_unavailable');
  });
});

describe('apiserver and hub: --oidc-* flags', function () {
  const REQUIRED = ['--ca', 'ca.pem', '--cert', 's.pem', '--key', 's.key'];
  const api = (...extra: string[]): ApiServerOptions => parseApiServerOptions([...REQUIRED, ...extra]) as ApiServerOptions;
  const hub = (...extra: string[]): ServerOptions => parseServerOptions([...REQUIRED, ...extra]) as ServerOptions;

  it('off by default; kube-apiserver defaults otherwise; "-" is no user prefix', function () {
    assert.equal(api().oidc, null);
    assert.deepEqual(api('--oidc-issuer-url', ISSUER, '--oidc-client-id', 'c').oidc, {
      issuerUrl: ISSUER, clientId: 'c', usernameClaim: 'sub', usernamePrefix: undefined, groupsClaim: null, groupsPrefix: '', caFile: null,
    });
    const all = api('--oidc-issuer-url', ISSUER, '--oidc-client-id', 'c', '--oidc-username-claim', 'email', '--oidc-username-prefix', '-', '--oidc-groups-claim', 'groups', '--oidc-groups-prefix', 'oidc:', '--oidc-ca-file', 'ca.pem').oidc;
    assert.deepEqual(all, { issuerUrl: ISSUER, clientId: 'c', usernameClaim: 'email', usernamePrefix: '', groupsClaim: 'groups', groupsPrefix: 'oidc:', caFile: 'ca.pem' });
    assert.deepEqual(hub('--federation-listen', '127.0.0.1:0', '--oidc-issuer-url', ISSUER, '--oidc-client-id', 'c').oidc?.issuerUrl, ISSUER);
  });

  it('refuses bad combinations, naming the flag', function () {
    assertUsageError(() => api('--oidc-client-id', 'c'), /--oidc-client-id: only with --oidc-issuer-url/);
    assertUsageError(() => api('--oidc-issuer-url', ISSUER), /--oidc-client-id: required/);
    assertUsageError(() => api('--oidc-issuer-url', 'http://issuer.example', '--oidc-client-id', 'c'), /--oidc-issuer-url: must be https/);
    assertUsageError(() => api('--oidc-issuer-url', 'not a url', '--oidc-client-id', 'c'), /--oidc-issuer-url: not a URL/);
    assertUsageError(() => api('--oidc-issuer-url', `${ISSUER}?x=1`, '--oidc-client-id', 'c'), /no query/);
    assertUsageError(() => hub('--oidc-issuer-url', ISSUER, '--oidc-client-id', 'c'), /only with --federation-listen/);
    assertUsageError(() => oidcOptions({ ...oidcFlagOptions({ 'oidc-issuer-url': ISSUER, 'oidc-client-id': 'c' })!, caFile: '/nonexistent/ca.pem' }), /--oidc-ca-file: cannot read \/nonexistent\/ca.pem: ENOENT/);
  });
});
