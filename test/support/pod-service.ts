// The process a test pod runs in a member-mode cluster (member mode starts a pod's command as a
// child of the member API server, inside the member's network namespace): a TCP service on
// loopback for kubectl port-forward to reach. Port P echoes every byte back; port P+1 swallows
// everything and answers, once the client half-closes, with the sha256 (hex) of what it read, so
// a large upload is verified without sending it back.
//
//   node pod-service.js <port>      prints "listening <port> <port+1>" once both accept
import { createHash } from 'node:crypto';
import net from 'node:net';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0 || port >= 65535) {
  process.stderr.write('usage: pod-service.js <port>\n');
  process.exit(2);
}

const echo = net.createServer((socket) => {
  socket.on('error', () => socket.destroy());
  socket.pipe(socket);
});
const digest = net.createServer((socket) => {
  const hash = createHash('sha256');
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: Buffer) => hash.update(chunk));
  socket.on('end', () => socket.end(`${hash.digest('hex')}\n`));
});

let listening = 0;
const ready = (): void => {
  if (++listening === 2) process.stdout.write(`listening ${port} ${port + 1}\n`);
};
echo.listen(port, '127.0.0.1', ready);
digest.listen(port + 1, '127.0.0.1', ready);
