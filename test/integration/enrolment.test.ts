// Agent enrolment and certificate renewal end to end: the admin CLI creates bootstrap tokens, a
// real proxy-server (--ca-key, --bootstrap-tokens, --agent-cert-ttl 6s) signs, real agents start
// with nothing but the hub address, the CA fingerprint and a token, and renew onto new links while
// a transfer runs through the old one.
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { promisify } from 'node:util';
import { certificateFingerprint, createCsr, formatTokenRecord, generateToken, formatToken, tokenRecord } from '../../certs/enrolment.js';
import { connectVia, downloadRequest, readAll, startByteService } from '../support/clients.js';
import { AGENT_BIN, DIST, scratchDir } from '../support/paths.js';
import { postEnrol, refusalReason, type EnrolAnswer, type EnrolRefusal } from '../support/enrol-client.js';
import { testPki } from '../support/pki.js';
import { spawnNode, startServer, type LoggedProcess, type ServerProcess } from '../support/processes.js';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';
import { assertServerIdle, stopAgent } from '../support/server-state.js';
import { metric } from '../support/metrics.js';

const CERTS_CLI = path.join(DIST, 'certs', 'cli.js');

describe('agent enrolment and renewal (processes)', function () {
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let server: ServerProcess;
  let bytes: Awaited<ReturnType<typeof startByteService>>;
  let dir: string;
  let pkiDir: string;
  let fingerprint: string;
  /** The enrolled agent of cluster gamma, kept from the first test to the renewal test. */
  let gamma: LoggedProcess | undefined;
  const secrets: string[] = [];
  const pki = testPki();

  /** fedtunnel-certs token create, the real CLI: returns the token file it wrote for the member. */
  async function createToken(cluster: string, name: string): Promise<string> {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CERTS_CLI, 'token', 'create', '--dir', pkiDir, '--cluster', cluster]);
    assert.match(stderr, new RegExp(`on the member: cluster-agent --server HUB:PORT --ca-fingerprint ${fingerprint}`));
    const token = stdout.trim();
    secrets.push(token.split('.')[1]!);
    const file = path.join(dir, `${name}.token`);
    fs.writeFileSync(file, `${token}\n`, { mode: 0o600 });
    return file;
  }

  async function sighup(): Promise<void> {
    const since = server.mark;
    server.child.kill('SIGHUP');
    await server.waitForLog((l) => l.msg === 'bootstrap tokens reloaded', { since });
  }

  function spawnEnrollingAgent(cluster: string, certDir: string, tokenFile: string, extra: string[] = []): LoggedProcess {
    return spawnNode(`agent-${cluster}`, AGENT_BIN, [
      '--server', `127.0.0.1:${server.agentPort}`,
      '--ca-fingerprint', fingerprint,
      '--bootstrap-token-file', tokenFile,
      '--cert-dir', certDir,
      '--health-listen', 'off',
      '--backoff-initial', '50', '--backoff-max', '500',
      '--instance', `agent-${cluster}`,
      '--allow', `127.0.0.1:${bytes.port}`,
      ...extra,
    ]);
  }

  const revokedFile = (): string => path.join(dir, 'revoked.txt');

  before(async function () {
    baseline = await resourceBaseline();
    dir = scratchDir('enrolment');
    for (const entry of fs.readdirSync(dir)) fs.rmSync(path.join(dir, entry), { recursive: true, force: true });
    fs.writeFileSync(revokedFile(), '# nothing revoked yet\n');
    // The admin's directory: the test CA (the hub's), where token create keeps bootstrap-tokens.txt.
    pkiDir = path.join(dir, 'pki');
    fs.mkdirSync(pkiDir, { mode: 0o700 });
    fs.copyFileSync(pki.ca.cert, path.join(pkiDir, 'ca.crt'));
    fs.copyFileSync(pki.ca.key, path.join(pkiDir, 'ca.key'));
    fingerprint = certificateFingerprint(fs.readFileSync(pki.ca.cert, 'utf8'));
    await createToken('gamma', 'gamma');
    bytes = await startByteService();
    server = await startServer({
      extraArgs: ['--ca-key', pki.ca.key, '--bootstrap-tokens', path.join(pkiDir, 'bootstrap-tokens.txt'), '--agent-cert-ttl', '6s', '--revoked', revokedFile()],
    });
  });

  after(async function () {
    if (gamma?.running) await stopAgent(server, gamma, 'gamma');
    if (server) {
      await assertServerIdle(server);
      // The token secrets were never logged, at any level.
      for (const secret of secrets) assert.equal(server.lines.some((l) => JSON.stringify(l).includes(secret)), false, 'a token secret appears in the hub log');
      await server.kill();
    }
    await bytes?.close();
    await assertNoLeakedResources(baseline);
  });

  it('an agent pinning another CA fingerprint refuses the hub and exits 1; its token is not spent', async function () {
    const tokenFile = path.join(dir, 'gamma.token');
    const wrong = `sha256:${'ab'.repeat(32)}`;
    const agent = spawnNode('agent-gamma-wrong-ca', AGENT_BIN, ['--server', `127.0.0.1:${server.agentPort}`, '--ca-fingerprint', wrong, '--bootstrap-token-file', tokenFile, '--cert-dir', path.join(dir, 'wrong-ca'), '--health-listen', 'off']);
    const status = await agent.exited;
    assert.equal(status.code, 1);
    const fatal = agent.lines.find((l) => l.msg === 'enrolment failed');
    assert.ok(fatal, JSON.stringify(agent.lines));
    assert.equal(fatal.code, 'CA_FINGERPRINT_MISMATCH');
    assert.match(String(fatal.err), new RegExp(`the hub's CA is ${fingerprint}, not the pinned --ca-fingerprint ${wrong}: refusing this hub`));
    assert.equal(fs.existsSync(path.join(dir, 'wrong-ca', 'agent.crt')), false);
    assert.equal(server.lines.some((l) => l.part === 'enrolment' && l.msg !== 'bootstrap tokens reloaded'), false, 'the token never reached the hub');
  });

  it('an agent with only the hub address, the CA fingerprint and a token enrols (key made locally, files 0600), links and serves dials', async function () {
    const certDir = path.join(dir, 'gamma');
    const since = server.mark;
    gamma = spawnEnrollingAgent('gamma', certDir, path.join(dir, 'gamma.token'));
    const registered = await server.agentRegistered('gamma', since);
    const enrolled = await server.waitForLog((l) => l.msg === 'agent enrolled', { since });
    assert.equal(enrolled.cluster, 'gamma');
    assert.equal(enrolled.tenant, 'default');
    assert.match(String(enrolled.tokenId), /^[a-z0-9]{6}$/);
    const agentEnrolled = await gamma.waitForLog((l) => l.msg === 'enrolled');
    assert.equal(agentEnrolled.serial, enrolled.serial);
    assert.equal(registered.serial, enrolled.serial, 'the link uses the enrolled certificate');

    for (const file of ['agent.key', 'agent.crt', 'ca.crt']) {
      assert.equal(fs.statSync(path.join(certDir, file)).mode & 0o777, 0o600, `${file} is 0600`);
    }
    const keyPem = fs.readFileSync(path.join(certDir, 'agent.key'), 'utf8');
    const cert = new X509Certificate(fs.readFileSync(path.join(certDir, 'agent.crt')));
    assert.equal(cert.checkPrivateKey((await import('node:crypto')).createPrivateKey(keyPem)), true, 'the certificate is for the key made on the member');
    assert.equal(cert.subjectAltName, 'URI:urn:fedtunnel:agent:default:gamma');
    assert.equal(certificateFingerprint(fs.readFileSync(path.join(certDir, 'ca.crt'), 'utf8')), fingerprint);

    const tunnel = await connectVia({ tlsPort: server.connectPort }, 'gamma', `127.0.0.1:${bytes.port}`);
    tunnel.write(downloadRequest(100_000));
    const received = await readAll(tunnel);
    tunnel.destroy();
    assert.equal(received.length, 100_000);
    assert.equal(metric(await server.metrics(), 'fedtunnel_enrolment_total{result="enrolled"}'), 1);
  });

  it('the hub takes a CSR only: a body with a private key is refused (400 CSR_INVALID) and the token stays unspent', async function () {
    const tokenFile = await createToken('delta', 'delta');
    await sighup();
    const { generateKeyPairSync } = await import('node:crypto');
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
    const answer = await postEnrol(server.agentPort, fs.readFileSync(tokenFile, 'utf8').trim(), createCsr(privateKey) + privateKey);
    assert.equal(answer.status, 400);
    assert.equal(refusalReason(answer), 'CSR_INVALID');
    assert.match(refusal(answer).message, /holds a private key/);
    // Still usable: the agent enrols with it.
    const since = server.mark;
    const delta = spawnEnrollingAgent('delta', path.join(dir, 'delta'), tokenFile);
    await server.agentRegistered('delta', since);
    await stopAgent(server, delta, 'delta');
  });

  it('a replayed token is refused (403 TOKEN_USED): the agent exits 1 saying why', async function () {
    const since = server.mark;
    const replay = spawnEnrollingAgent('gamma', path.join(dir, 'gamma-replay'), path.join(dir, 'gamma.token'));
    const status = await replay.exited;
    assert.equal(status.code, 1);
    const fatal = replay.lines.find((l) => l.msg === 'enrolment failed');
    assert.ok(fatal, JSON.stringify(replay.lines));
    assert.equal(fatal.code, 'TOKEN_USED');
    assert.match(String(fatal.err), /the hub refused enrol \(HTTP 403 TOKEN_USED\): bootstrap token [a-z0-9]{6} was already used; tokens are single-use, create a new one/);
    const refusal = await server.waitForLog((l) => l.msg === 'enrolment refused' && l.code === 'TOKEN_USED', { since });
    assert.equal(refusal.level, 40);
    assert.equal(metric(await server.metrics(), 'fedtunnel_enrolment_total{result="token_used"}'), 1);
  });

  it('an expired token is refused (403 TOKEN_EXPIRED); an unknown one 401 TOKEN_UNKNOWN', async function () {
    const token = generateToken();
    const file = path.join(pkiDir, 'bootstrap-tokens.txt');
    fs.appendFileSync(file, `${formatTokenRecord(tokenRecord(token, 'epsilon', 'default', new Date(Date.now() - 60_000)))}\n`);
    secrets.push(token.secret);
    await sighup();
    const expired = await postEnrol(server.agentPort, formatToken(token), createCsr(fs.readFileSync(path.join(dir, 'gamma', 'agent.key'), 'utf8')));
    assert.equal(expired.status, 403);
    assert.equal(refusalReason(expired), 'TOKEN_EXPIRED');
    assert.match(refusal(expired).message, new RegExp(`bootstrap token ${token.id} expired at`));
    const unknown = await postEnrol(server.agentPort, formatToken(generateToken()), createCsr(fs.readFileSync(path.join(dir, 'gamma', 'agent.key'), 'utf8')));
    assert.equal(unknown.status, 401);
    assert.equal(refusalReason(unknown), 'TOKEN_UNKNOWN');
    const metrics = await server.metrics();
    assert.equal(metric(metrics, 'fedtunnel_enrolment_total{result="token_expired"}'), 1);
    assert.equal(metric(metrics, 'fedtunnel_enrolment_total{result="token_unknown"}'), 1);
  });

  it('renewal at 2/3 of a 6 s certificate while a transfer runs: a new link with the new serial, the transfer completes on the old one, which then drains', async function () {
    assert.ok(gamma?.running);
    const agentMark = gamma.mark;
    const since = server.mark;
    const size = 32 * 1024 * 1024;
    const tunnel = await connectVia({ tlsPort: server.connectPort }, 'gamma', `127.0.0.1:${bytes.port}`);
    tunnel.write(downloadRequest(size));
    // The link this transfer runs on: the newest one when it starts.
    const links = gamma.lines.filter((l) => l.msg === 'link established');
    const oldSerial = String(links[links.length - 1]!.serial);
    let received = 0;
    // Hold the transfer open after its first bytes (flow control stalls it) until a renewal has replaced its link.
    const first = await new Promise<Buffer>((resolve) => {
      tunnel.once('data', (chunk: Buffer) => {
        tunnel.pause();
        resolve(chunk);
      });
      tunnel.resume();
    });
    received += first.length;
    const draining = await gamma.waitForLog((l) => l.msg === 'old link draining' && l.serial === oldSerial, { since: agentMark, timeoutMs: 30_000 });
    assert.equal(draining.streams, 1, 'the transfer is open on the old link');
    // The renewal that replaced it: the last one before its drain began.
    const renewed = gamma.lines.slice(0, gamma.lines.indexOf(draining)).filter((l) => l.msg === 'certificate renewed').pop()!;
    assert.notEqual(renewed.serial, oldSerial);
    const hubRenewed = await server.waitForLog((l) => l.msg === 'agent renewed' && l.serial === renewed.serial, { since });
    assert.equal(hubRenewed.previousSerial, oldSerial);
    await server.waitForLog((l) => l.msg === 'agent registered' && l.cluster === 'gamma' && l.serial === renewed.serial, { since });
    assert.equal(gamma.lines.slice(agentMark).some((l) => l.msg === 'old link drained' && l.serial === oldSerial), false, 'the old link waits for the transfer');

    // A new dial goes to the new link meanwhile.
    const probe = await connectVia({ tlsPort: server.connectPort }, 'gamma', `127.0.0.1:${bytes.port}`);
    probe.write(downloadRequest(1000));
    const probeBytes = await readAll(probe);
    probe.destroy();
    assert.equal(probeBytes.length, 1000);

    tunnel.on('data', (chunk: Buffer) => (received += chunk.length));
    tunnel.resume();
    await new Promise((resolve) => tunnel.once('end', resolve));
    tunnel.destroy();
    assert.equal(received, size, 'the transfer completed over the draining link');
    await gamma.waitForLog((l) => l.msg === 'old link drained' && l.serial === oldSerial, { since: agentMark });
    assert.equal(gamma.lines.some((l) => l.msg === 'old link drain deadline passed'), false);
    assert.equal(gamma.lines.some((l) => l.msg === 'certificate renewal failed; retrying'), false);
    assert.ok(metric(await server.metrics(), 'fedtunnel_enrolment_total{result="renewed"}') >= 1);
  });

  it('renewal keeps the identity of the current certificate; a revoked certificate cannot renew (403 CERTIFICATE_REVOKED)', async function () {
    const { generateKeyPairSync } = await import('node:crypto');
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
    const beta = await postRenew(server.agentPort, pki.agents.beta!, createCsr(privateKey));
    assert.equal(beta.status, 200);
    const renewed = new X509Certificate(beta.text.slice(0, beta.text.indexOf('-----END CERTIFICATE-----') + 25));
    assert.equal(renewed.subjectAltName, 'URI:urn:fedtunnel:agent:team-b:beta');
    assert.equal(renewed.checkPrivateKey((await import('node:crypto')).createPrivateKey(privateKey)), true);

    fs.writeFileSync(revokedFile(), `${new X509Certificate(fs.readFileSync(pki.agents.alpha!.cert)).serialNumber}\n`);
    await sighup();
    const alpha = await postRenew(server.agentPort, pki.agents.alpha!, createCsr(privateKey));
    assert.equal(alpha.status, 403);
    assert.equal(JSON.parse(alpha.text).details.causes[0].reason, 'CERTIFICATE_REVOKED');
    const metrics = await server.metrics();
    assert.equal(metric(metrics, 'fedtunnel_revoked_refusals_total{listener="agent_renew"}'), 1);
    assert.equal(metric(metrics, 'fedtunnel_enrolment_total{result="certificate_revoked"}'), 1);
  });

  it('with no --ca-key the enrolment paths answer 404 ENROLMENT_DISABLED', async function () {
    const plain = await startServer({ extraArgs: ['--connect-listen', 'off', '--admin-listen', 'off'] });
    try {
      const answer = await postEnrol(plain.agentPort, 'abcdef.0123456789abcdef', 'x');
      assert.equal(answer.status, 404);
      assert.equal(refusalReason(answer), 'ENROLMENT_DISABLED');
      assert.match(refusal(answer).message, /no --ca-key/);
    } finally {
      await plain.kill();
    }
  });
});

/** POST /fedtunnel/v1/renew with an agent certificate (mTLS). */
function postRenew(port: number, identity: { cert: string; key: string }, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: '/fedtunnel/v1/renew',
        method: 'POST',
        servername: 'localhost',
        ca: fs.readFileSync(testPki().ca.cert),
        cert: fs.readFileSync(identity.cert),
        key: fs.readFileSync(identity.key),
        agent: false,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.once('error', reject);
    req.end(body);
  });
}

function refusal(answer: EnrolAnswer): EnrolRefusal {
  return JSON.parse(answer.text) as EnrolRefusal;
}
