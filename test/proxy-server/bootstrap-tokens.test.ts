import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { EnrolmentError, formatTokenRecord, parseToken, tokenRecord } from '../../certs/enrolment.js';
import { BootstrapTokenStore } from '../../proxy-server/bootstrap-tokens.js';

describe('proxy-server: BootstrapTokenStore', function () {
  let dir: string;
  let file: string;
  const token = parseToken('abcdef.0123456789abcdef');
  const log = pino({ level: 'silent' });

  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokens-'));
    file = path.join(dir, 'bootstrap-tokens.txt');
    fs.writeFileSync(file, `${formatTokenRecord(tokenRecord(token, 'east', 'retail', new Date(Date.now() + 60_000)))}\n`);
  });

  afterEach(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a consumed token is recorded in the ledger (0600): refused afterwards, also by a restarted hub', function () {
    const store = new BootstrapTokenStore(file, `${file}.used`, log);
    assert.equal(store.consume(token).cluster, 'east');
    assert.equal(fs.statSync(`${file}.used`).mode & 0o777, 0o600);
    assert.match(fs.readFileSync(`${file}.used`, 'utf8'), /^abcdef \S+ east\n$/);
    assert.throws(() => store.consume(token), (error: unknown) => error instanceof EnrolmentError && error.code === 'TOKEN_USED');
    const restarted = new BootstrapTokenStore(file, `${file}.used`, log);
    assert.throws(() => restarted.consume(token), (error: unknown) => error instanceof EnrolmentError && error.code === 'TOKEN_USED');
  });

  it('a token file that does not load stops the start; on reload it keeps the old tokens', function () {
    const store = new BootstrapTokenStore(file, `${file}.used`, log);
    fs.writeFileSync(file, 'garbage\n');
    store.reload();
    assert.equal(store.size, 1);
    assert.throws(() => new BootstrapTokenStore(file, `${file}.used`, log), /line 1/);
  });

  it('a ledger that cannot be written refuses with INTERNAL, and the token stays spent in memory', function () {
    const store = new BootstrapTokenStore(file, path.join(dir, 'missing-dir', 'used'), log);
    assert.throws(() => store.consume(token), (error: unknown) => error instanceof EnrolmentError && error.code === 'INTERNAL' && error.httpStatus === 500);
    assert.throws(() => store.consume(token), (error: unknown) => error instanceof EnrolmentError && error.code === 'TOKEN_USED');
  });
});
