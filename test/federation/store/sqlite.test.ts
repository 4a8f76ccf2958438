// The Store contract on SQLite, plus what only a file database has to prove: acknowledged writes
// survive kill -9 of the writing process, and a second process's writes reach a polling store.
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { openStore } from '../../../federation/store/open.js';
import { assertNoLeakedResources, resourceBaseline } from '../../support/leaks.js';
import { DIST, scratchDir } from '../../support/paths.js';
import { describeStore, type StoreFixture } from './suite.js';
import { sha256, text, verifyCheckedValue, WatchRecorder } from './workload.js';

function databasePath(): string {
  return path.join(scratchDir('store'), `sqlite-${randomBytes(6).toString('hex')}.db`);
}

function removeDatabase(file: string): void {
  for (const suffix of ['', '-wal', '-shm']) fs.rmSync(file + suffix, { force: true });
}

function sqliteFixture(): StoreFixture {
  const file = databasePath();
  return {
    open: (tuning) => openStore(`sqlite://${file}`, { sqlite: tuning }),
    async logRows() {
      const db = new Database(file, { readonly: true });
      try {
        return (db.prepare('SELECT COUNT(*) AS n FROM log').get() as { n: number }).n;
      } finally {
        db.close();
      }
    },
    async destroy() {
      removeDatabase(file);
    },
  };
}

describe('federation store: SQLite', function () {
  describeStore('Store contract', async () => sqliteFixture());

  describe('processes sharing a file', function () {
    let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
    const files: string[] = [];
    before(async () => {
      baseline = await resourceBaseline();
    });
    after(async () => {
      for (const file of files) removeDatabase(file);
      await assertNoLeakedResources(baseline);
    });

    it('keeps every acknowledged write, untorn, when the writing process is killed with SIGKILL', async function () {
      const file = databasePath();
      files.push(file);
      const child = spawn(process.execPath, [path.join(DIST, 'test/federation/store/children/sqlite-burst-writer.js'), file], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = once(child, 'exit');
      const acked: { revision: number; key: string; digest: string }[] = [];
      const killAfter = 400 + Math.floor(Math.random() * 200);
      for await (const line of readline.createInterface({ input: child.stdout })) {
        const match = /^(\d+) (\S+) ([0-9a-f]{64})$/.exec(line);
        assert.ok(match, `unexpected child output ${JSON.stringify(line)}`);
        acked.push({ revision: Number(match[1]), key: match[2]!, digest: match[3]! });
        if (acked.length === killAfter) child.kill('SIGKILL');
      }
      const [code, signal] = await exited;
      assert.equal(signal, 'SIGKILL', `child exited with ${code}: ${stderr}`);
      assert.ok(acked.length >= killAfter);

      const store = await openStore(`sqlite://${file}`);
      try {
        for (const { revision, key, digest } of acked) {
          const kv = await store.get(key, { revision });
          assert.ok(kv, `acknowledged revision ${revision} of ${key} is missing`);
          assert.equal(kv.modRevision, revision);
          assert.equal(sha256(kv.value), digest, `value at revision ${revision}`);
        }
        assert.ok((await store.currentRevision()) >= acked[acked.length - 1]!.revision);
        // Every value in the database is whole, including a write that may have been cut off.
        const latest = await store.list('/burst/');
        assert.equal(latest.items.length, 50);
        for (const kv of latest.items) verifyCheckedValue(kv.value);
      } finally {
        await store.close();
      }
    });

    it('opens an in-memory database from sqlite::memory:', async function () {
      const store = await openStore('sqlite::memory:');
      try {
        const kv = await store.create('/memory/a', text('a'));
        assert.deepEqual(await store.get('/memory/a'), kv);
      } finally {
        await store.close();
      }
    });

    it('a store with a poll interval sees writes made through another instance on the same file', async function () {
      const file = databasePath();
      files.push(file);
      const writer = await openStore(`sqlite://${file}`);
      const reader = await openStore(`sqlite://${file}`, { sqlite: { pollIntervalMs: 20 } });
      try {
        const watcher = new WatchRecorder(reader, '/shared/', 0);
        await writer.create('/shared/a', text('1'));
        await writer.create('/shared/b', text('2'));
        const events = await watcher.waitFor(2);
        assert.deepEqual(
          events.map((e) => e.kv.key),
          ['/shared/a', '/shared/b'],
        );
        watcher.cancel();
      } finally {
        await writer.close();
        await reader.close();
      }
    });
  });
});
