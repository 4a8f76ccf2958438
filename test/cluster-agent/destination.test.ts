import { strict as assert } from 'node:assert';
import { dialErrorFromSocketError } from '../../cluster-agent/destination.js';
import { DialError } from '../../wire/errors.js';

function errno(code: string | undefined, message = 'boom'): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(message);
  if (code !== undefined) error.code = code;
  return error;
}

describe('cluster-agent: dialErrorFromSocketError', function () {
  const cases: Array<[string, string, number]> = [
    ['ENOTFOUND', 'NAME_NOT_RESOLVED', 502],
    ['EAI_AGAIN', 'NAME_NOT_RESOLVED', 502],
    ['EAI_NONAME', 'NAME_NOT_RESOLVED', 502],
    ['EAI_NODATA', 'NAME_NOT_RESOLVED', 502],
    ['ECONNREFUSED', 'CONNECTION_REFUSED', 502],
    ['EHOSTUNREACH', 'HOST_UNREACHABLE', 502],
    ['ENETUNREACH', 'HOST_UNREACHABLE', 502],
    ['EADDRNOTAVAIL', 'HOST_UNREACHABLE', 502],
    ['ETIMEDOUT', 'DIAL_TIMEOUT', 504],
    ['ECONNRESET', 'DIAL_FAILED', 502],
    ['EPIPE', 'DIAL_FAILED', 502],
  ];
  for (const [code, expected, status] of cases) {
    it(`maps ${code} to ${expected}`, function () {
      const error = dialErrorFromSocketError(errno(code), 'db.default.svc:5432');
      assert.ok(error instanceof DialError);
      assert.equal(error.code, expected);
      assert.equal(error.httpStatus, status);
      assert.ok(error.message.includes('db.default.svc:5432'), error.message);
    });
  }

  it('names the errno code in the message where it helps', function () {
    assert.match(dialErrorFromSocketError(errno('EAI_AGAIN'), 'x:1').message, /cannot resolve x:1: EAI_AGAIN/);
    assert.match(dialErrorFromSocketError(errno('ENETUNREACH'), 'x:1').message, /x:1 unreachable: ENETUNREACH/);
    assert.match(dialErrorFromSocketError(errno('ECONNRESET'), 'x:1').message, /x:1 failed: ECONNRESET/);
  });

  it('falls back to the error message when there is no code', function () {
    const error = dialErrorFromSocketError(errno(undefined, 'something odd'), 'x:1');
    assert.equal(error.code, 'DIAL_FAILED');
    assert.match(error.message, /something odd/);
  });
});
