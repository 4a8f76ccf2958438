// Binding a TCP server and closing it, shared by every binary's listeners.
import type net from 'node:net';

/** Listens on host:port (0: any free port) and resolves with the bound port; a bind error rejects. */
export function listenTcp(server: net.Server, host: string, port: number, backlog?: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, ...(backlog === undefined ? {} : { backlog }) }, () => {
      server.off('error', reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

/** Stops accepting and closes every connection, idle or not (watches, keep-alive): resolves once closed. */
export function closeServer(server: net.Server & { closeAllConnections(): void }): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
