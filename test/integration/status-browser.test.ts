// The status page in a real browser: headless Chromium (Debian's, installed by
// test/setup/prepare.mjs) driven by puppeteer-core. The page loads, shows the agent, shows a
// second agent appear and disappear live (no reload), plots it, and a screenshot is kept in
// test-artifacts/status-page.png. The browser reaches the hub through a loopback forwarder that
// presents root's client certificate (support/status-client.ts says why); the hub is real.
import { strict as assert } from 'node:assert';
import fs from 'node:fs';
import path from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { ROOT } from '../support/paths.js';
import { startAgent, startServer, type LoggedProcess, type ServerProcess } from '../support/processes.js';
import { assertNoLeakedResources, resourceBaseline } from '../support/leaks.js';
import { assertServerIdle, stopAgent } from '../support/server-state.js';
import { statusForwarder } from '../support/status-client.js';

const CHROMIUM = '/usr/bin/chromium';
export const SCREENSHOT = path.join(ROOT, 'test-artifacts', 'status-page.png');

describe('status page in headless Chromium', function () {
  this.timeout(120_000);
  let baseline: Awaited<ReturnType<typeof resourceBaseline>>;
  let server: ServerProcess;
  const agents: Record<string, LoggedProcess> = {};
  let forwarder: Awaited<ReturnType<typeof statusForwarder>>;
  let browser: Browser | undefined;
  let page: Page;

  before(async function () {
    baseline = await resourceBaseline();
    server = await startServer({ extraArgs: ['--keepalive-interval', '200', '--keepalive-timeout', '5000'] });
    agents.alpha = await startAgent({ cluster: 'alpha', server });
    forwarder = await statusForwarder(server.connectPort, 'root');
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      // Root cannot run Chromium's sandbox (no user namespaces for it here).
      args: [...(process.getuid?.() === 0 ? ['--no-sandbox'] : []), '--disable-gpu', '--window-size=1280,1000'],
      defaultViewport: { width: 1280, height: 1000 },
    });
    page = await browser.newPage();
  });

  after(async function () {
    await browser?.close();
    await forwarder?.close();
    for (const [cluster, agent] of Object.entries(agents)) if (agent.running) await stopAgent(server, agent, cluster);
    if (server) {
      await assertServerIdle(server);
      await server.kill();
    }
    await assertNoLeakedResources(baseline);
  });

  it('loads, shows an agent appearing and disappearing live, plots it, and keeps a screenshot', async function () {
    const failures: string[] = [];
    page.on('pageerror', (error) => failures.push(`page error: ${(error as Error).message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') failures.push(`console: ${message.text()}`);
    });
    let loads = 0;
    page.on('load', () => loads++);

    await page.goto(`${forwarder.url}/status`, { waitUntil: 'domcontentloaded' });
    await page.waitForSelector('tr.agent[data-cluster="alpha"]', { timeout: 15_000 });
    await page.waitForFunction(`document.getElementById('conn').textContent === 'live'`, { timeout: 15_000 });
    assert.match(await page.$eval('#who', (e) => e.textContent ?? ''), /signed in as root/);
    assert.match(await page.$eval('#lease', (e) => e.textContent ?? ''), /controller: not running/);

    agents.beta = await startAgent({ cluster: 'beta', server });
    await page.waitForSelector('tr.agent[data-cluster="beta"]', { timeout: 15_000 });
    const row = await page.$eval('tr.agent[data-cluster="beta"]', (tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent));
    assert.equal(row[0], 'beta');
    assert.equal(row[1], 'test-server', 'the replica holding the link');
    assert.equal(row[2], 'agent-beta');
    // Plotted once samples with its RTT arrive (keepalive every 200 ms here, samples every second).
    await page.waitForSelector('#plot-rtt polyline[data-cluster="beta"]', { timeout: 15_000 });
    await page.waitForFunction(`/ ms$/.test(document.querySelector('tr.agent[data-cluster="beta"] td:nth-child(8)').textContent)`, { timeout: 15_000 });

    fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT as `${string}.png`, fullPage: true });
    assert.ok(fs.statSync(SCREENSHOT).size > 10_000, 'a real screenshot');
    console.log(`      status page screenshot: ${SCREENSHOT}`);

    await stopAgent(server, agents.beta, 'beta');
    await page.waitForFunction(`!document.querySelector('tr.agent[data-cluster="beta"]')`, { timeout: 15_000 });
    assert.ok(await page.$('tr.agent[data-cluster="alpha"]'), 'alpha stays');
    assert.equal(loads, 1, 'everything arrived live: the page never reloaded');
    assert.deepEqual(failures, []);
  });
});
