// A small OpenID Connect issuer for tests: HTTPS (the test PKI's server certificate) with a discovery
// document and a JWKS, signing keys made with jose, key rotation, and start/stop on a fixed port so
// a server can be pointed at an issuer that is not up yet.
import fs from 'node:fs';
import https from 'node:https';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { closeServer, listenTcp } from '../../common/listen.js';
import { freePort } from './ports.js';
import { testPki } from './pki.js';

export interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

export async function newSigningKey(kid: string): Promise<SigningKey> {
  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
  return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
}

export class OidcIssuer {
  /** Keys published in the JWKS; the first signs. */
  keys: SigningKey[] = [];
  /** JWKS documents served so far (to see the server refetch after a rotation). */
  jwksFetches = 0;
  private server: https.Server | null = null;
  private rotations = 0;

  private constructor(
    readonly port: number,
    readonly audience: string,
  ) {}

  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  /** An issuer on a free port, not listening until start(). */
  static async create(audience = 'fedtunnel'): Promise<OidcIssuer> {
    const issuer = new OidcIssuer(await freePort(), audience);
    issuer.keys = [await newSigningKey('key-0')];
    return issuer;
  }

  async start(): Promise<void> {
    const pki = testPki();
    const server = https.createServer({ cert: fs.readFileSync(pki.server.cert), key: fs.readFileSync(pki.server.key) }, (req, res) => {
      const send = (body: unknown): void => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.url === '/.well-known/openid-configuration') return send({ issuer: this.url, jwks_uri: `${this.url}/jwks`, id_token_signing_alg_values_supported: ['RS256'] });
      if (req.url === '/jwks') {
        this.jwksFetches++;
        return send({ keys: this.keys.map((k) => k.publicJwk) });
      }
      res.writeHead(404).end();
    });
    await listenTcp(server, '127.0.0.1', this.port);
    this.server = server;
  }

  async stop(): Promise<void> {
    if (this.server) await closeServer(this.server);
    this.server = null;
  }

  /** Replaces the signing key: the old one leaves the JWKS, a new kid signs from now on. */
  async rotate(): Promise<SigningKey> {
    const key = await newSigningKey(`key-${++this.rotations}`);
    this.keys = [key];
    return key;
  }

  /** A signed ID token with iss, aud, sub, iat and exp (in 10 minutes) unless `claims` overrides them. */
  async token(claims: JWTPayload & Record<string, unknown>, key: SigningKey = this.keys[0]!): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ iss: this.url, aud: this.audience, iat: now, exp: now + 600, ...claims })
      .setProtectedHeader({ alg: 'RS256', kid: key.kid, typ: 'JWT' })
      .sign(key.privateKey);
  }
}
