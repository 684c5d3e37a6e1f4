import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { BadRequestError, NotFoundError, PayloadTooLargeError, VicinityError } from '../core/errors';
import type { Log } from '../core/ports';

export type HttpEvent = APIGatewayProxyEventV2;
export type HttpResult = APIGatewayProxyStructuredResultV2 & { headers: Record<string, string> };

export const MAX_BODY_BYTES = 1024 * 1024;

export interface RouteContext {
  event: HttpEvent;
  params: Record<string, string>;
  query: Record<string, string | undefined>;
}

export type RouteHandler = (ctx: RouteContext) => Promise<HttpResult>;

export interface Route {
  method: string;
  path: string;
  handler: RouteHandler;
}

/**
 * Matches on rawPath split into segments and percent-decodes each segment itself, so an item id
 * with "/" (sent as %2F) stays one segment whatever the gateway did with pathParameters.
 */
export function createRouter(routes: Route[]): (event: HttpEvent) => Promise<HttpResult> {
  const compiled = routes.map((r) => ({ ...r, parts: r.path.split('/').filter(Boolean) }));
  return async (event) => {
    const method = event.requestContext?.http?.method ?? 'GET';
    const raw = (event.rawPath ?? '/').split('/').filter(Boolean);
    const allowed: string[] = [];
    for (const r of compiled) {
      if (r.parts.length !== raw.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < raw.length && ok; i++) {
        const want = r.parts[i] as string;
        let got: string;
        try {
          got = decodeURIComponent(raw[i] as string);
        } catch {
          throw new BadRequestError(`Path segment ${JSON.stringify(raw[i])} is not valid percent-encoding`);
        }
        if (want.startsWith('{')) params[want.slice(1, -1)] = got;
        else ok = want === got;
      }
      if (!ok) continue;
      allowed.push(r.method);
      if (r.method !== method) continue;
      return r.handler({ event, params, query: { ...(event.queryStringParameters ?? {}) } });
    }
    if (allowed.length) {
      const allow = [...new Set([...allowed, 'OPTIONS'])].join(', ');
      // A CORS preflight (or a plain OPTIONS): what the path allows; corsMiddleware adds the CORS part.
      if (method === 'OPTIONS') return { statusCode: 204, headers: { allow }, body: '' };
      throw new VicinityError(
        405,
        'method-not-allowed',
        'Method not allowed',
        `${method} is not allowed on ${event.rawPath}; allowed: ${allow}`,
        { extras: { allow } },
      );
    }
    throw new NotFoundError(`No route for ${method} ${event.rawPath}`);
  };
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): HttpResult {
  return {
    statusCode: status,
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  };
}

/** The JSON body, or the problem with it: 413 over the limit, 400 when empty (if required) or not JSON. */
export function parseJsonBody(event: HttpEvent, required = true): unknown {
  const raw = event.body ?? '';
  const text = event.isBase64Encoded ? Buffer.from(raw, 'base64').toString('utf8') : raw;
  const bytes = Buffer.byteLength(text);
  if (bytes > MAX_BODY_BYTES) {
    throw new PayloadTooLargeError(
      `The request body is ${bytes} bytes; the limit is ${MAX_BODY_BYTES} bytes`,
    );
  }
  if (text.trim() === '') {
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

/** The problem+json object for an error (also used inside batch answers, one per failed entry). */
export function problemBody(err: VicinityError, instance?: string): Record<string, unknown> {
  const { retryAfter: _r, allow: _a, ...extras } = err.extras;
  return {
    type: `https://vicinity.dev/problems/${err.type}`,
    title: err.title,
    status: err.status,
    detail: err.message,
    ...(instance ? { instance } : {}),
    ...extras,
  };
}

export function problemResponse(err: VicinityError, instance?: string): HttpResult {
  const headers: Record<string, string> = { 'content-type': 'application/problem+json' };
  if (typeof err.extras.retryAfter === 'number') headers['retry-after'] = String(err.extras.retryAfter);
  if (typeof err.extras.allow === 'string') headers.allow = err.extras.allow;
  return { statusCode: err.status, headers, body: JSON.stringify(problemBody(err, instance)) };
}

/** Maps any error to problem+json: VicinityError by its status, anything else a 500 that exposes nothing. */
export function toProblem(err: unknown, instance?: string): HttpResult {
  if (err instanceof VicinityError) return problemResponse(err, instance);
  return problemResponse(
    new VicinityError(
      500,
      'internal',
      'Internal error',
      'Something went wrong on our side; the request id identifies it in the logs',
    ),
    instance,
  );
}

/** The one error middleware: every problem+json response of every HTTP handler comes from here. */
export function problemMiddleware(log: Log): MiddlewareObj<HttpEvent, HttpResult> {
  return {
    onError: async (request) => {
      const err = request.error;
      const requestId = request.event?.requestContext?.requestId;
      const version = err instanceof VicinityError ? err.extras.version : undefined;
      if (err instanceof VicinityError && err.status < 500) {
        log.info('request refused', { status: err.status, detail: err.message, requestId, version });
      } else {
        log.error('request failed', {
          requestId,
          version,
          error:
            err instanceof Error ? { name: err.name, message: err.message, stack: err.stack } : String(err),
          cause: err instanceof Error && err.cause ? String(err.cause) : undefined,
        });
      }
      request.response = toProblem(err, requestId);
    },
  };
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
  return { after: async (r) => add(r), onError: async (r) => add(r) };
}

export function serverTiming(timings: Record<string, number>): string {
  return Object.entries(timings)
    .map(([k, v]) => `${k};dur=${v.toFixed(2)}`)
    .join(', ');
}
