import { strict as assert } from 'node:assert';
import { errorFromFailure, errorFromResponse, MemberError } from '../../../federation/controller/member-errors.js';

describe('controller: member errors', function () {
  it('maps a member Status to a stable code, keeping its message and HTTP status', function () {
    const e = errorFromResponse(409, JSON.stringify({ kind: 'Status', reason: 'AlreadyExists', message: 'configmaps "x" already exists' }));
    assert.equal(e.code, 'AlreadyExists');
    assert.equal(e.status, 409);
    assert.match(e.message, /already exists/);
    assert.equal(errorFromResponse(409, { reason: 'Conflict' }).code, 'Conflict');
    assert.equal(errorFromResponse(422, '{}').code, 'Invalid');
    assert.equal(errorFromResponse(503, 'not json at all').code, 'ServerError');
    assert.match(errorFromResponse(500, 'boom').message, /500: boom/);
  });

  it('maps failures without an answer: our deadline, the tunnel, TLS', function () {
    assert.equal(errorFromFailure(Object.assign(new Error('aborted'), { name: 'AbortError' })).code, 'Timeout');
    assert.equal(errorFromFailure(Object.assign(new Error('x'), { code: 'Unreachable' })).code, 'Unreachable');
    assert.equal(errorFromFailure(Object.assign(new Error('x'), { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' })).code, 'TLSError');
    assert.equal(errorFromFailure(Object.assign(new Error('x'), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' })).code, 'TLSError');
    assert.equal(errorFromFailure(new Error('other')).code, 'Error');
    const own = new MemberError('Gone', 'expired');
    assert.equal(errorFromFailure(own), own);
  });
});
