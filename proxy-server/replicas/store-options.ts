// How a hub opens its --federation-store. A SQLite store wakes its watchers on its own writes only
// (federation/store/sqlite.ts); replicas sharing one SQLite file on one host write it from several
// processes, so each replica also polls the file's log for the others' writes. Without that, a
// replica's watches (kubectl watch, the type registry, /clusters/<name>/'s directory, the status
// page) never saw what was written through another replica. MySQL always polls.
import type { OpenStoreOptions } from '../../federation/store/open.js';
import type { ReplicaOptions } from '../options.js';

/** How often a replica reads a shared SQLite file's log for the other replicas' writes. */
export const SHARED_SQLITE_POLL_MS = 50;

export function federationStoreOptions(url: string, replicas: ReplicaOptions | null | undefined): OpenStoreOptions {
  // sqlite::memory: is private to the process: nobody else can write it.
  const sharedFile = url.startsWith('sqlite://') && Boolean(replicas);
  return sharedFile ? { sqlite: { pollIntervalMs: SHARED_SQLITE_POLL_MS } } : {};
}
