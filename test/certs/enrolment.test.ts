import { strict as assert } from 'node:assert';
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import forge from 'node-forge';
import {
  EnrolmentError,
  admitToken,
  bearerToken,
  certificateFingerprint,
  claimOutcome,
  createCsr,
  csrPublicKey,
  formatToken,
  formatTokenRecord,
  generateToken,
  hashSecret,
  parseFingerprint,
  parseToken,
  parseTokenFile,
  parseUsedLedger,
  publicKeySha256,
  publicKeysMatch,
  renewalTime,
  tokenRecord,
} from '../../certs/enrolment.js';
import { agentIdentityFromPeer } from '../../certs/identity.js';
import { createCA, signAgentCertificate } from '../../certs/pki.js';
import type { PeerCertificate } from 'node:tls';

function rsaKey(bits = 2048): string {
  return generateKeyPairSync('rsa', { modulusLength: bits, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }).privateKey;
}

/** assert.throws for an EnrolmentError with this code and status. */
function refused(fn: () => unknown, code: string, status: number): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof EnrolmentError, String(error));
    assert.equal(error.code, code);
    assert.equal(error.httpStatus, status);
    return true;
  });
}

describe('certs: enrolment (pure)', function () {
  const now = new Date('2026-12-02T08:00:00Z');
  const key = rsaKey();

  describe('bootstrap tokens', function () {
    it('generates kubeadm-shaped tokens that parse back; only the SHA-256 of the secret is recorded', function () {
      const token = generateToken();
      const text = formatToken(token);
      assert.match(text, /^[a-z0-9]{6}\.[a-z0-9]{16}$/);
      assert.deepEqual(parseToken(`  ${text}\n`), token);
      const record = tokenRecord(token, 'east', 'retail', new Date(now.getTime() + 3_600_000));
      assert.equal(record.secretSha256, hashSecret(token.secret));
      const line = formatTokenRecord(record);
      assert.ok(!line.includes(token.secret), 'the secret is not in the file line');
      assert.deepEqual(parseTokenFile(`# comment\n\n${line}\n`).get(token.id), record);
      assert.notEqual(generateToken().id + generateToken().secret, token.id + token.secret);
    });

    it('refuses malformed tokens without echoing them', function () {
      for (const bad of ['', 'abcdef', 'abcdef.0123456789abcde', 'ABCDEF.0123456789abcdef', 'abcdef:0123456789abcdef']) {
        refused(() => parseToken(bad), 'TOKEN_MALFORMED', 401);
      }
      assert.throws(() => parseToken('abcdef.0123456789abcdeX'), (error: Error) => !error.message.includes('0123456789abcdeX'));
      refused(() => bearerToken(undefined), 'TOKEN_MISSING', 401);
      refused(() => bearerToken('Basic abc'), 'TOKEN_MALFORMED', 401);
      assert.deepEqual(bearerToken('Bearer abcdef.0123456789abcdef'), { id: 'abcdef', secret: '0123456789abcdef' });
    });

    it('admits a token once: unknown id and wrong secret alike are 401, expired and used are 403', function () {
      const token = parseToken('abcdef.0123456789abcdef');
      const records = new Map([[token.id, tokenRecord(token, 'east', 'retail', new Date(now.getTime() + 60_000))]]);
      assert.equal(admitToken(token, records, new Set(), now).cluster, 'east');
      refused(() => admitToken(parseToken('zzzzzz.0123456789abcdef'), records, new Set(), now), 'TOKEN_UNKNOWN', 401);
      refused(() => admitToken(parseToken('abcdef.0123456789abcdee'), records, new Set(), now), 'TOKEN_UNKNOWN', 401);
      refused(() => admitToken(token, records, new Set(), new Date(now.getTime() + 60_000)), 'TOKEN_EXPIRED', 403);
      refused(() => admitToken(token, records, parseUsedLedger('abcdef 2026-12-02T08:00:00Z east\n'), now), 'TOKEN_USED', 403);
      // A wrong secret does not learn whether the token was used.
      refused(() => admitToken(parseToken('abcdef.0123456789abcdee'), records, new Set(['abcdef']), now), 'TOKEN_UNKNOWN', 401);
    });

    it("the replicas' shared ledger: our insert claims, the same key again is a retry, another key or no key recorded is used", function () {
      const mine = publicKeySha256(csrPublicKey(createCsr(key)));
      const theirs = publicKeySha256(csrPublicKey(createCsr(rsaKey())));
      assert.match(mine, /^[0-9a-f]{64}$/);
      assert.equal(publicKeySha256(csrPublicKey(createCsr(key))), mine, 'the hash is of the key, not of one CSR');
      assert.notEqual(theirs, mine);
      assert.equal(claimOutcome(true, mine, mine), 'claimed');
      assert.equal(claimOutcome(false, mine, mine), 'retried');
      assert.equal(claimOutcome(false, theirs, mine), 'used');
      // Imported from a file ledger (no key known), or a row without a key: never a retry, even for an empty presented hash.
      assert.equal(claimOutcome(false, '', mine), 'used');
      assert.equal(claimOutcome(false, '', ''), 'used');
    });

    it('a bad token file line names its number', function () {
      const good = formatTokenRecord(tokenRecord(parseToken('abcdef.0123456789abcdef'), 'east', 'retail', now));
      assert.throws(() => parseTokenFile(`${good}\nabcdef x east retail 2026-01-01T00:00:00Z\n`, 'tokens.txt'), /tokens\.txt line 2: the secret hash is not 64 hex digits/);
      assert.throws(() => parseTokenFile(`${good}\n${good}\n`), /line 2: token id abcdef appears twice/);
      assert.throws(() => parseTokenFile(`${good.replace('east', 'East')}\n`), /line 1: cluster "East" is not a DNS label/);
      assert.throws(() => parseTokenFile(`${good.replace(/\S+$/, 'soon')}\n`), /line 1: expiry "soon" is not a date/);
    });
  });

  describe('certificate signing requests', function () {
    it('returns the public key of a valid CSR', function () {
      const publicKey = csrPublicKey(createCsr(key));
      assert.equal(publicKeysMatch(signAgentCertificate(createCA(), publicKey, { cluster: 'east', tenant: 'retail' }, 60_000), key), true);
    });

    it('refuses a CSR not signed by the key it carries (wrong key)', function () {
      const other = forge.pki.privateKeyFromPem(rsaKey()) as forge.pki.rsa.PrivateKey;
      const mine = forge.pki.privateKeyFromPem(key) as forge.pki.rsa.PrivateKey;
      const csr = forge.pki.createCertificationRequest();
      csr.publicKey = forge.pki.setRsaPublicKey(mine.n, mine.e);
      csr.setSubject([{ shortName: 'CN', value: 'x' }]);
      csr.sign(other, forge.md.sha256.create());
      refused(() => csrPublicKey(forge.pki.certificationRequestToPem(csr)), 'CSR_INVALID', 400);
    });

    it('refuses a private key, anything but one CSR, small keys', function () {
      assert.throws(() => csrPublicKey(createCsr(key) + key), /holds a private key/);
      refused(() => csrPublicKey(key), 'CSR_INVALID', 400);
      refused(() => csrPublicKey('hello'), 'CSR_INVALID', 400);
      refused(() => csrPublicKey(createCsr(key) + createCsr(key)), 'CSR_INVALID', 400);
      refused(() => csrPublicKey('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n'), 'CSR_INVALID', 400);
      assert.throws(() => csrPublicKey(createCsr(rsaKey(1024))), /RSA key of 1024 bits/);
    });

    it('a CSR asking for another name gets the identity the hub chose', function () {
      const asking = forge.pki.createCertificationRequest();
      const mine = forge.pki.privateKeyFromPem(key) as forge.pki.rsa.PrivateKey;
      asking.publicKey = forge.pki.setRsaPublicKey(mine.n, mine.e);
      asking.setSubject([{ shortName: 'CN', value: 'system:cluster-agent:payments' }, { shortName: 'O', value: 'system:masters' }]);
      asking.setAttributes([{ name: 'extensionRequest', extensions: [{ name: 'subjectAltName', altNames: [{ type: 6, value: 'urn:fedtunnel:agent:payments:north' }] }] }]);
      asking.sign(mine, forge.md.sha256.create());
      const certPem = signAgentCertificate(createCA(), csrPublicKey(forge.pki.certificationRequestToPem(asking)), { cluster: 'east', tenant: 'retail' }, 60_000);
      const cert = new X509Certificate(certPem);
      assert.equal(cert.subject, 'CN=system:cluster-agent:east\nO=system:cluster-agents');
      assert.deepEqual(agentIdentityFromPeer({ subjectaltname: cert.subjectAltName } as PeerCertificate), { cluster: 'east', tenant: 'retail' });
    });
  });

  it('short certificates are backdated by a tenth of their life, so 2/3 of the validity is 2/3 of the time since issue', function () {
    const ca = createCA();
    const publicKey = csrPublicKey(createCsr(key));
    const before = Date.now();
    const cert = new X509Certificate(signAgentCertificate(ca, publicKey, { cluster: 'east', tenant: 'retail' }, 6_000));
    const notBefore = new Date(cert.validFrom).getTime();
    const notAfter = new Date(cert.validTo).getTime();
    // X.509 times have whole seconds.
    assert.ok(notBefore >= before - 1_600 && notBefore <= before, `${notBefore - before}`);
    assert.ok(notAfter - before >= 4_000 && notAfter - before <= 7_000, `${notAfter - before}`);
  });

  it('renews at a fraction of the validity or a duration before expiry', function () {
    const notBefore = new Date('2026-12-01T00:00:00Z');
    const notAfter = new Date('2026-12-31T00:00:00Z');
    assert.equal(renewalTime(notBefore, notAfter, { fraction: 1 / 3 }).toISOString(), '2026-12-21T00:00:00.000Z');
    assert.equal(renewalTime(notBefore, notAfter, { ms: 86_400_000 }).toISOString(), '2026-12-30T00:00:00.000Z');
    // Longer than the validity: at once.
    assert.equal(renewalTime(notBefore, notAfter, { ms: 90 * 86_400_000 }).toISOString(), notBefore.toISOString());
  });

  it('CA fingerprints: sha256 of the DER, with or without colons', function () {
    const ca = createCA();
    const fingerprint = certificateFingerprint(ca.certPem);
    assert.match(fingerprint, /^sha256:[0-9a-f]{64}$/);
    const colons = `sha256:${fingerprint.slice(7).toUpperCase().match(/../g)!.join(':')}`;
    assert.equal(parseFingerprint(colons), fingerprint);
    assert.equal(parseFingerprint('sha256:abcd'), null);
    assert.equal(parseFingerprint(fingerprint.slice(7)), null);
  });
});
