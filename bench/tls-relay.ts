// One half of the tls_relay baseline: a one-to-one relay with a TLS hop and no
// multiplexing, i.e. what a tunnel costs without any tunnel protocol.
//
//   node tls-relay.js entry --forward-port <exit relay port> --ca <cert.pem>
//       plain TCP listener; each connection gets its own TLS connection to the exit relay
//   node tls-relay.js exit --target-host <host> --target-port <port> --cert <cert.pem> --key <key.pem>
//       TLS listener; each connection gets its own TCP connection to the target
//
// Listens on 127.0.0.1 port 0 and prints {"port": N} as one line on stdout once listening.
// Exits when stdin closes, so that it never outlives the benchmark that started it.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { parseArgs } from 'node:util';

const LOOPBACK = '127.0.0.1';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    'forward-port': { type: 'string' },
    ca: { type: 'string' },
    'target-host': { type: 'string', default: LOOPBACK },
    'target-port': { type: 'string' },
    cert: { type: 'string' },
    key: { type: 'string' },
  },
});

function required(name: keyof typeof values): string {
  const value = values[name];
  if (typeof value !== 'string') throw new Error(`--${name} is required`);
  return value;
}

/** Pipes both ways; an end in one direction is passed on as an end, leaving the other direction open. */
function relay(downstream: net.Socket, upstream: net.Socket): void {
  downstream.setNoDelay(true);
  upstream.setNoDelay(true);
  downstream.pipe(upstream);
  upstream.pipe(downstream);
  const destroyBoth = () => {
    downstream.destroy();
    upstream.destroy();
  };
  downstream.on('error', destroyBoth);
  upstream.on('error', destroyBoth);
}

function startEntry(): net.Server {
  const forwardPort = Number(required('forward-port'));
  const ca = readFileSync(required('ca'));
  // tls.connect honours allowHalfOpen although @types/node does not declare it; a
  // variable rather than a literal avoids the excess-property check.
  const upstreamOptions = { host: LOOPBACK, port: forwardPort, ca, servername: 'localhost', allowHalfOpen: true };
  return net.createServer({ allowHalfOpen: true }, (client) => {
    relay(client, tls.connect(upstreamOptions));
  });
}

function startExit(): net.Server {
  const target = { host: required('target-host'), port: Number(required('target-port')) };
  const server = tls.createServer({ cert: readFileSync(required('cert')), key: readFileSync(required('key')), allowHalfOpen: true });
  server.on('secureConnection', (client) => {
    relay(client, net.connect({ ...target, allowHalfOpen: true }));
  });
  return server;
}

const role = positionals[0];
const server = role === 'entry' ? startEntry() : role === 'exit' ? startExit() : undefined;
if (!server) {
  process.stderr.write('usage: tls-relay.js entry|exit [options]\n');
  process.exit(2);
}
server.listen(0, LOOPBACK, () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as net.AddressInfo).port })}\n`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
