// Runs before mocha (npm test): installs the Debian tools the tests drive as real clients and
// peers when they are missing, so a fresh machine and CI need no manual step.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

const needed = [
  { bin: '/usr/bin/curl', pkg: 'curl' },
  { bin: '/usr/bin/tinyproxy', pkg: 'tinyproxy' },
  // A pseudo-terminal for kubectl exec -it (test/support/pty.ts).
  { bin: '/usr/bin/python3', pkg: 'python3' },
  // A private mariadbd (its own data directory and port) for the MySQL fault test.
  { bin: '/usr/sbin/mariadbd', pkg: 'mariadb-server-core' },
  { bin: '/usr/bin/mariadb-install-db', pkg: 'mariadb-server-core' },
  // Headless Chromium (driven by puppeteer-core) for the status page test, and a font for its text.
  { bin: '/usr/bin/chromium', pkg: 'chromium' },
  { bin: '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf', pkg: 'fonts-dejavu-core' },
  // The L4 load balancer in front of the hub replicas (rolling restart test, HA soak).
  { bin: '/usr/sbin/haproxy', pkg: 'haproxy' },
];
const missing = [...new Set(needed.filter(({ bin }) => !fs.existsSync(bin)).map(({ pkg }) => pkg))];
if (missing.length > 0) {
  const apt = (args) => execFileSync('apt-get', args, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  console.log(`installing ${missing.join(', ')} for the tests`);
  try {
    apt(['install', '-y', '--no-install-recommends', ...missing]);
  } catch {
    apt(['update']);
    apt(['install', '-y', '--no-install-recommends', ...missing]);
  }
}
