// Certificate rotation without a restart (ANP loads its certificates once, #350/#801): SIGHUP
// makes the proxy-server use new files for new handshakes, and a broken file changes nothing.
import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { once } from 'node:events';
import { issueServerCert, readKeyPair, writeKeyPair } from '../../certs/pki.js';
import { testPki } from '../support/pki.js';
import { scratchDir } from '../support/paths.js';
import { startAgent, startServer } from '../support/processes.js';
import { stopAgent } from '../support/server-state.js';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';

async function servedSerial(port: number): Promise<string> {
  const pki = testPki();
  const socket = tls.connect({
    host: '127.0.0.1',
    port,
    ca: fs.readFileSync(pki.ca.cert),
    cert: fs.readFileSync(pki.users.alice!.cert),
    key: fs.readFileSync(pki.users.alice!.key),
    servername: 'localhost',
  });
  await once(socket, 'secureConnect');
  const serial = socket.getPeerCertificate().serialNumber;
  socket.end();
  await once(socket, 'close');
  return serial;
}

describe('certificate reload (processes)', function () {
  it('SIGHUP switches new handshakes on the agent and federation listeners too, and open agent links survive', async function () {
    const baseline = await resourceBaseline();
    const pki = testPki();
    const dir = scratchDir('reload-listeners');
    const ca = readKeyPair(path.dirname(pki.ca.cert), 'ca');
    const issue = () => writeKeyPair(dir, 'server', issueServerCert(ca, { commonName: 'hub', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] }));
    const first = issue();
    const server = await startServer({ extraArgs: ['--cert', first.cert, '--key', first.key, '--federation-listen', '127.0.0.1:0', '--federation-store', 'sqlite::memory:', '--federation-controller', 'off'] });
    const federationPort = (await server.waitForLog((l) => l.msg === 'proxy-server ready')).federationPort as number;
    const agent = await startAgent({ cluster: 'alpha', server });
    try {
      const link = (await server.state()).agents[0]!.linkId;
      const before = await servedSerial(server.agentPort);
      assert.equal(await servedSerial(federationPort), before);
      issue();
      const since = server.mark;
      server.child.kill('SIGHUP');
      await server.waitForLog((l) => l.msg === 'certificates reloaded', { since });
      const rotated = await servedSerial(server.agentPort);
      assert.notEqual(rotated, before, 'the agent listener presents the new certificate');
      assert.equal(await servedSerial(federationPort), rotated, 'the federation listener presents the new certificate');
      assert.deepEqual((await server.state()).agents.map((a) => a.linkId), [link], 'the open agent link survived');
      assert.equal(server.lines.slice(since).some((l) => l.msg === 'agent unregistered'), false);
      await stopAgent(server, agent, 'alpha');
    } finally {
      await agent.kill('SIGKILL');
      await server.kill();
    }
    await assertNoLeakedResources(baseline);
  });

  it('SIGHUP switches new handshakes to the new server certificate; a broken file keeps the old one', async function () {
    const baseline = await resourceBaseline();
    const pki = testPki();
    const dir = scratchDir('reload');
    const ca = readKeyPair(path.dirname(pki.ca.cert), 'ca');
    const first = writeKeyPair(dir, 'server', issueServerCert(ca, { commonName: 'hub', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] }));
    const server = await startServer({ extraArgs: ['--cert', first.cert, '--key', first.key] });
    try {
      const before = await servedSerial(server.connectPort);

      writeKeyPair(dir, 'server', issueServerCert(ca, { commonName: 'hub', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] }));
      let since = server.mark;
      server.child.kill('SIGHUP');
      await server.waitForLog((l) => l.msg === 'certificates reloaded', { since });
      const rotated = await servedSerial(server.connectPort);
      assert.notEqual(rotated, before);

      fs.writeFileSync(first.key, 'not a key');
      since = server.mark;
      server.child.kill('SIGHUP');
      const failed = await server.waitForLog((l) => l.msg === 'certificate reload failed; keeping the old ones', { since });
      assert.doesNotMatch(JSON.stringify(failed), /BEGIN|PRIVATE/, 'no key material in the log');
      assert.equal(await servedSerial(server.connectPort), rotated);
    } finally {
      await server.kill();
    }
    await assertNoLeakedResources(baseline);
  });
});
