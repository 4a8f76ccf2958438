// Child process of the MySQL two-process test: a second Store on the same tables. It watches the
// keys from the given revision and runs the shared update workload on them, printing JSON lines:
// {"event": {...}} for each watch event and {"acked": [...]} once its writes are done. It exits
// after it has seen `expectedEvents` events.
import { openStore } from '../../../../federation/store/open.js';
import { runConcurrentUpdates, WatchRecorder } from '../workload.js';

const [url, tablePrefix, fromRevision, keyList, workers, updatesPerWorker, expectedEvents] = process.argv.slice(2);
const store = await openStore(url!, { mysql: { tablePrefix } });
const keys = keyList!.split(',');
const watcher = new WatchRecorder(store, '/peer/', Number(fromRevision));
const acked = await runConcurrentUpdates([store], keys, Number(workers), Number(updatesPerWorker));
process.stdout.write(`${JSON.stringify({ acked })}\n`);
for (const event of await watcher.waitFor(Number(expectedEvents))) {
  process.stdout.write(`${JSON.stringify({ event: { revision: event.revision, key: event.kv.key, value: event.kv.value.toString() } })}\n`);
}
watcher.cancel();
await store.close();
