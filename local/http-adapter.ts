import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context } from 'aws-lambda';
import type { HttpEvent, HttpResult } from '../functions/common/http';
import { toProblem } from '../functions/common/problem';
import { PayloadTooLargeError } from '../functions/core/errors';

/** API Gateway HTTP APIs accept up to 10 MB; Lambda takes 6 MB. Beyond that the gateway answers 413 itself. */
export const GATEWAY_MAX_BODY = 6 * 1024 * 1024;

export type HttpLambda = (event: HttpEvent, context: Context) => Promise<HttpResult>;

/** The build function's timeout in AWS: Lambda's maximum, 15 minutes. */
export const BUILD_TIMEOUT_MS = 15 * 60_000;

/** A Lambda context; `timeoutMs` is the function's timeout (middy aborts a handler just before it). */
export function fakeContext(name: string, requestId: string, timeoutMs = 29_000): Context {
  const deadline = Date.now() + timeoutMs;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: name,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:${name}`,
    memoryLimitInMB: '2048',
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${name}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** The request as API Gateway (HTTP API, payload format 2.0) hands it to Lambda. */
/** What varies between the API Gateway v2 events the local server, the tests and the benches build. */
export interface HttpEventInit {
  method: string;
  /** The raw path, without the query string. */
  path: string;
  requestId: string;
  rawQueryString?: string;
  queryStringParameters?: Record<string, string>;
  /** Lower-case names, as API Gateway passes them. */
  headers?: Record<string, string>;
  body?: string;
  isBase64Encoded?: boolean;
  protocol?: string;
  sourceIp?: string;
  /** API id and domain prefix (the functions never read them). */
  apiId?: string;
}

/** An API Gateway HTTP API (payload 2.0) event, as the gateway would pass it to a function. */
export function httpEvent(e: HttpEventInit): HttpEvent {
  const headers = e.headers ?? {};
  const apiId = e.apiId ?? 'local';
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: e.path,
    rawQueryString: e.rawQueryString ?? '',
    headers,
    ...(e.queryStringParameters ? { queryStringParameters: e.queryStringParameters } : {}),
    requestContext: {
      accountId: '000000000000',
      apiId,
      domainName: headers.host ?? 'localhost',
      domainPrefix: apiId,
      http: {
        method: e.method,
        path: e.path,
        protocol: e.protocol ?? 'HTTP/1.1',
        sourceIp: e.sourceIp ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: e.requestId,
      routeKey: '$default',
      stage: '$default',
      time: new Date().toISOString(),
      timeEpoch: Date.now(),
    },
    ...(e.body !== undefined ? { body: e.body } : {}),
    isBase64Encoded: e.isBase64Encoded ?? false,
  };
}

export function toApiGatewayEvent(req: IncomingMessage, body: Buffer, requestId: string): HttpEvent {
  const url = new URL(req.url ?? '/', 'http://local');
  const path = (req.url ?? '/').split('?')[0] ?? '/';
  const query: Record<string, string> = {};
  for (const [k, v] of url.searchParams) query[k] = k in query ? `${query[k]},${v}` : v;
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(',') : v;
  }
  const text = body.toString('utf8');
  const binary = Buffer.compare(Buffer.from(text, 'utf8'), body) !== 0;
  return httpEvent({
    method: req.method ?? 'GET',
    path,
    requestId,
    rawQueryString: url.search.replace(/^\?/, ''),
    ...(Object.keys(query).length ? { queryStringParameters: query } : {}),
    headers,
    ...(body.length ? { body: binary ? body.toString('base64') : text } : {}),
    isBase64Encoded: binary,
    protocol: `HTTP/${req.httpVersion}`,
    sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
  });
}

function send(res: ServerResponse, result: HttpResult): void {
  if (res.headersSent) return;
  res.writeHead(result.statusCode ?? 200, result.headers);
  res.end(result.body ?? '');
}

/**
 * Reads the body (refusing more than the gateway would take), picks the function for the path and
 * answers with what it returns. Whatever happens, the server answers and stays up.
 */
export function lambdaRequestListener(
  pick: (method: string, path: string) => { name: string; fn: HttpLambda } | undefined,
  fallback?: (req: IncomingMessage, res: ServerResponse) => Promise<boolean>,
) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const requestId = randomUUID();
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (c: Buffer) => {
      if (refused) return;
      size += c.length;
      if (size > GATEWAY_MAX_BODY) {
        refused = true;
        send(
          res,
          toProblem(
            new PayloadTooLargeError(`The request body is over ${GATEWAY_MAX_BODY} bytes`),
            requestId,
          ),
        );
        req.resume();
        return;
      }
      chunks.push(c);
    });
    req.on('error', () => undefined);
    req.on('end', () => {
      if (refused) return;
      void (async () => {
        try {
          const path = (req.url ?? '/').split('?')[0] ?? '/';
          const target = pick(req.method ?? 'GET', path);
          if (!target) {
            if (fallback && (await fallback(req, res))) return;
          }
          const chosen = target ?? pick('GET', '/v1/health');
          if (!chosen) throw new Error('no function');
          const event = toApiGatewayEvent(req, Buffer.concat(chunks), requestId);
          const result = await chosen.fn(event, fakeContext(chosen.name, requestId));
          send(res, result);
        } catch (err) {
          send(res, toProblem(err, requestId));
        }
      })();
    });
  };
}
