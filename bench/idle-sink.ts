// Destination for the idle-stream memory test, in a process of its own so that its sockets count
// against neither the proxy-server nor the agent: accepts connections on 127.0.0.1 and holds
// them open without a byte either way.
//
// Prints {"port": N} as one line on stdout once listening; exits when stdin closes, so it never
// outlives the benchmark that started it.
import net from 'node:net';

const sockets = new Set<net.Socket>();
const server = net.createServer((socket) => {
  sockets.add(socket);
  socket.on('error', () => {}); // the agent resets these when the streams close
  socket.once('close', () => sockets.delete(socket));
});
server.maxConnections = 100_000;
server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as net.AddressInfo).port })}\n`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
