import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { ServerMetrics } from '../../proxy-server/metrics.js';
import { AgentRegistry } from '../../proxy-server/registry.js';
import { RevocationGuard } from '../../proxy-server/revocation.js';
import { RevocationListError } from '../../certs/revocation.js';

/** A logger whose lines the test reads back. */
function capturingLogger(): { log: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level: 'info' }, sink), lines };
}

async function sample(metrics: ServerMetrics, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  const value = metric?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return value?.value ?? 0;
}

describe('proxy-server: RevocationGuard', function () {
  let dir: string;
  let file: string;

  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'guard-'));
    file = path.join(dir, 'revoked.txt');
  });

  afterEach(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses revoked serials in any spelling, counting per listener', async function () {
    fs.writeFileSync(file, '4a:3f leaked\n');
    const metrics = new ServerMetrics(new AgentRegistry(10));
    const { log, lines } = capturingLogger();
    const guard = new RevocationGuard(file, metrics, log, 1000);
    assert.equal(guard.refuses('connect_tls', '004A3F', { user: 'bob' }), true);
    assert.equal(guard.refuses('connect_tls', '4A40', { user: 'alice' }), false);
    assert.equal(guard.refuses('connect_tls', undefined, { user: 'nobody' }), false);
    assert.equal(guard.isRevokedForFederation('4A3F'), true);
    const reported: Array<Record<string, string>> = [];
    assert.equal(guard.refuses('connect_tls', '4a3f', { user: 'carol' }, (fields) => reported.push(fields)), true);
    assert.deepEqual(reported, [{ serial: '4a3f', user: 'carol' }], 'a listener guard reports it instead of this log');
    assert.equal(await sample(metrics, 'fedtunnel_revoked_refusals_total', { listener: 'connect_tls' }), 2);
    assert.equal(await sample(metrics, 'fedtunnel_revoked_refusals_total', { listener: 'federation' }), 1);
    assert.equal(await sample(metrics, 'fedtunnel_revocation_list_entries'), 1);
    assert.deepEqual(
      lines.map(({ level, msg, reason, serial, user }) => ({ level, msg, reason, serial, user })),
      [{ level: 40, msg: 'refused: certificate revoked', reason: 'revoked', serial: '4a3f', user: 'bob' }],
    );
  });

  it('a reload closes exactly the open connections whose certificate it revokes; a bad file keeps the old list', async function () {
    fs.writeFileSync(file, '');
    const metrics = new ServerMetrics(new AgentRegistry(10));
    const { log, lines } = capturingLogger();
    const guard = new RevocationGuard(file, metrics, log, 1000);
    const closed: string[] = [];
    guard.track('connect_tunnel', 'AA', { user: 'bob' }, (reason) => closed.push(`bob: ${reason}`));
    guard.track('connect_tunnel', 'BB', { user: 'alice' }, (reason) => closed.push(`alice: ${reason}`));
    const untrack = guard.track('agent_link', 'AA', { cluster: 'east' }, () => closed.push('gone link'));
    untrack(); // closed before the reload: nothing left to close

    fs.writeFileSync(file, 'aa\n');
    guard.reload();
    assert.deepEqual(closed, ['bob: certificate serial aa is revoked']);
    assert.equal(await sample(metrics, 'fedtunnel_revoked_closed_total', { kind: 'connect_tunnel' }), 1);
    assert.deepEqual(lines.at(-1), { ...lines.at(-1), msg: 'revocation list reloaded', entries: 1, closed: 1 });

    fs.writeFileSync(file, 'aa\nbb\nnonsense\n');
    guard.reload();
    assert.deepEqual(closed, ['bob: certificate serial aa is revoked'], 'a failed reload closes nothing');
    assert.equal(lines.at(-1)!.msg, 'revocation list reload failed; keeping the old one');
    assert.equal(lines.at(-1)!.level, 50);
    assert.equal(guard.refuses('connect_tls', 'aa', {}), true, 'the old list stays in force');
    assert.equal(guard.refuses('connect_tls', 'bb', {}), false);
    assert.equal(await sample(metrics, 'fedtunnel_revocation_list_entries'), 1);
  });

  it('a list that does not load stops the start', function () {
    fs.writeFileSync(file, 'zz\n');
    assert.throws(() => new RevocationGuard(file, new ServerMetrics(new AgentRegistry(10)), capturingLogger().log, 1000), RevocationListError);
  });
});
