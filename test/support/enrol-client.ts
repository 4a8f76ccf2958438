// The enrolment endpoint as an agent calls it, for tests that drive it by hand: no client
// certificate, the hub verified against the test CA.
import fs from 'node:fs';
import https from 'node:https';
import { testPki } from './pki.js';

export interface EnrolAnswer {
  status: number;
  text: string;
}

/** The Kubernetes Status of a refused enrolment. */
export interface EnrolRefusal {
  message: string;
  details: { causes: Array<{ reason: string }> };
}

/** POST /fedtunnel/v1/enrol with a bearer token and `body` (a CSR, or anything to test refusals). */
export function postEnrol(port: number, token: string, body: string): Promise<EnrolAnswer> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: '/fedtunnel/v1/enrol',
        method: 'POST',
        servername: 'localhost',
        ca: fs.readFileSync(testPki().ca.cert),
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/pkcs10' },
        agent: false,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.once('error', reject);
    req.end(body);
  });
}

/** The first cause's reason of a refusal. */
export function refusalReason(answer: EnrolAnswer): string {
  return (JSON.parse(answer.text) as EnrolRefusal).details.causes[0]!.reason;
}
