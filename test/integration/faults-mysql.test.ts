// Fault: the MySQL server under a federation API server is killed -9 in the middle of a write
// load and restarted on the same data directory. A private mariadbd (test/support/private-mariadb.ts)
// takes the kill, never the machine's shared one. Checked: while it is down every request ends
// within a bound with a 503 ServiceUnavailable Status and the API server keeps running; writes
// resume after the restart; every acknowledged write is there afterwards with its content; an open
// watch ends with an ERROR event (a Status), and a watch resumed from the last resourceVersion it
// delivered continues without gap or duplicate.
import { strict as assert } from 'node:assert';
import { EventEmitter } from 'node:events';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';
import { PrivateMariadb, privateMariadbUnavailable } from '../support/private-mariadb.js';
import { openWatch, request, startApiServer, type ApiServerProcess, type HttpResult } from '../federation/apiserver/harness.js';
import { reportFault } from '../support/fault-report.js';

const CM = '/api/v1/namespaces/default/configmaps';
const JSON_TYPE = 'application/json';
/** A request while the database is down must end (with a Status) within this; mysql2's connect timeout is 10 s. */
const FAILURE_BOUND_MS = 15_000;
const WRITERS = 3;

interface Ack {
  name: string;
  rv: number;
  data: Record<string, string>;
  at: number;
}

interface WatchEvent {
  type: string;
  object: { kind?: string; code?: number; reason?: string; metadata: { name: string; resourceVersion: string }; data?: Record<string, string> };
}

describe('faults: MySQL restarted mid-write', function () {
  this.timeout(180_000);
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let db: PrivateMariadb | null = null;
  let server: ApiServerProcess | null = null;

  before(async function () {
    baseline = await resourceBaseline();
    const missing = privateMariadbUnavailable();
    if (missing) {
      if (process.env.CI) throw new Error(`the MySQL fault test needs a private mariadbd: ${missing}`);
      console.log(`      skipping: ${missing}`);
      this.skip();
    }
    db = await PrivateMariadb.create('restart');
    server = await startApiServer('faults-mysql', [], db.url);
  });

  after(async function () {
    await server?.kill();
    await db?.destroy();
    await assertNoLeakedResources(baseline);
  });

  it('fails writes with 503 while down, resumes after the restart, loses no acknowledged write and the watch resumes without gaps', async function () {
    const api = server!;
    const mariadb = db!;
    const acked: Ack[] = [];
    const failures: Array<{ at: number; status: number; reason: string; ms: number }> = [];
    const progress = new EventEmitter();
    let stopping = false;
    let writerError: unknown = null;
    const until = (done: () => boolean, what: string, boundMs: number): Promise<void> =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          if (writerError) {
            cleanup();
            reject(writerError);
            return;
          }
          if (!done()) return;
          cleanup();
          resolve();
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`${what}: not within ${boundMs} ms (acked ${acked.length}, failures ${failures.length})`));
        }, boundMs);
        const cleanup = (): void => {
          clearTimeout(timer);
          progress.off('progress', check);
        };
        progress.on('progress', check);
        check();
      });

    /** One request; an answer other than 2xx (or a GET's 404) is recorded as a failure, which must be a 503 Status that came within the bound. */
    const attempt = async (method: string, path: string, body?: unknown): Promise<HttpResult | null> => {
      const started = Date.now();
      const r = await request(api, method, path, { timeoutMs: FAILURE_BOUND_MS, ...(body === undefined ? {} : { body: JSON.stringify(body), contentType: JSON_TYPE }) });
      if (r.status < 300 || (method === 'GET' && r.status === 404)) return r;
      const ms = Date.now() - started;
      const status = r.json() as { kind: string; reason: string; code: number };
      assert.equal(status.kind, 'Status', r.body);
      assert.equal(r.status, 503, `${method} ${path} while the database is down: ${r.body}`);
      assert.equal(status.reason, 'ServiceUnavailable');
      assert.ok(ms < FAILURE_BOUND_MS, `failure took ${ms} ms`);
      failures.push({ at: Date.now(), status: r.status, reason: status.reason, ms });
      progress.emit('progress');
      // Pacing, not synchronisation: a writer facing a dead database retries 20 times a second.
      await new Promise((resolve) => setTimeout(resolve, 50));
      return null;
    };

    // Each writer creates an object, updates it four times, then moves to the next. After a failed
    // write it reads the object again: the write may have committed without its answer arriving.
    const writer = async (i: number): Promise<void> => {
      let current: { metadata: { name: string; resourceVersion: string } } | null = null;
      let known = true; // whether `current` is what the store holds
      for (let j = 0; !stopping; ) {
        const name = `w${i}-${Math.floor(j / 5)}`;
        const data = { writer: String(i), step: String(j), payload: `${name}:${j}:`.repeat(20) };
        if (!known) {
          const r = await attempt('GET', `${CM}/${name}`);
          if (r === null) continue;
          current = r.status === 200 ? r.json() : null;
          known = true;
          if (j % 5 === 0 && current) j++; // the create went through unanswered
          continue;
        }
        const r: HttpResult | null = j % 5 === 0
          ? await attempt('POST', CM, { metadata: { name }, data })
          : await attempt('PUT', `${CM}/${name}`, { ...current!, data });
        if (r === null) {
          known = false;
          continue;
        }
        current = r.json();
        acked.push({ name, rv: Number(current!.metadata.resourceVersion), data, at: Date.now() });
        progress.emit('progress');
        j++;
      }
    };

    const listed = await request(api, 'GET', CM);
    assert.equal(listed.status, 200, listed.body);
    const watch1 = await openWatch(api, `${CM}?watch=true&resourceVersion=${listed.json().metadata.resourceVersion}`);
    assert.equal(watch1.status, 200);

    const writers = Array.from({ length: WRITERS }, (_, i) => writer(i).catch((error: unknown) => {
      stopping = true;
      writerError ??= error;
      progress.emit('progress');
    }));
    try {
      await until(() => acked.length >= 30, 'writes before the kill', 30_000);
      const killedAt = Date.now();
      const ackedBeforeKill = acked.length;
      await mariadb.stop('SIGKILL');
      await until(() => failures.length >= WRITERS, 'typed failures while down', FAILURE_BOUND_MS * 2);
      const firstFailure = failures[0]!.at - killedAt;
      // The open watch ends with an ERROR event carrying a Status: the client must re-watch.
      await watch1.ended;
      const last1 = watch1.events[watch1.events.length - 1]!;
      assert.equal(last1.type, 'ERROR', JSON.stringify(last1));
      assert.equal(last1.object.kind, 'Status');
      assert.equal(last1.object.code, 503);
      const watchEndedAt = Date.now() - killedAt;
      // Reads fail the same way, and the API server is still there.
      const read = await request(api, 'GET', CM, { timeoutMs: FAILURE_BOUND_MS });
      assert.equal(read.status, 503, read.body);
      assert.ok(api.running, 'the API server exited while the database was down');

      const ackedWhileDown = acked.length - ackedBeforeKill;
      const restartAt = Date.now();
      await mariadb.start();
      const upAt = Date.now();
      const ackedAtRestart = acked.length;
      await until(() => acked.length >= ackedAtRestart + 30, 'writes after the restart', 60_000);
      const firstAckAfter = acked[ackedAtRestart]!.at - upAt;
      stopping = true;
      await Promise.all(writers);
      if (writerError) throw writerError;

      // A marker written last tells when the resumed watch has delivered everything.
      const marker = await request(api, 'POST', CM, { body: JSON.stringify({ metadata: { name: 'marker' } }), contentType: JSON_TYPE });
      assert.equal(marker.status, 201, marker.body);
      const delivered1 = watch1.events.filter((e) => e.type !== 'ERROR') as WatchEvent[];
      const resumeFrom = delivered1.length > 0 ? delivered1[delivered1.length - 1]!.object.metadata.resourceVersion : listed.json().metadata.resourceVersion;
      const watch2 = await openWatch(api, `${CM}?watch=true&resourceVersion=${resumeFrom}`);
      try {
        assert.equal(watch2.status, 200);
        while (!watch2.events.some((e) => e.object.metadata?.name === 'marker')) await watch2.waitFor(watch2.events.length + 1, 30_000);
      } finally {
        watch2.stop();
        await watch2.ended;
      }
      const events = [...delivered1, ...(watch2.events as WatchEvent[])];
      assert.ok(events.every((e) => e.type === 'ADDED' || e.type === 'MODIFIED'), JSON.stringify(events.map((e) => e.type)));
      const rvs = events.map((e) => Number(e.object.metadata.resourceVersion));
      for (let k = 1; k < rvs.length; k++) assert.ok(rvs[k]! > rvs[k - 1]!, `watch revisions not strictly increasing at ${k}: ${rvs[k - 1]} then ${rvs[k]}`);
      const byRv = new Map(events.map((e) => [Number(e.object.metadata.resourceVersion), e]));
      for (const a of acked) {
        const e = byRv.get(a.rv);
        assert.ok(e, `acknowledged write ${a.name}@${a.rv} missing from the watch`);
        assert.equal(e.object.metadata.name, a.name);
        assert.deepEqual(e.object.data, a.data, `acknowledged write ${a.name}@${a.rv} has other content in the watch`);
      }

      // The store holds, for every object, the last version the watch delivered; where that is the
      // last acknowledged write, with its content.
      const final = await request(api, 'GET', CM);
      assert.equal(final.status, 200, final.body);
      const stored = new Map<string, WatchEvent['object']>((final.json().items as WatchEvent['object'][]).map((o) => [o.metadata.name, o]));
      const lastEvent = new Map(events.map((e) => [e.object.metadata.name, e.object]));
      let lost = 0;
      for (const a of acked) {
        const o = stored.get(a.name);
        if (!o || Number(o.metadata.resourceVersion) < a.rv) lost++;
      }
      assert.equal(lost, 0, 'acknowledged writes lost');
      for (const [name, o] of lastEvent) assert.deepEqual(stored.get(name), o, `${name}: stored version differs from the last watch event`);
      assert.equal(stored.size, lastEvent.size);

      reportFault({
        fault: 'MySQL kill -9 mid-write, restart',
        typedFailureMs: firstFailure,
        recoveryMs: firstAckAfter,
        lost,
        notes: `acked ${acked.length} (${ackedWhileDown} while down), ${failures.length} failed with 503 ServiceUnavailable (slowest ${Math.max(...failures.map((f) => f.ms))} ms); watch ended with a 503 Status after ${watchEndedAt} ms and resumed from rv ${resumeFrom} gap-free; mariadbd restart ${upAt - restartAt} ms, ${failures.filter((f) => f.at >= upAt).length} failures after it accepted connections`,
      });
    } finally {
      stopping = true;
      await Promise.allSettled(writers);
      watch1.stop();
      await watch1.ended;
    }
  });
});
