/**
 * A scripted HTTPS Redfish peer for driver unit tests: each test decides what
 * the "BMC" answers and inspects exactly what the driver sent. The lab's BMC
 * simulator is the behavioural peer; this one is for edge cases it would
 * never produce (echoed credentials, odd status codes, ActionInfo).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import { freePort } from '@firebreak/shared/testing';
import { generate } from 'selfsigned';

export interface Seen {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

export type FakeHandler = (req: Seen, res: ServerResponse) => void;

export interface FakeBmc {
  /** `127.0.0.1:<port>` */
  address: string;
  /** The certificate it serves, as the client's CA bundle. */
  caPem: string;
  /** Every request, in order. */
  seen: Seen[];
  close(): void;
}

export async function startFakeBmc(handler: FakeHandler): Promise<FakeBmc> {
  const pems = await generate([{ name: 'commonName', value: 'fake-bmc' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }],
  });
  const seen: Seen[] = [];
  const server = createServer({ cert: pems.cert, key: pems.private }, (req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const s = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body };
      seen.push(s);
      handler(s, res);
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${port}`,
    caPem: pems.cert,
    seen,
    close() {
      server.closeAllConnections();
      server.close();
    },
  };
}

export function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

export function redfishBody(messageId: string, message: string): unknown {
  return {
    error: {
      code: 'Base.1.12.GeneralError',
      message: 'A general error has occurred. See ExtendedInfo for more information.',
      '@Message.ExtendedInfo': [{ MessageId: messageId, Message: message, Severity: 'Warning' }],
    },
  };
}

export const ROOT_WITH_SESSIONS = {
  SessionService: { '@odata.id': '/redfish/v1/SessionService' },
  Links: { Sessions: { '@odata.id': '/redfish/v1/SessionService/Sessions' } },
};
