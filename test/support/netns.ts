// Network namespaces for member clusters: one namespace per member, joined to the root namespace
// by a veth pair (root side 10.233.<i>.1/30, namespace side 10.233.<i>.2/30, default route via
// the root side). A process listening on 127.0.0.1 inside the namespace is unreachable from the
// root namespace; a process inside can reach the root namespace at 10.233.<i>.1.
//
// Names carry the creating pid (fedt-<pid>-<i>), so a later run can reap what a dead run left.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const NETNS_PREFIX = 'fedt-';
const SUBNET = '10.233';
/** Subnet indexes 1..MAX_INDEX (one /30 in 10.233.<i>.0 each). */
const MAX_INDEX = 250;

export interface MemberNetns {
  /** Namespace name (for `ip netns exec`). */
  name: string;
  /** The root-side veth address: how processes inside reach the root namespace. */
  rootAddress: string;
  /** The namespace-side veth address. */
  nsAddress: string;
  /** Root-side veth interface name. */
  rootLink: string;
  destroy(): Promise<void>;
}

/** Namespaces created by this process and not yet destroyed. */
const created = new Map<string, MemberNetns>();

async function ip(...args: string[]): Promise<string> {
  const { stdout } = await run('ip', args);
  return stdout;
}

/** Subnet indexes whose root-side address is already configured on some interface. */
async function usedIndexes(): Promise<Set<number>> {
  const out = await ip('-o', '-4', 'addr', 'show');
  const used = new Set<number>();
  for (const match of out.matchAll(/inet 10\.233\.(\d+)\.\d+\//g)) used.add(Number(match[1]));
  return used;
}

let sequence = 0;
/** Serialises creation in this process, so two creations cannot pick the same subnet index. */
let creating: Promise<unknown> = Promise.resolve();

/** Creates a namespace with its veth pair and routes. */
export function createMemberNetns(): Promise<MemberNetns> {
  const next = creating.then(() => createLocked(), () => createLocked());
  creating = next.catch(() => undefined);
  return next;
}

async function createLocked(): Promise<MemberNetns> {
  const used = await usedIndexes();
  let index = 0;
  for (let i = 1; i <= MAX_INDEX; i++) {
    if (!used.has(i)) {
      index = i;
      break;
    }
  }
  if (index === 0) throw new Error(`no free ${SUBNET}.<i>.0/30 subnet for a member namespace`);
  const seq = ++sequence;
  const name = `${NETNS_PREFIX}${process.pid}-${seq}`;
  // Interface names are at most 15 characters.
  const rootLink = `fv${process.pid}r${seq}`;
  const nsLink = `fv${process.pid}n${seq}`;
  const rootAddress = `${SUBNET}.${index}.1`;
  const nsAddress = `${SUBNET}.${index}.2`;
  const netns: MemberNetns = {
    name,
    rootAddress,
    nsAddress,
    rootLink,
    destroy: async () => {
      created.delete(name);
      await deleteNetns(name, rootLink);
      await dropBlackhole(nsAddress);
    },
  };
  created.set(name, netns);
  try {
    // A partition a killed run left in place would cut this namespace off from the start.
    await dropBlackhole(nsAddress);
    await ip('netns', 'add', name);
    await ip('link', 'add', rootLink, 'type', 'veth', 'peer', 'name', nsLink);
    await ip('link', 'set', nsLink, 'netns', name);
    await ip('addr', 'add', `${rootAddress}/30`, 'dev', rootLink);
    await ip('link', 'set', rootLink, 'up');
    await ip('-n', name, 'link', 'set', 'lo', 'up');
    await ip('-n', name, 'addr', 'add', `${nsAddress}/30`, 'dev', nsLink);
    await ip('-n', name, 'link', 'set', nsLink, 'up');
    await ip('-n', name, 'route', 'add', 'default', 'via', rootAddress);
  } catch (error) {
    await netns.destroy();
    throw error;
  }
  return netns;
}

/** Removes a root-namespace blackhole route of a partition (none is fine). */
async function dropBlackhole(address: string): Promise<void> {
  await ip('route', 'del', 'blackhole', `${address}/32`).catch(() => undefined);
}

export type PartitionKind = 'link-down' | 'drop-to-member' | 'drop-from-member';

/**
 * Cuts the namespace off without telling either side (no RST, no ICMP): 'link-down' sets the
 * root-side veth down (both directions); 'drop-to-member' and 'drop-from-member' add a blackhole
 * route for the peer's address on one side only, so packets flow one way. Resolves with the heal.
 * (nftables would do the one-way drops too; it is not installed here, routes need only iproute2.)
 */
export async function partition(netns: MemberNetns, kind: PartitionKind): Promise<() => Promise<void>> {
  switch (kind) {
    case 'link-down':
      await ip('link', 'set', netns.rootLink, 'down');
      return async () => {
        await ip('link', 'set', netns.rootLink, 'up');
      };
    case 'drop-to-member':
      await ip('route', 'add', 'blackhole', `${netns.nsAddress}/32`);
      return () => dropBlackhole(netns.nsAddress);
    case 'drop-from-member':
      await ip('-n', netns.name, 'route', 'add', 'blackhole', `${netns.rootAddress}/32`);
      return async () => {
        await ip('-n', netns.name, 'route', 'del', 'blackhole', `${netns.rootAddress}/32`);
      };
  }
}

/** Deletes a namespace and the root end of its veth pair (either end takes the pair with it); absent ones are fine. */
async function deleteNetns(name: string, rootLink: string | null): Promise<void> {
  if (rootLink) await ip('link', 'del', rootLink).catch(() => undefined);
  await ip('netns', 'del', name).catch(() => undefined);
}

async function killProcessesIn(name: string): Promise<void> {
  const pids = await ip('netns', 'pids', name).catch(() => '');
  for (const text of pids.split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(text), 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Deletes every namespace this process created and still has, and those of the same prefix left
 * by processes that no longer exist (with their root-side veth). Kill the processes inside first.
 */
export async function reapNamespaces(): Promise<void> {
  for (const netns of [...created.values()]) await netns.destroy();
  let listing = '';
  try {
    listing = await ip('netns', 'list');
  } catch {
    return; // no iproute2 or no permission: nothing of ours can exist
  }
  for (const line of listing.split('\n')) {
    const match = new RegExp(`^(${NETNS_PREFIX}(\\d+)-(\\d+))\\b`).exec(line.trim());
    if (!match) continue;
    const pid = Number(match[2]);
    if (pid !== process.pid && alive(pid)) continue;
    // Processes a dead run left inside would keep the namespace (and their ports) alive.
    if (pid !== process.pid) await killProcessesIn(match[1]!);
    await deleteNetns(match[1]!, `fv${pid}r${match[3]}`);
  }
}
