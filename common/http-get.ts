// A plain-HTTP GET on loopback for admin and health endpoints (/metrics, /debug/…): one fresh
// connection per call (agent: false), so no keep-alive pool holds a socket to the process
// being inspected.
import http from 'node:http';

export function getText(port: number, path: string, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host, port, path, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

export async function getJson(port: number, path: string, host = '127.0.0.1'): Promise<unknown> {
  return JSON.parse(await getText(port, path, host));
}
