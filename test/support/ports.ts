// Loopback ports for tests.
import net from 'node:net';

/**
 * A TCP port on 127.0.0.1 that was free a moment ago: bound to port 0, read back and released.
 * For a child process that must be told its port, or for a port where nothing listens.
 */
export async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}
