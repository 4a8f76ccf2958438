// What a process holds open, by libuv handle kind (TCPSocketWrap, TLSWrap, Timeout, …): the debug
// endpoints of the proxy-server and the cluster-agent report it so a test can see sockets a child
// process leaked, which the test process's own handle counts cannot.
export function activeResourceCounts(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1;
  return counts;
}
