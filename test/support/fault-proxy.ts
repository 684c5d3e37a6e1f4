/**
 * A small HTTP fault proxy on loopback, in front of a stand-in (s3rver, dynalite): forwards every
 * request unchanged (the Host header included, so SigV4 signatures still verify), and on command
 * answers the next N matching requests itself — a status with a body (S3 `SlowDown` 503, DynamoDB
 * `ThrottlingException` 400, a 500) — or destroys the client's socket (a connection reset).
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Fault =
  | { kind: 'status'; status: number; body: string; headers?: Record<string, string> }
  | { kind: 'reset' };

export interface FaultRule {
  fault: Fault;
  /** How many matching requests get the fault; Infinity until cleared or `until`. */
  count: number;
  /** Epoch ms after which the rule no longer applies ("for a while"). */
  until?: number;
  /** Which requests: by method, path and (DynamoDB) X-Amz-Target; all when undefined. */
  match?: (req: { method: string; path: string; target?: string }) => boolean;
}

export interface FaultProxy {
  url: string;
  /** Requests seen, and how many got a fault. */
  stats: { requests: number; faulted: number };
  inject(rule: FaultRule): void;
  clear(): void;
  close(): Promise<void>;
}

/** S3's throttling answer. */
export const S3_SLOW_DOWN: Fault = {
  kind: 'status',
  status: 503,
  headers: { 'content-type': 'application/xml' },
  body: '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>FAULT</RequestId></Error>',
};
export const S3_INTERNAL: Fault = {
  kind: 'status',
  status: 500,
  headers: { 'content-type': 'application/xml' },
  body: '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message><RequestId>FAULT</RequestId></Error>',
};
/** DynamoDB's throttling answer: 400 with the JSON error body. */
export const DYNAMO_THROTTLING: Fault = {
  kind: 'status',
  status: 400,
  headers: { 'content-type': 'application/x-amz-json-1.0' },
  body: JSON.stringify({
    __type: 'com.amazonaws.dynamodb.v20120810#ThrottlingException',
    message: 'Rate of requests exceeds the allowed throughput.',
  }),
};
export const DYNAMO_INTERNAL: Fault = {
  kind: 'status',
  status: 500,
  headers: { 'content-type': 'application/x-amz-json-1.0' },
  body: JSON.stringify({
    __type: 'com.amazonaws.dynamodb.v20120810#InternalServerError',
    message: 'Internal server error',
  }),
};
export const RESET: Fault = { kind: 'reset' };

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const { hostname, port } = new URL(target);
  const rules: FaultRule[] = [];
  const stats = { requests: 0, faulted: 0 };

  const take = (req: IncomingMessage): Fault | undefined => {
    const info = {
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      target: req.headers['x-amz-target'] as string | undefined,
    };
    const now = Date.now();
    const rule = rules.find(
      (r) => r.count > 0 && (r.until === undefined || now < r.until) && (!r.match || r.match(info)),
    );
    if (!rule) return undefined;
    rule.count -= 1;
    return rule.fault;
  };

  const server: Server = createServer((req, res) => {
    stats.requests += 1;
    const fault = take(req);
    if (fault) {
      stats.faulted += 1;
      // Read the body first, as a server would, so the client sees the answer rather than EPIPE.
      req.resume();
      req.once('end', () => {
        if (fault.kind === 'reset') {
          req.socket.destroy();
          return;
        }
        res.writeHead(fault.status, {
          ...fault.headers,
          'content-length': Buffer.byteLength(fault.body),
          'x-amz-request-id': 'FAULT',
        });
        res.end(fault.body);
      });
      return;
    }
    const upstream = httpRequest(
      { host: hostname, port: Number(port), method: req.method, path: req.url, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => req.socket.destroy());
    req.pipe(upstream);
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => ok());
  });
  const { port: own } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${own}`,
    stats,
    inject: (rule) => rules.push({ ...rule }),
    clear: () => {
      rules.length = 0;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
