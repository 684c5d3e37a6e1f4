// common/: the edge every function shares — HTTP (here, router.ts, params.ts, problem.ts: kind → status), config,
// observability, wiring. May import core, adapters and contract; never a function's folder (query, admin, builder).
import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError } from '../core/errors';

export type HttpEvent = APIGatewayProxyEventV2;
/**
 * Fields a route adds to the request's access log line (common/observability.ts accessLog), carried on
 * the response under a symbol: never serialised, cheaper than Logger.appendKeys per request.
 */
export const LOG_KEYS: unique symbol = Symbol('vicinity.logKeys');

export type HttpResult = APIGatewayProxyStructuredResultV2 & {
  headers: Record<string, string>;
  [LOG_KEYS]?: Record<string, unknown>;
};

export const MAX_BODY_BYTES = 1024 * 1024;

export function json(status: number, body: unknown, headers: Record<string, string> = {}): HttpResult {
  return {
    statusCode: status,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  };
}

/** Whether a Content-Type header names application/json (parameters such as charset=utf-8 allowed). */
export function isJsonMediaType(contentType: string | undefined): boolean {
  if (contentType === 'application/json') return true;
  return (contentType ?? '').split(';')[0]?.trim().toLowerCase() === 'application/json';
}

/**
 * The JSON body, or the problem with it: 413 over the limit, 415 when a body comes in another media
 * type than application/json, 400 when empty (if required) or not JSON.
 */
export function parseJsonBody(event: HttpEvent, required = true): unknown {
  const raw = event.body ?? '';
  const text = event.isBase64Encoded ? Buffer.from(raw, 'base64').toString('utf8') : raw;
  // UTF-8 takes at most 3 bytes per UTF-16 code unit: a short body needs no count.
  if (text.length * 3 > MAX_BODY_BYTES) {
    const bytes = Buffer.byteLength(text);
    if (bytes > MAX_BODY_BYTES) {
      throw new PayloadTooLargeError(
        `The request body is ${bytes} bytes; the limit is ${MAX_BODY_BYTES} bytes`,
      );
    }
  }
  const type = event.headers?.['content-type'];
  if (raw.length > 0 && !isJsonMediaType(type)) {
    throw new UnsupportedMediaTypeError(
      `The request body is ${type ? JSON.stringify(type.slice(0, 80)) : 'of no declared type'}; send it as application/json (Content-Type: application/json)`,
    );
  }
  // A body that starts with `{` or `[` is not blank: no trimmed copy to look at.
  const first = text.charCodeAt(0);
  if (first !== 123 && first !== 91 && text.trim() === '') {
    if (required) throw new BadRequestError('The request body is empty; expected a JSON object');
    return undefined;
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new BadRequestError(`The request body is not valid JSON: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/**
 * CORS headers when the deployer listed origins (VICINITY_CORS_ORIGINS); `*` allows any. A preflight
 * (OPTIONS, answered 204 by the router) also gets the allowed methods and headers, cached for an hour.
 */
export function corsMiddleware(origins: readonly string[]): MiddlewareObj<HttpEvent, HttpResult> {
  const add = (request: { event: HttpEvent; response?: HttpResult | null }) => {
    if (!origins.length || !request.response) return;
    const origin = request.event.headers?.origin;
    const allowed = origins.includes('*') ? '*' : origin && origins.includes(origin) ? origin : undefined;
    if (!allowed) return;
    const preflight =
      request.event.requestContext?.http?.method === 'OPTIONS' &&
      request.event.headers?.['access-control-request-method'] !== undefined;
    request.response.headers = {
      ...request.response.headers,
      'access-control-allow-origin': allowed,
      'access-control-expose-headers': 'vicinity-version, server-timing',
      vary: 'origin',
      ...(preflight
        ? {
            'access-control-allow-methods': request.response.headers?.allow ?? 'GET, POST, OPTIONS',
            'access-control-allow-headers':
              request.event.headers?.['access-control-request-headers'] ?? 'content-type, authorization',
            'access-control-max-age': '3600',
          }
        : {}),
    };
  };
  // Synchronous hooks: middy awaits only what returns a promise.
  return { after: add, onError: add };
}

export function serverTiming(timings: Record<string, number>): string {
  let s = '';
  for (const k in timings) s += `${s ? ', ' : ''}${k};dur=${(timings[k] as number).toFixed(2)}`;
  return s;
}
