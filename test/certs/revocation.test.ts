import { strict as assert } from 'node:assert';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { issueAgentCert, createCA } from '../../certs/pki.js';
import {
  RevocationList,
  RevocationListError,
  formatRevocationEntry,
  loadRevocationFile,
  normalizeSerial,
  parseRevocationList,
} from '../../certs/revocation.js';

function parseError(text: string): RevocationListError {
  try {
    parseRevocationList(text);
  } catch (error) {
    assert.ok(error instanceof RevocationListError, String(error));
    return error;
  }
  assert.fail('expected a RevocationListError');
}

describe('certs: revocation deny-list', function () {
  it('normalizes serials: case, colons and leading zeros do not matter', function () {
    assert.equal(normalizeSerial('4A:3F:00'), '4a3f00');
    assert.equal(normalizeSerial('004a3f00'), '4a3f00');
    assert.equal(normalizeSerial('00'), '0');
    assert.equal(normalizeSerial('f'.repeat(40)), 'f'.repeat(40));
    for (const bad of ['', 'xyz', '4a-3f', ':4a', '4a:', '4a::3f', '0x4a', 'f'.repeat(41), '4a 3f']) {
      assert.equal(normalizeSerial(bad), null, bad);
    }
  });

  it('parses serials with notes, comments and blank lines', function () {
    const entries = parseRevocationList(
      ['# revoked agents', '', '4A:3F:01  2026-12-01 agent east: key leaked', '  00ff # trailing comment', '\t', 'ab\r', 'cd#x'].join('\n'),
    );
    assert.deepEqual(entries, [
      { serial: '4a3f01', note: '2026-12-01 agent east: key leaked', line: 3 },
      { serial: 'ff', note: '', line: 4 },
      { serial: 'ab', note: '', line: 6 },
      { serial: 'cd', note: '', line: 7 },
    ]);
  });

  it('names the line of a bad entry in a typed error', function () {
    const error = parseError('4a3f\n# fine\nnot-a-serial 2026-12-01\n');
    assert.equal(error.code, 'BAD_REVOCATION_LIST');
    assert.equal(error.line, 3);
    assert.match(error.message, /^line 3: "not-a-serial" is not a serial number/);
    assert.equal(parseError('f'.repeat(41)).line, 1);
  });

  it('RevocationList matches Node\'s rendering of a peer certificate serial', function () {
    const ca = createCA();
    const agent = new X509Certificate(issueAgentCert(ca, { cluster: 'east', tenant: 'retail' }).certPem);
    const list = RevocationList.parse(`${agent.serialNumber.toLowerCase().match(/../g)!.join(':')} leaked\n`);
    assert.equal(list.isRevoked(agent.serialNumber), true);
    assert.equal(list.isRevoked(`00${agent.serialNumber}`), true);
    assert.equal(list.isRevoked('01'), false);
    assert.equal(list.isRevoked(undefined), false);
    assert.equal(list.entry(agent.serialNumber)?.note, 'leaked');
    assert.equal(list.size, 1);
  });

  it('formatting then parsing round-trips (property)', function () {
    const serialText = fc
      .uint8Array({ minLength: 1, maxLength: 20 })
      .chain((bytes) => fc.record({ bytes: fc.constant(bytes), colons: fc.boolean(), upper: fc.boolean() }))
      .map(({ bytes, colons, upper }) => {
        const hex = Buffer.from(bytes).toString('hex');
        const spelled = colons ? hex.match(/../g)!.join(':') : hex;
        return upper ? spelled.toUpperCase() : spelled;
      });
    const note = fc.string({ maxLength: 60 }).filter((text) => !/[#\u0000-\u001f\u007f]/.test(text));
    fc.assert(
      fc.property(fc.array(fc.record({ serial: serialText, note }), { maxLength: 20 }), (items) => {
        const text = items.map(({ serial, note: n }) => formatRevocationEntry(serial, n)).join('\n') + '\n';
        const parsed = parseRevocationList(text);
        assert.deepEqual(
          parsed.map(({ serial, note: n }) => ({ serial, note: n })),
          items.map(({ serial, note: n }) => ({ serial: normalizeSerial(serial), note: n.trim() })),
        );
        const list = new RevocationList(parsed);
        for (const item of items) assert.ok(list.isRevoked(item.serial));
      }),
      { seed: 20261202, numRuns: 500 },
    );
  });

  it('refuses to format a note that would not read back', function () {
    assert.throws(() => formatRevocationEntry('4a', 'a # b'), RevocationListError);
    assert.throws(() => formatRevocationEntry('4a', 'a\nb'), RevocationListError);
    assert.throws(() => formatRevocationEntry('nope'), RevocationListError);
  });

  it('loadRevocationFile names the file, the line, and what to do about a missing file', function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'revocation-'));
    try {
      const file = path.join(dir, 'revoked.txt');
      assert.throws(() => loadRevocationFile(file), (error: RevocationListError) => error.message.includes(file) && /ENOENT.*create an empty file/.test(error.message));
      fs.writeFileSync(file, '4a\nzz\n');
      assert.throws(() => loadRevocationFile(file), (error: RevocationListError) => error.line === 2 && error.message.startsWith(`revocation list ${file} line 2:`));
      fs.writeFileSync(file, '4a\n');
      assert.equal(loadRevocationFile(file).isRevoked('4A'), true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
