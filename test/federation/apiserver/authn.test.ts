// Bearer-token authentication (--token-file, kube-apiserver's static token file format): the pure
// parser and lookup, and the binary with real kubectl using a token kubeconfig (no client cert).
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { bearerToken, parseTokenFile, splitCsvLine, TokenAuthenticator } from '../../../federation/apiserver/authn.js';
import { UsageError } from '../../../common/flags.js';
import { assertNoLeakedResources, resourceBaseline } from '../../support/leaks.js';
import { scratchDir } from '../../support/paths.js';
import { testPki } from '../../support/pki.js';
import { APISERVER_BIN, bindUser, kubectl, mastersCert, startApiServer, type ApiServerProcess } from './harness.js';

const ADMIN_TOKEN = 'admin-token-31415926535';
const VIEWER_TOKEN = 'viewer-token-27182818284';
const TOKEN_FILE_TEXT = `# static tokens\n${ADMIN_TOKEN},tok-admin,1001,"system:masters,devs"\n\n${VIEWER_TOKEN},tok-viewer,1002\n`;

describe('apiserver: static token file (pure)', function () {
  it('splits CSV records with quoted fields', function () {
    assert.deepEqual(splitCsvLine('a,b,c'), ['a', 'b', 'c']);
    assert.deepEqual(splitCsvLine('a,b,c,"g1,g2"'), ['a', 'b', 'c', 'g1,g2']);
    assert.deepEqual(splitCsvLine('a, b,"say ""hi"""'), ['a', 'b', 'say "hi"']);
    assert.deepEqual(splitCsvLine('a,,c'), ['a', '', 'c']);
    assert.equal(splitCsvLine('a,"b'), null);
    assert.equal(splitCsvLine('a,"b"x'), null);
    assert.equal(splitCsvLine('a,b"c'), null);
  });

  it('parses token,user,uid[,"groups"] lines, skipping blank and comment lines', function () {
    assert.deepEqual(parseTokenFile(TOKEN_FILE_TEXT), [
      { token: ADMIN_TOKEN, user: 'tok-admin', uid: '1001', groups: ['system:masters', 'devs'] },
      { token: VIEWER_TOKEN, user: 'tok-viewer', uid: '1002', groups: [] },
    ]);
    assert.deepEqual(parseTokenFile('t,u,,"a, b,"\r\n'), [{ token: 't', user: 'u', uid: '', groups: ['a', 'b'] }]);
    assert.deepEqual(parseTokenFile(''), []);
  });

  it('rejects bad lines with a usage error naming the line, never the token', function () {
    const cases: Array<[string, RegExp]> = [
      ['ok,u,1\nsecret-1,u\n', /tokens\.csv line 2: expected token,user,uid\[,"groups"\], found 2 columns/],
      ['secret-1,u,1,g,extra\n', /line 1: .*found 5 columns/],
      ['\n\n,u,1\n', /line 3: empty token/],
      ['secret-1,,1\n', /line 1: empty user name/],
      ['secret 1,u,1\n', /line 1: the token contains whitespace/],
      ['secret-1,u,1,"g\n', /line 1: malformed CSV quoting/],
      ['secret-1,u,1\nsecret-1,v,2\n', /line 2: duplicate token/],
    ];
    for (const [text, re] of cases) {
      assert.throws(
        () => parseTokenFile(text, 'tokens.csv'),
        (err: unknown) => {
          assert.ok(err instanceof UsageError, String(err));
          assert.match(err.message, re);
          assert.doesNotMatch(err.message, /secret/);
          return true;
        },
      );
    }
  });

  it('looks tokens up (copies of the user, unknown and near-miss tokens are null)', function () {
    const auth = new TokenAuthenticator(parseTokenFile(TOKEN_FILE_TEXT));
    assert.equal(auth.size, 2);
    assert.deepEqual(auth.authenticate(ADMIN_TOKEN), { user: 'tok-admin', groups: ['system:masters', 'devs'] });
    assert.deepEqual(auth.authenticate(VIEWER_TOKEN), { user: 'tok-viewer', groups: [] });
    auth.authenticate(ADMIN_TOKEN)!.groups.push('x');
    assert.deepEqual(auth.authenticate(ADMIN_TOKEN)!.groups, ['system:masters', 'devs']);
    for (const bad of ['', 'nope', ADMIN_TOKEN.slice(0, -1), `${ADMIN_TOKEN}x`, ADMIN_TOKEN.toUpperCase()]) assert.equal(auth.authenticate(bad), null, bad);
    assert.equal(new TokenAuthenticator([]).authenticate(ADMIN_TOKEN), null);
  });

  it('reads the bearer token of an Authorization header', function () {
    assert.equal(bearerToken('Bearer abc'), 'abc');
    assert.equal(bearerToken('bearer abc'), 'abc');
    assert.equal(bearerToken(undefined), undefined);
    assert.equal(bearerToken('Bearer '), undefined);
    assert.equal(bearerToken('Basic YWJjOmRlZg=='), undefined);
    assert.equal(bearerToken('Bearer a b'), undefined);
  });
});

interface Reply {
  status: number;
  body: string;
}

function get(port: number, urlPath: string, options: { token?: string; cert?: 'admin' | 'alice' | 'bob' } = {}): Promise<Reply> {
  const pki = testPki();
  const pair = options.cert === 'admin' ? mastersCert() : options.cert === undefined ? undefined : pki.users[options.cert]!;
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: urlPath,
        agent: false,
        ca: fs.readFileSync(pki.ca.cert),
        headers: options.token !== undefined ? { Authorization: `Bearer ${options.token}` } : {},
        ...(pair ? { cert: fs.readFileSync(pair.cert), key: fs.readFileSync(pair.key) } : {}),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Runs the API server binary with the test TLS files and `args` until it exits (for start-up failures). */
async function apiServerExit(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const pki = testPki();
  const child = spawn(process.execPath, [APISERVER_BIN, '--listen', '127.0.0.1:0', '--ca', pki.ca.cert, '--cert', pki.server.cert, '--key', pki.server.key, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  return { code, stdout, stderr };
}

describe('apiserver: bearer tokens against the binary', function () {
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let server: ApiServerProcess;
  let tokenKubeconfig: (user: string, token: string) => string;

  before(async function () {
    baseline = await resourceBaseline();
    const dir = scratchDir('apiserver-authn');
    const file = path.join(dir, 'tokens.csv');
    fs.writeFileSync(file, TOKEN_FILE_TEXT);
    server = await startApiServer('authn', ['--token-file', file]);
    const ca = testPki().ca.cert;
    tokenKubeconfig = (user, token) => {
      const out = path.join(dir, `kubeconfig-${user}`);
      fs.writeFileSync(
        out,
        `apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: https://127.0.0.1:${server.port}\n    certificate-authority: ${ca}\n` +
          `users:\n- name: ${user}\n  user:\n    token: ${token}\ncontexts:\n- name: ${user}\n  context:\n    cluster: test\n    user: ${user}\ncurrent-context: ${user}\n`,
      );
      return out;
    };
  });

  after(async function () {
    await server?.kill();
    await assertNoLeakedResources(baseline);
  });

  it('kubectl with a token kubeconfig (no client certificate) creates and reads as the token user', async function () {
    const kc = tokenKubeconfig('tok-admin', ADMIN_TOKEN);
    let r = await kubectl(server, ['--kubeconfig', kc, 'create', 'configmap', 'by-token', '--from-literal=a=1']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /configmap\/by-token created/);
    r = await kubectl(server, ['--kubeconfig', kc, 'get', 'configmaps', '-o', 'name']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^configmap\/by-token$/m);
  });

  it('a token user outside system:masters reads once bound to view, and may not delete (Forbidden names the token user)', async function () {
    const kc = tokenKubeconfig('tok-viewer', VIEWER_TOKEN);
    let r = await kubectl(server, ['--kubeconfig', kc, 'get', 'configmap', 'by-token', '-o', 'name']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Forbidden.*User "tok-viewer" cannot get resource "configmaps"/);
    await bindUser(server, 'tok-viewer', 'view', { verb: 'get', resource: 'configmaps', namespace: 'default', name: 'by-token' });
    r = await kubectl(server, ['--kubeconfig', kc, 'get', 'configmap', 'by-token', '-o', 'name']);
    assert.equal(r.code, 0, r.stderr);
    r = await kubectl(server, ['--kubeconfig', kc, 'delete', 'configmap', 'by-token']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Forbidden.*User "tok-viewer" cannot delete resource "configmaps"/);
  });

  it('kubectl with a wrong token is Unauthorized', async function () {
    const kc = tokenKubeconfig('wrong', 'not-a-known-token');
    const r = await kubectl(server, ['--kubeconfig', kc, 'get', 'configmaps']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Unauthorized|must be logged in/);
  });

  it('raw requests: wrong or missing credentials are a 401 Status; a verified certificate wins over a bad token', async function () {
    const noCreds = await get(server.port, '/api/v1/namespaces');
    assert.equal(noCreds.status, 401);
    const bad = await get(server.port, '/api/v1/namespaces', { token: 'wrong' });
    assert.equal(bad.status, 401);
    assert.deepEqual(JSON.parse(bad.body), { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 });
    const good = await get(server.port, '/api/v1/namespaces', { token: ADMIN_TOKEN });
    assert.equal(good.status, 200, good.body);
    // As in kube-apiserver, any valid authenticator wins: a verified certificate with a bad token is the certificate's user.
    const certAndBad = await get(server.port, '/api/v1', { cert: 'alice', token: 'wrong' });
    assert.equal(certAndBad.status, 200, certAndBad.body);
    assert.equal((await get(server.port, '/healthz', {})).status, 200);
  });

  it('never logs a token', function () {
    const all = JSON.stringify(server.lines) + server.stderr;
    assert.ok(!all.includes(ADMIN_TOKEN) && !all.includes(VIEWER_TOKEN) && !all.includes('not-a-known-token'));
  });

  it('a bad token file exits 2 naming the line', async function () {
    const file = path.join(scratchDir('apiserver-authn'), 'bad-tokens.csv');
    fs.writeFileSync(file, `${ADMIN_TOKEN},a,1\n${VIEWER_TOKEN}\n`);
    const { code, stderr } = await apiServerExit(['--token-file', file]);
    assert.equal(code, 2, stderr);
    assert.match(stderr, /--token-file: .*bad-tokens\.csv line 2: expected token,user,uid/);
    assert.ok(!stderr.includes(VIEWER_TOKEN) && !stderr.includes(ADMIN_TOKEN));
  });
});

describe('apiserver: --revoked against the binary', function () {
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let server: ApiServerProcess;
  let listFile: string;
  let bobSerial: string;

  async function sighup(message: string) {
    const since = server.mark;
    server.child.kill('SIGHUP');
    return server.waitForLog((l) => l.msg === message, { since });
  }

  before(async function () {
    baseline = await resourceBaseline();
    const dir = scratchDir('apiserver-revoked');
    listFile = path.join(dir, 'revoked.txt');
    bobSerial = new X509Certificate(fs.readFileSync(testPki().users.bob!.cert)).serialNumber;
    fs.writeFileSync(listFile, `${bobSerial.match(/../g)!.join(':')} 2026-12-02 laptop lost\n`);
    const tokens = path.join(dir, 'tokens.csv');
    fs.writeFileSync(tokens, TOKEN_FILE_TEXT);
    server = await startApiServer('revoked', ['--revoked', listFile, '--token-file', tokens]);
  });

  after(async function () {
    await server?.kill();
    await assertNoLeakedResources(baseline);
  });

  it('answers a revoked client certificate with a 403 Status, even beside a valid token, and logs it at warn', async function () {
    const since = server.mark;
    for (const token of [undefined, ADMIN_TOKEN]) {
      const reply = await get(server.port, '/api/v1', { cert: 'bob', token });
      assert.equal(reply.status, 403, reply.body);
      const status = JSON.parse(reply.body) as { kind: string; reason: string; message: string; code: number };
      assert.equal(status.kind, 'Status');
      assert.equal(status.reason, 'Forbidden');
      assert.equal(status.message, `client certificate serial ${bobSerial.toLowerCase()} is revoked`);
    }
    const logged = await server.waitForLog((l) => l.msg === 'connection refused' && l.reason === 'revoked', { since });
    assert.equal(logged.level, 40);
    assert.equal(logged.user, 'bob');
    assert.equal(logged.serial, bobSerial.toLowerCase());
    assert.equal((await get(server.port, '/api/v1', { cert: 'alice' })).status, 200);
  });

  it('re-reads the list on SIGHUP; a list that does not load keeps the one in force', async function () {
    fs.writeFileSync(listFile, '# nothing revoked\n');
    assert.equal((await sighup('revocation list reloaded')).entries, 0);
    assert.equal((await get(server.port, '/api/v1', { cert: 'bob' })).status, 200);

    fs.writeFileSync(listFile, `${bobSerial}\nnot-a-serial\n`);
    const failed = await sighup('revocation list reload failed; keeping the old one');
    assert.match(String(failed.err), /line 2: "not-a-serial" is not a serial number/);
    assert.equal((await get(server.port, '/api/v1', { cert: 'bob' })).status, 200, 'the empty list stays in force');

    fs.writeFileSync(listFile, `${bobSerial}\n`);
    assert.equal((await sighup('revocation list reloaded')).entries, 1);
    assert.equal((await get(server.port, '/api/v1', { cert: 'bob' })).status, 403);
  });

  it('a list that does not load at start exits 1 naming the line', async function () {
    const file = path.join(scratchDir('apiserver-revoked'), 'bad-revoked.txt');
    fs.writeFileSync(file, '4a\n\nzz-top\n');
    const { code, stdout } = await apiServerExit(['--revoked', file]);
    assert.equal(code, 1, stdout);
    assert.match(stdout, /bad-revoked\.txt line 3: \\"zz-top\\" is not a serial number/);
  });
});
