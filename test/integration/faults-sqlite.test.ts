// Fault: the SQLite file of a federation API server on a disk that fills up, and on a read-only
// file system. The file lives on a small tmpfs of its own (test/support/tmpfs.ts; needs root, and
// as root chmod 0444 would not stop a write, so read-only is a read-only mount). Checked: writes
// on the full disk fail with a 507 InsufficientStorage Status, reads keep working, the API server
// keeps running, nothing acknowledged is lost, PRAGMA integrity_check is ok afterwards, and writes
// resume when space returns; on the read-only file the server refuses to start, naming why.
import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { spawnNode } from '../../common/spawn.js';
import { testPki } from '../support/pki.js';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';
import { scratchDir } from '../support/paths.js';
import { fillFileSystem, mountTmpfsOrSkip, remount, unmount } from '../support/tmpfs.js';
import { reportFault } from '../support/fault-report.js';
import { APISERVER_BIN, openWatch, request, startApiServer, type ApiServerProcess } from '../federation/apiserver/harness.js';

const CM = '/api/v1/namespaces/default/configmaps';
const JSON_TYPE = 'application/json';
const TMPFS_BYTES = 2 * 1024 * 1024;
/** A refused write must be answered within this (SQLite fails at once; this only catches a hang). */
const FAILURE_BOUND_MS = 10_000;

const dataFor = (name: string): Record<string, string> => ({ name, blob: `${name}:`.repeat(512).slice(0, 4000) });

function integrityCheck(file: string): string {
  const db = new Database(file, { readonly: true });
  try {
    return (db.pragma('integrity_check', { simple: true }) as string);
  } finally {
    db.close();
  }
}

describe('faults: SQLite on a full disk and on a read-only file system', function () {
  this.timeout(120_000);
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let dir = '';
  let mnt = '';
  let db = '';
  let server: ApiServerProcess | null = null;
  const acked = new Map<string, Record<string, string>>();

  const create = async (name: string) => {
    const started = Date.now();
    const r = await request(server!, 'POST', CM, { body: JSON.stringify({ metadata: { name }, data: dataFor(name) }), contentType: JSON_TYPE, timeoutMs: FAILURE_BOUND_MS });
    if (r.status === 201) acked.set(name, dataFor(name));
    return { ...r, ms: Date.now() - started };
  };

  /** Every acknowledged object is listed with its content, and each can be read by name. */
  const assertAllReadable = async (): Promise<void> => {
    const list = await request(server!, 'GET', CM, { timeoutMs: FAILURE_BOUND_MS });
    assert.equal(list.status, 200, list.body);
    const stored = new Map<string, Record<string, string>>(list.json().items.map((o: { metadata: { name: string }; data: Record<string, string> }) => [o.metadata.name, o.data]));
    for (const [name, data] of acked) assert.deepEqual(stored.get(name), data, `acknowledged ${name} lost or changed`);
    const one = await request(server!, 'GET', `${CM}/${[...acked.keys()][0]}`, { timeoutMs: FAILURE_BOUND_MS });
    assert.equal(one.status, 200, one.body);
  };

  before(async function () {
    baseline = await resourceBaseline();
    dir = scratchDir(`faults-sqlite-${process.pid}`);
    mnt = await mountTmpfsOrSkip(this, dir, TMPFS_BYTES, 'the SQLite fault suite');
    db = path.join(mnt, 'federation.db');
    server = await startApiServer('faults-sqlite', [], `sqlite://${db}`);
  });

  after(async function () {
    await server?.kill();
    if (mnt) await unmount(mnt);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    await assertNoLeakedResources(baseline);
  });

  it('full disk: writes fail with 507 InsufficientStorage, reads and the watch keep working, writes resume when space returns, integrity ok', async function () {
    for (let i = 0; i < 10; i++) assert.equal((await create(`before-${i}`)).status, 201);
    const listed = await request(server!, 'GET', CM);
    const watch = await openWatch(server!, `${CM}?watch=true&resourceVersion=${listed.json().metadata.resourceVersion}`);
    try {
      const filler = path.join(mnt, 'filler');
      fillFileSystem(filler);
      const filledAt = Date.now();
      // Free pages inside the database and its WAL may take a few more writes; then refusals.
      let first: Awaited<ReturnType<typeof create>> | null = null;
      for (let i = 0; i < 200 && !first; i++) {
        const r = await create(`full-${i}`);
        if (r.status !== 201) first = r;
      }
      assert.ok(first, 'the disk never filled up');
      const typedFailureMs = Date.now() - filledAt;
      assert.equal(first.status, 507, first.body);
      assert.equal(first.json().reason, 'InsufficientStorage');
      assert.match(first.json().message, /storage is full/);
      // Every further write is refused the same way: creates and updates.
      const name = [...acked.keys()][0]!;
      const current = await request(server!, 'GET', `${CM}/${name}`);
      for (let i = 0; i < 5; i++) {
        const r = await create(`refused-${i}`);
        assert.equal(r.status, 507, r.body);
        assert.ok(r.ms < FAILURE_BOUND_MS);
        const u = await request(server!, 'PUT', `${CM}/${name}`, { body: JSON.stringify({ ...current.json(), data: { changed: 'yes' } }), contentType: JSON_TYPE, timeoutMs: FAILURE_BOUND_MS });
        assert.equal(u.status, 507, u.body);
      }
      await assertAllReadable();
      assert.ok(server!.running);
      assert.ok(server!.lines.some((l) => l.msg === 'request failed: storage' && l.storeError === 'NO_SPACE' && l.level === 40), 'no warn line names the full disk');

      fs.rmSync(filler);
      const freedAt = Date.now();
      const again = await create('after-0');
      assert.equal(again.status, 201, again.body);
      const recoveryMs = Date.now() - freedAt;
      for (let i = 1; i < 5; i++) assert.equal((await create(`after-${i}`)).status, 201);

      // The watch saw every acknowledged create once, in order, and nothing refused.
      const createdSince = [...acked.keys()].filter((n) => !n.startsWith('before-'));
      await watch.waitFor(createdSince.length);
      assert.deepEqual(watch.events.map((e) => `${e.type} ${e.object.metadata.name}`), createdSince.map((n) => `ADDED ${n}`));
      await assertAllReadable();

      await server!.kill('SIGTERM');
      server = null;
      assert.equal(integrityCheck(db), 'ok');
      server = await startApiServer('faults-sqlite-again', [], `sqlite://${db}`);
      await assertAllReadable();
      reportFault({ fault: 'SQLite disk full (2 MiB tmpfs)', typedFailureMs, recoveryMs, lost: 0, notes: `${acked.size} acknowledged, first refusal 507 InsufficientStorage, integrity_check ok` });
    } finally {
      watch.stop();
      await watch.ended;
    }
  });

  it('read-only file system: a start on it exits 1 naming the cause, nothing changes; writable again: writes resume', async function () {
    await assertAllReadable();
    // A mount with files open for writing cannot turn read-only (EBUSY): the server stops first,
    // as it would for the restart that meets a read-only volume.
    await server!.kill('SIGTERM');
    server = null;
    await remount(mnt, 'ro');
    let remounted = false;
    try {
      const pki = testPki();
      const startedAt = Date.now();
      const failed = spawnNode('apiserver-ro', APISERVER_BIN, ['--listen', '127.0.0.1:0', '--store', `sqlite://${db}`, '--ca', pki.ca.cert, '--cert', pki.server.cert, '--key', pki.server.key, '--member']);
      const exit = await failed.exited;
      const typedFailureMs = Date.now() - startedAt;
      assert.equal(exit.code, 1, failed.stderr);
      const fatal = failed.lines.find((l) => l.msg === 'apiserver failed to start');
      assert.ok(fatal, JSON.stringify(failed.lines));
      assert.match(String(fatal.err), /read-only file system/);
      assert.ok(!failed.lines.some((l) => l.msg === 'apiserver ready'));

      await remount(mnt, 'rw');
      remounted = true;
      const rwAt = Date.now();
      server = await startApiServer('faults-sqlite-rw', [], `sqlite://${db}`);
      const w = await create('writable-again');
      assert.equal(w.status, 201, w.body);
      await assertAllReadable();
      reportFault({ fault: 'SQLite read-only file system (start)', typedFailureMs, recoveryMs: Date.now() - rwAt, lost: 0, notes: `start exits 1: ${String(fatal.err)}; recovery = start on the writable file + first write` });
    } finally {
      if (!remounted) await remount(mnt, 'rw').catch(() => undefined);
    }
    await server!.kill('SIGTERM');
    server = null;
    assert.equal(integrityCheck(db), 'ok');
  });
});
