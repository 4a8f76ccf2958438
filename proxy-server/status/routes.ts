// The status endpoints on the hub's authenticated HTTPS listener (the CONNECT TLS port):
//   /status           the page (HTML; its script and stylesheet at /status/app.js, /status/app.css)
//   /status/snapshot  the caller's view as JSON
//   /status/events    the caller's view as server-sent events
// The caller is already authenticated (connect-frontend.ts); what they see is filtered by RBAC.
import type http from 'node:http';
import type { UserIdentity } from '../../certs/identity.js';
import type { StatusCollector } from './collector.js';
import type { StatusStream } from './events.js';
import type { Access } from './model.js';
import { STATUS_CSS, STATUS_FAVICON, STATUS_HTML, STATUS_JS } from './page.js';
import { sendStatus } from './respond.js';

export const STATUS_PATH = '/status';

const ASSETS: Record<string, { type: string; body: string }> = {
  [STATUS_PATH]: { type: 'text/html; charset=utf-8', body: STATUS_HTML },
  [`${STATUS_PATH}/app.js`]: { type: 'text/javascript; charset=utf-8', body: STATUS_JS },
  [`${STATUS_PATH}/app.css`]: { type: 'text/css; charset=utf-8', body: STATUS_CSS },
  [`${STATUS_PATH}/favicon.svg`]: { type: 'image/svg+xml', body: STATUS_FAVICON },
};

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

export function isStatusPath(url: string | undefined): boolean {
  const path = pathOf(url);
  return path === STATUS_PATH || path.startsWith(`${STATUS_PATH}/`);
}

function pathOf(url: string | undefined): string {
  return (url ?? '/').split('?', 1)[0]!;
}

export class StatusRoutes {
  constructor(
    private readonly collector: StatusCollector,
    private readonly stream: StatusStream,
    private readonly accessFor: (who: UserIdentity) => Access,
  ) {}

  serve(req: http.IncomingMessage, res: http.ServerResponse, who: UserIdentity): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendStatus(res, 405, 'MethodNotAllowed', `${req.method} is not allowed on ${pathOf(req.url)}: the status endpoints are read-only (GET)`, { allow: 'GET, HEAD' });
      return;
    }
    const path = pathOf(req.url);
    const asset = ASSETS[path];
    if (asset) {
      res.writeHead(200, { 'content-type': asset.type, 'content-length': Buffer.byteLength(asset.body), 'cache-control': 'no-cache', ...SECURITY_HEADERS });
      res.end(req.method === 'HEAD' ? undefined : asset.body);
      return;
    }
    switch (path) {
      case `${STATUS_PATH}/snapshot`:
        void this.collector.refreshFederation().then(() => {
          const body = JSON.stringify(this.stream.snapshot(who.user, this.accessFor(who)));
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', ...SECURITY_HEADERS });
          res.end(req.method === 'HEAD' ? undefined : body);
        });
        return;
      case `${STATUS_PATH}/events`:
        if (req.method === 'HEAD') res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store' }).end();
        else this.stream.open(res, who.user, this.accessFor(who));
        return;
      default:
        sendStatus(res, 404, 'NotFound', `no status endpoint ${path}: try ${STATUS_PATH}, ${STATUS_PATH}/snapshot or ${STATUS_PATH}/events`);
    }
  }
}
