// Answers of the status endpoints: errors as a Kubernetes Status, like the hub's API endpoints.
import type http from 'node:http';

export function sendStatus(res: http.ServerResponse, code: number, reason: string, message: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store', ...headers }).end(body);
}
