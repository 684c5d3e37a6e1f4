/**
 * A recording endpoint per function process: every AWS SDK call the function makes arrives here (its
 * AWS_ENDPOINT_URL_* all point at this port, so the caller is known), is recorded as IAM actions, and
 * goes on to the stand-in: S3 → s3rver, DynamoDB → dynalite (forwarded byte for byte, Host included,
 * so signatures still verify), EventBridge PutEvents / Lambda Invoke / SQS → the rehearsal's handlers.
 */
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Call, callsOf, type RecordedRequest, serviceOf } from './iam';

export interface LocalReply {
  status: number;
  headers?: Record<string, string>;
  body: string | Buffer;
}

export interface ProxyTargets {
  s3: string;
  dynamodb: string;
  /** Services answered in the rehearsal itself (events, lambda, sqs). */
  local: (service: string, req: RecordedRequest, caller: string) => Promise<LocalReply | undefined>;
}

export interface RecordedCall extends Call {
  readonly service: string;
  readonly status?: number;
}

export interface RecordingProxy {
  readonly endpoint: string;
  readonly calls: RecordedCall[];
  stop(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function forward(target: string, req: IncomingMessage, body: Buffer, res: ServerResponse): Promise<number> {
  const t = new URL(target);
  return new Promise((resolve) => {
    const out = request(
      { host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers },
      (upstream) => {
        res.writeHead(upstream.statusCode ?? 502, upstream.headers);
        upstream.pipe(res);
        upstream.on('end', () => resolve(upstream.statusCode ?? 502));
      },
    );
    out.on('error', (err) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(String(err));
      resolve(502);
    });
    out.end(body);
  });
}

export async function startRecordingProxy(caller: string, targets: ProxyTargets): Promise<RecordingProxy> {
  const calls: RecordedCall[] = [];
  const server: Server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      const service = serviceOf(req.headers) ?? 'unknown';
      const recorded: RecordedRequest = {
        service,
        method: req.method ?? 'GET',
        url: req.url ?? '/',
        headers: req.headers,
        body,
      };
      const these = callsOf(recorded);
      let status: number | undefined;
      if (service === 's3') status = await forward(targets.s3, req, body, res);
      else if (service === 'dynamodb') status = await forward(targets.dynamodb, req, body, res);
      else {
        const reply = await targets
          .local(service, recorded, caller)
          .catch((err: unknown): LocalReply => ({ status: 500, body: String(err) }));
        const r = reply ?? {
          status: 400,
          headers: { 'content-type': 'application/x-amz-json-1.1' },
          body: JSON.stringify({ __type: 'UnknownOperationException', message: `no ${service} stand-in` }),
        };
        res.writeHead(r.status, r.headers ?? {});
        res.end(r.body);
        status = r.status;
      }
      for (const c of these) calls.push({ ...c, service, status });
      // S3 answers a GET/HEAD of a missing key with 404 only if the caller may s3:ListBucket (else 403),
      // evaluated with the key as s3:prefix.
      if (service === 's3' && status === 404)
        for (const c of these.filter((x) => x.action === 's3:GetObject')) {
          const [, bucket = '', key = ''] = /^arn:aws:s3:::([^/]+)\/(.*)$/.exec(c.resource) ?? [];
          calls.push({
            action: 's3:ListBucket',
            resource: `arn:aws:s3:::${bucket}`,
            context: { 's3:prefix': key },
            service,
            status,
          });
        }
    })().catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(err));
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => ok());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    calls,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
