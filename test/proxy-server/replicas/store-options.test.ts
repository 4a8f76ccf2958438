// Which hubs poll their federation store for other processes' writes: replicas on a shared
// SQLite file do; a single hub's SQLite file and sqlite::memory: have no other writer.
import { strict as assert } from 'node:assert';
import { SHARED_SQLITE_POLL_MS, federationStoreOptions } from '../../../proxy-server/replicas/store-options.js';

const replicas = { advertiseAgentAddress: { host: '127.0.0.1', port: 0 }, heartbeatMs: 2000, ttlMs: 6000 };

describe('proxy-server/replicas: federation store options', function () {
  it('a replica on a SQLite file polls it for the other replicas\' writes', function () {
    assert.deepEqual(federationStoreOptions('sqlite:///var/lib/fedtunnel/federation.db', replicas), { sqlite: { pollIntervalMs: SHARED_SQLITE_POLL_MS } });
  });

  it('a single hub on a SQLite file, an in-memory store and MySQL get the backend defaults', function () {
    assert.deepEqual(federationStoreOptions('sqlite:///var/lib/fedtunnel/federation.db', null), {});
    assert.deepEqual(federationStoreOptions('sqlite:///var/lib/fedtunnel/federation.db', undefined), {});
    assert.deepEqual(federationStoreOptions('sqlite::memory:', replicas), {});
    assert.deepEqual(federationStoreOptions('mysql://root@127.0.0.1:3306/fed', replicas), {});
  });
});
