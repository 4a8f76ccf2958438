// A real HTTP CONNECT forward proxy (Debian's tinyproxy) on loopback, standing in for the
// corporate egress proxy an agent must go through. `npm test` installs it when missing.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { once } from 'node:events';
import { scratchDir } from './paths.js';
import { freePort } from './ports.js';

export interface Tinyproxy {
  port: number;
  /** CONNECT requests the proxy has logged so far. */
  connects: string[];
  stop(): Promise<void>;
}

/** `basicAuth`: the proxy demands these credentials (407 without them). */
export async function startTinyproxy(options: { basicAuth?: { user: string; password: string } } = {}): Promise<Tinyproxy> {
  const port = await freePort();
  const config = path.join(scratchDir('tinyproxy'), `tinyproxy-${port}.conf`);
  // No ConnectPort line: CONNECT to any port is allowed (Debian's default config allows 443 only).
  fs.writeFileSync(config, [`Port ${port}`, 'Listen 127.0.0.1', 'Allow 127.0.0.1', 'Timeout 600', 'MaxClients 200', 'LogLevel Connect', ...(options.basicAuth ? [`BasicAuth ${options.basicAuth.user} ${options.basicAuth.password}`] : []), ''].join('\n'));
  const child = spawn('tinyproxy', ['-d', '-c', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  const connects: string[] = [];
  let started!: () => void;
  const ready = new Promise<void>((resolve) => (started = resolve));
  for (const stream of [child.stdout, child.stderr]) {
    readline.createInterface({ input: stream }).on('line', (line) => {
      if (line.includes('done sending stored logs')) started();
      const match = /Request \(file descriptor \d+\): (CONNECT \S+)/.exec(line);
      if (match) connects.push(match[1]!);
    });
  }
  const exited = once(child, 'exit');
  await Promise.race([ready, exited.then(() => Promise.reject(new Error('tinyproxy exited during start')))]);
  return {
    port,
    connects,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      fs.rmSync(config, { force: true });
    },
  };
}
