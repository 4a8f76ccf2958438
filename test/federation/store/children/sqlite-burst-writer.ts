// Child process of the SQLite kill -9 test: writes to the store as fast as it can until killed,
// printing "<revision> <key> <sha256 of value>" for each write only after the store acknowledged
// it (stdout to a pipe is synchronous on Linux, so a printed line means a returned write).
import { openStore } from '../../../../federation/store/open.js';
import { checkedValue, sha256 } from '../workload.js';

const [path] = process.argv.slice(2);
const store = await openStore(`sqlite://${path}`);
const KEYS = 50;
const modRevisions = new Map<string, number>();
for (let seq = 0; ; seq++) {
  const key = `/burst/k${seq % KEYS}`;
  const value = checkedValue(seq);
  const previous = modRevisions.get(key);
  const kv = previous === undefined ? await store.create(key, value) : await store.update(key, value, previous);
  modRevisions.set(key, kv.modRevision);
  process.stdout.write(`${kv.modRevision} ${key} ${sha256(value)}\n`);
}
