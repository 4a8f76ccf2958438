// Bootstrap tokens across HA replicas: two proxy-server processes sharing a fresh MySQL database
// (their used-token ledger is a table there), one token file written by the real certs CLI. A
// token spent on one replica is refused on the other, and one token raced on both replicas at
// once gives exactly one certificate.
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { certificateFingerprint, createCsr } from '../../certs/enrolment.js';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';
import { metric } from '../support/metrics.js';
import { MYSQL_URL, mysqlQuery, mysqlUnreachable, scratchDatabase } from '../support/mysql.js';
import { AGENT_BIN, DIST, scratchDir } from '../support/paths.js';
import { postEnrol, refusalReason } from '../support/enrol-client.js';
import { testPki } from '../support/pki.js';
import { killAllChildren, spawnNode, startServer, type LoggedProcess, type ServerProcess } from '../support/processes.js';
import { stopAgent } from '../support/server-state.js';

const CERTS_CLI = path.join(DIST, 'certs', 'cli.js');
const RACED_TOKENS = 4;

describe('bootstrap tokens across HA replicas (processes, shared MySQL)', function () {
  this.timeout(90_000);
  const pki = testPki();
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let dir: string;
  let pkiDir: string;
  let fingerprint: string;
  let database: string;
  let scratch: Awaited<ReturnType<typeof scratchDatabase>> | undefined;
  let store: string;
  /** Token text by name, all created before the replicas start. */
  const tokens = new Map<string, string>();

  async function createToken(name: string, cluster: string): Promise<void> {
    const { stdout } = await promisify(execFile)(process.execPath, [CERTS_CLI, 'token', 'create', '--dir', pkiDir, '--cluster', cluster]);
    tokens.set(name, stdout.trim());
  }

  function tokenFile(name: string): string {
    const file = path.join(dir, `${name}.token`);
    fs.writeFileSync(file, `${tokens.get(name)!}\n`, { mode: 0o600 });
    return file;
  }

  function replica(id: string): Promise<ServerProcess> {
    return startServer({
      extraArgs: [
        '--instance', id,
        '--federation-store', store,
        '--advertise-agent-address', '127.0.0.1:0',
        '--replica-heartbeat', '250',
        '--replica-ttl', '2000',
        '--ca-key', pki.ca.key,
        '--bootstrap-tokens', path.join(pkiDir, 'bootstrap-tokens.txt'),
      ],
    });
  }

  function spawnEnrollingAgent(name: string, hub: ServerProcess, token: string): LoggedProcess {
    return spawnNode(name, AGENT_BIN, [
      '--server', `127.0.0.1:${hub.agentPort}`,
      '--ca-fingerprint', fingerprint,
      '--bootstrap-token-file', tokenFile(token),
      '--cert-dir', path.join(dir, name),
      '--health-listen', 'off',
      '--backoff-initial', '50', '--backoff-max', '500',
      '--instance', name,
    ]);
  }

  before(async function () {
    const missing = await mysqlUnreachable();
    if (missing) assert.fail(`MySQL at ${MYSQL_URL} is needed: ${missing}`);
    baseline = await resourceBaseline();
    dir = scratchDir('ha-enrolment');
    for (const entry of fs.readdirSync(dir)) fs.rmSync(path.join(dir, entry), { recursive: true, force: true });
    pkiDir = path.join(dir, 'pki');
    fs.mkdirSync(pkiDir, { mode: 0o700 });
    fs.copyFileSync(pki.ca.cert, path.join(pkiDir, 'ca.crt'));
    fs.copyFileSync(pki.ca.key, path.join(pkiDir, 'ca.key'));
    fingerprint = certificateFingerprint(fs.readFileSync(pki.ca.cert, 'utf8'));
    await createToken('gamma', 'gamma');
    for (let i = 0; i < RACED_TOKENS; i++) await createToken(`race-${i}`, `race-${i}`);
  });

  beforeEach(async function () {
    scratch = await scratchDatabase('ha_tokens');
    database = scratch.name;
    store = scratch.url;
  });

  afterEach(async function () {
    // A failed test must not leave its replicas and agents to the next.
    await killAllChildren();
    await scratch?.drop();
  });

  after(async function () {
    await assertNoLeakedResources(baseline);
  });

  it('a token spent on replica A is refused on replica B (403 TOKEN_USED): that agent exits 1; the ledger is the shared table, not a file', async function () {
    const a = await replica('hub-a');
    const b = await replica('hub-b');
    const gamma = spawnEnrollingAgent('agent-gamma', a, 'gamma');
    const enrolled = await a.waitForLog((l) => l.msg === 'agent enrolled');
    assert.equal(enrolled.cluster, 'gamma');
    // The enrolled certificate is good on every replica: the agent links to both.
    await a.agentRegistered('gamma');
    await b.agentRegistered('gamma');

    const replay = spawnEnrollingAgent('agent-gamma-replay', b, 'gamma');
    const status = await replay.exited;
    assert.equal(status.code, 1);
    const fatal = replay.lines.find((l) => l.msg === 'enrolment failed');
    assert.ok(fatal, JSON.stringify(replay.lines));
    assert.equal(fatal.code, 'TOKEN_USED');
    assert.match(String(fatal.err), /the hub refused enrol \(HTTP 403 TOKEN_USED\): bootstrap token [a-z0-9]{6} was already used/);
    assert.equal(fs.existsSync(path.join(dir, 'agent-gamma-replay', 'agent.crt')), false);
    const refusal = await b.waitForLog((l) => l.msg === 'enrolment refused' && l.code === 'TOKEN_USED');
    assert.equal(refusal.level, 40);
    assert.equal(b.lines.some((l) => l.msg === 'agent enrolled'), false, 'hub-b signed nothing');

    assert.equal(metric(await a.metrics(), 'fedtunnel_bootstrap_token_claims_total{ledger="store",result="claimed"}'), 1);
    const bMetrics = await b.metrics();
    assert.equal(metric(bMetrics, 'fedtunnel_bootstrap_token_claims_total{ledger="store",result="used"}'), 1);
    assert.equal(metric(bMetrics, 'fedtunnel_enrolment_total{result="token_used"}'), 1);
    const rows = (await mysqlQuery(`SELECT id, cluster, used_by FROM \`${database}\`.fedtunnel_bootstrap_tokens_used`)) as Array<{ id: string; cluster: string; used_by: string }>;
    assert.deepEqual(rows.map((r) => [r.id, r.cluster, r.used_by]), [[tokens.get('gamma')!.split('.')[0], 'gamma', 'hub-a']]);
    assert.equal(fs.existsSync(path.join(pkiDir, 'bootstrap-tokens.txt.used')), false, 'replicas do not write the file ledger');
    // No token secret reached either hub's log.
    for (const hub of [a, b]) for (const token of tokens.values()) assert.equal(hub.lines.some((l) => JSON.stringify(l).includes(token.split('.')[1]!)), false);

    await stopAgent(a, gamma, 'gamma');
    await b.agentUnregistered('gamma');
    await b.kill();
    await a.kill();
  });

  it('one token raced on replica A and replica B at once, with different keys: exactly one certificate, the other 403 TOKEN_USED', async function () {
    const a = await replica('hub-a');
    const b = await replica('hub-b');
    const csr = (): string => createCsr(generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }).privateKey);
    let certificates = 0;
    for (let i = 0; i < RACED_TOKENS; i++) {
      const token = tokens.get(`race-${i}`)!;
      const bodies = [csr(), csr()];
      // Both requests are in flight before either answers.
      const answers = await Promise.all([postEnrol(a.agentPort, token, bodies[0]!), postEnrol(b.agentPort, token, bodies[1]!)]);
      const ok = answers.filter((x) => x.status === 200);
      const winner = answers[0]!.status === 200 ? a : b;
      assert.equal(ok.length, 1, `token race-${i}: ${answers.map((x) => `${x.status} ${x.text.slice(0, 80)}`).join(' | ')}`);
      const refused = answers.find((x) => x.status !== 200)!;
      assert.equal(refused.status, 403);
      assert.equal(refusalReason(refused), 'TOKEN_USED');
      const cert = new X509Certificate(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----\n?/.exec(ok[0]!.text)![0]);
      assert.equal(cert.subjectAltName, `URI:urn:fedtunnel:agent:default:race-${i}`);
      // The log line is written before the answer but may reach us after it (the child's pipe).
      const logged = await winner.waitForLog((l) => l.msg === 'agent enrolled' && l.cluster === `race-${i}`);
      assert.equal(logged.serial, cert.serialNumber.toLowerCase());
      certificates += ok.length;
    }
    assert.equal(certificates, RACED_TOKENS);
    // What the hubs count agrees: one enrolment and one claim per token across both, one row per token.
    const [aMetrics, bMetrics] = [await a.metrics(), await b.metrics()];
    const sum = (sample: string): number => metric(aMetrics, sample) + metric(bMetrics, sample);
    assert.equal(sum('fedtunnel_enrolment_total{result="enrolled"}'), RACED_TOKENS);
    assert.equal(sum('fedtunnel_enrolment_total{result="token_used"}'), RACED_TOKENS);
    assert.equal(sum('fedtunnel_bootstrap_token_claims_total{ledger="store",result="claimed"}'), RACED_TOKENS);
    const rows = (await mysqlQuery(`SELECT COUNT(*) AS n FROM \`${database}\`.fedtunnel_bootstrap_tokens_used`)) as Array<{ n: number }>;
    assert.equal(Number(rows[0]!.n), RACED_TOKENS);
    await b.kill();
    await a.kill();
  });
});
