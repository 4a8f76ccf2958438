import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError, parseCliOptions } from '../../certs/cli.js';
import { loadRevocationFile } from '../../certs/revocation.js';

const CLI_PATH = fileURLToPath(new URL('../../certs/cli.js', import.meta.url));

interface CliResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

function runCli(...args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_PATH, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (exitCode) => resolve({ exitCode, stdout, stderr }));
  });
}

describe('certs: parseCliOptions', function () {
  it('parses token create: tenant default, ttl 1h unless given', function () {
    assert.deepEqual(parseCliOptions(['token', 'create', '--dir', 'd', '--cluster', 'east']), { command: 'token', action: 'create', dir: 'd', cluster: 'east', tenant: 'default', ttlMs: 3_600_000 });
    assert.equal((parseCliOptions(['token', 'create', '--dir', 'd', '--cluster', 'east', '--tenant', 'retail', '--ttl', '7d']) as { ttlMs: number }).ttlMs, 7 * 86_400_000);
    assert.throws(() => parseCliOptions(['token', '--dir', 'd', '--cluster', 'east']), UsageError);
    assert.throws(() => parseCliOptions(['token', 'delete', '--dir', 'd', '--cluster', 'east']), /unknown action 'delete'/);
    assert.throws(() => parseCliOptions(['token', 'create', '--dir', 'd']), /--cluster/);
    assert.throws(() => parseCliOptions(['token', 'create', '--dir', 'd', '--cluster', 'east', '--ttl', 'forever']), /--ttl/);
  });

  it('parses each command', function () {
    assert.deepEqual(parseCliOptions(['init-ca', '--dir', 'd']), {
      command: 'init-ca',
      dir: 'd',
      commonName: undefined,
      days: undefined,
      force: false,
    });
    assert.deepEqual(parseCliOptions(['server', '--dir', 'd', '--name', 'proxy', '--dns', 'a.example', '--dns', 'b', '--ip', '::1', '--days', '30']), {
      command: 'server',
      dir: 'd',
      name: 'proxy',
      dnsNames: ['a.example', 'b'],
      ipAddresses: ['::1'],
      days: 30,
    });
    assert.deepEqual(parseCliOptions(['agent', '--dir', 'd', '--cluster', 'c1', '--tenant', 't1']), {
      command: 'agent',
      dir: 'd',
      cluster: 'c1',
      tenant: 't1',
      days: undefined,
    });
    assert.deepEqual(parseCliOptions(['client', '--dir', 'd', '--user', 'alice', '--group', 'dev', '--group', 'ops']), {
      command: 'client',
      dir: 'd',
      user: 'alice',
      groups: ['dev', 'ops'],
      days: undefined,
    });
    assert.deepEqual(parseCliOptions(['agent', '--help']), { command: 'help' });
    assert.deepEqual(parseCliOptions(['revoke', '--dir', 'd', 'agent-east.crt', '--reason', ' leaked ']), {
      command: 'revoke',
      dir: 'd',
      target: 'agent-east.crt',
      reason: 'leaked',
    });
    assert.deepEqual(parseCliOptions(['revoke', '--dir', 'd', '4a:3f']), { command: 'revoke', dir: 'd', target: '4a:3f' });
    assert.deepEqual(parseCliOptions(['revoked', '--dir', 'd']), { command: 'revoked', dir: 'd' });
  });

  it('throws UsageError for invalid invocations', function () {
    for (const argv of [
      [],
      ['frobnicate', '--dir', 'd'],
      ['agent', '--dir', 'd', '--cluster', 'c1'],
      ['agent', '--dir', 'd', '--cluster', 'C1', '--tenant', 't1'],
      ['agent', '--dir', 'd', '--cluster', 'c1', '--tenant', 't1', '--user', 'alice'],
      ['agent', '--dir', 'd', '--cluster', 'c1', '--tenant', 't1', 'extra'],
      ['client', '--user', 'alice'],
      ['client', '--dir', 'd', '--user', 'alice', '--bogus'],
      ['server', '--dir', 'd', '--name', 'proxy', '--ip', '300.1.1.1'],
      ['server', '--dir', 'd', '--name', 'proxy', '--dns', 'bad_host'],
      ['init-ca', '--dir', 'd', '--days', '0'],
      ['init-ca', '--dir', 'd', '--days', '1.5'],
      ['init-ca', '--dir'],
      ['revoke', '--dir', 'd'],
      ['revoke', '--dir', 'd', 'a.crt', 'b.crt'],
      ['revoke', 'a.crt'],
      ['revoke', '--dir', 'd', 'a.crt', '--reason', 'two\nlines'],
      ['revoked', '--dir', 'd', 'extra'],
      ['revoked', '--dir', 'd', '--reason', 'x'],
    ]) {
      assert.throws(() => parseCliOptions(argv), UsageError, argv.join(' '));
    }
  });
});

describe('certs: fedtunnel-certs CLI', function () {
  let tempDir: string;

  beforeEach(function () {
    tempDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fedtunnel-cli-'));
  });

  afterEach(function () {
    fs.rmSync(tempDir, { recursive: true, force: true });
  });

  it('creates the CA and each kind of certificate', async function () {
    const dir = path.join(tempDir, 'pki');
    const commands = [
      ['init-ca', '--dir', dir, '--cn', 'test-ca'],
      ['server', '--dir', dir, '--name', 'proxy', '--dns', 'localhost', '--ip', '127.0.0.1'],
      ['agent', '--dir', dir, '--cluster', 'c1', '--tenant', 't1', '--days', '30'],
      ['client', '--dir', dir, '--user', 'alice', '--group', 'dev'],
    ];
    for (const args of commands) {
      const result = await runCli(...args);
      assert.equal(result.exitCode, 0, `${args.join(' ')}: ${result.stderr}`);
    }

    const agentResult = await runCli(...commands[2]);
    assert.deepEqual(agentResult.stdout.trim().split('\n'), [path.join(dir, 'agent-c1.crt'), path.join(dir, 'agent-c1.key')]);
    assert.deepEqual(fs.readdirSync(dir).sort(), [
      'agent-c1.crt',
      'agent-c1.key',
      'ca.crt',
      'ca.key',
      'client-alice.crt',
      'client-alice.key',
      'server.crt',
      'server.key',
    ]);
    for (const file of fs.readdirSync(dir).filter((name) => name.endsWith('.key'))) {
      assert.equal(fs.statSync(path.join(dir, file)).mode & 0o777, 0o600, file);
    }
    const caCert = new X509Certificate(fs.readFileSync(path.join(dir, 'ca.crt')));
    const agentCert = new X509Certificate(fs.readFileSync(path.join(dir, 'agent-c1.crt')));
    assert.equal(caCert.subject, 'CN=test-ca');
    assert.equal(agentCert.subjectAltName, 'URI:urn:fedtunnel:agent:t1:c1');
    assert.ok(agentCert.verify(caCert.publicKey));
  });

  it('prints usage with --help', async function () {
    const result = await runCli('--help');
    assert.equal(result.exitCode, 0);
    assert.match(result.stdout, /^Usage: fedtunnel-certs/);
  });

  it('exits 2 with a message on a bad flag or an invalid name', async function () {
    const badFlag = await runCli('agent', '--dir', tempDir, '--cluster', 'c1', '--tenant', 't1', '--bogus');
    assert.equal(badFlag.exitCode, 2);
    assert.match(badFlag.stderr, /^error: .*bogus/);

    const badName = await runCli('agent', '--dir', tempDir, '--cluster', 'Not_A_Label', '--tenant', 't1');
    assert.equal(badName.exitCode, 2);
    assert.match(badName.stderr, /^error: .*--cluster/);
  });

  it('refuses to overwrite an existing CA unless --force', async function () {
    assert.equal((await runCli('init-ca', '--dir', tempDir)).exitCode, 0);
    const originalCa = fs.readFileSync(path.join(tempDir, 'ca.crt'), 'utf8');

    const second = await runCli('init-ca', '--dir', tempDir);
    assert.notEqual(second.exitCode, 0);
    assert.match(second.stderr, /^error: .*--force/);
    assert.equal(fs.readFileSync(path.join(tempDir, 'ca.crt'), 'utf8'), originalCa);

    assert.equal((await runCli('init-ca', '--dir', tempDir, '--force')).exitCode, 0);
    assert.notEqual(fs.readFileSync(path.join(tempDir, 'ca.crt'), 'utf8'), originalCa);
  });

  it('exits 1 when issuing without a CA', async function () {
    const result = await runCli('client', '--dir', tempDir, '--user', 'alice');
    assert.equal(result.exitCode, 1);
    assert.match(result.stderr, /^error: no CA in .*init-ca/);
  });

  describe('revoke and revoked', function () {
    let dir: string;
    let agentCert: X509Certificate;

    beforeEach(async function () {
      dir = path.join(tempDir, 'pki');
      assert.equal((await runCli('init-ca', '--dir', dir)).exitCode, 0);
      assert.equal((await runCli('agent', '--dir', dir, '--cluster', 'east', '--tenant', 'retail')).exitCode, 0);
      agentCert = new X509Certificate(fs.readFileSync(path.join(dir, 'agent-east.crt')));
    });

    it('revokes a certificate file, tells the operator to SIGHUP, and lists it', async function () {
      const empty = await runCli('revoked', '--dir', dir);
      assert.equal(empty.exitCode, 0, empty.stderr);
      assert.match(empty.stdout, /^no certificates revoked in .*revoked\.txt \(the file does not exist\)/);

      const result = await runCli('revoke', '--dir', dir, path.join(dir, 'agent-east.crt'), '--reason', 'key leaked');
      assert.equal(result.exitCode, 0, result.stderr);
      const serial = agentCert.serialNumber.toLowerCase();
      assert.match(result.stdout, new RegExp(`^revoked serial ${serial} \\(agent retail/east\\) in `));
      assert.match(result.stdout, /SIGHUP/);
      const file = path.join(dir, 'revoked.txt');
      assert.equal(fs.statSync(file).mode & 0o777, 0o644);
      assert.match(fs.readFileSync(file, 'utf8'), new RegExp(`^${serial} \\d{4}-\\d\\d-\\d\\dT[\\d:]+Z agent retail/east reason: key leaked\\n$`));
      assert.ok(loadRevocationFile(file).isRevoked(agentCert.serialNumber));
      assert.deepEqual(fs.readdirSync(dir).filter((name) => name.endsWith('.tmp')), [], 'no temporary file left behind');

      const listed = await runCli('revoked', '--dir', dir);
      assert.equal(listed.exitCode, 0);
      assert.match(listed.stdout, new RegExp(`^${serial}  .*agent retail/east reason: key leaked\\n$`));
    });

    it('revokes by serial (colons, any case) and is idempotent, keeping hand-written lines', async function () {
      const file = path.join(dir, 'revoked.txt');
      fs.writeFileSync(file, '# revoked by hand\nab:cd');
      const result = await runCli('revoke', '--dir', dir, '4A:3F:01');
      assert.equal(result.exitCode, 0, result.stderr);
      assert.match(result.stdout, /^revoked serial 4a3f01 in /);
      const again = await runCli('revoke', '--dir', dir, '004a3f01');
      assert.equal(again.exitCode, 0);
      assert.match(again.stdout, /already revoked .*line 3.*nothing changed/);
      const lines = fs.readFileSync(file, 'utf8').split('\n');
      assert.deepEqual(lines.slice(0, 2), ['# revoked by hand', 'ab:cd']);
      assert.match(lines[2]!, /^4a3f01 \d{4}-/);
      assert.equal(lines.length, 4);
    });

    it('exits with a message on bad input and leaves the list alone', async function () {
      const unknown = await runCli('revoke', '--dir', dir, path.join(dir, 'no-such.crt'));
      assert.equal(unknown.exitCode, 1);
      assert.match(unknown.stderr, /^error: .*no-such\.crt: no such file, and not a serial number/);

      const key = await runCli('revoke', '--dir', dir, path.join(dir, 'agent-east.key'));
      assert.equal(key.exitCode, 1);
      assert.match(key.stderr, /^error: .*agent-east\.key is not a certificate/);

      const missing = await runCli('revoke', '--dir', dir);
      assert.equal(missing.exitCode, 2);
      assert.match(missing.stderr, /name a certificate file or a serial number/);

      const badReason = await runCli('revoke', '--dir', dir, '4a', '--reason', 'see #12');
      assert.equal(badReason.exitCode, 2);
      assert.match(badReason.stderr, /--reason must not contain '#'/);
      assert.equal(fs.existsSync(path.join(dir, 'revoked.txt')), false);

      fs.writeFileSync(path.join(dir, 'revoked.txt'), '4a\nnot-hex\n');
      const broken = await runCli('revoke', '--dir', dir, '4b');
      assert.equal(broken.exitCode, 1);
      assert.match(broken.stderr, /revoked\.txt line 2: "not-hex" is not a serial number/);
      assert.equal(fs.readFileSync(path.join(dir, 'revoked.txt'), 'utf8'), '4a\nnot-hex\n');
      assert.equal((await runCli('revoked', '--dir', dir)).exitCode, 1);
    });
  });
});
