import { BadRequestError, NotFoundError, VicinityError } from '../core/errors';
import type { HttpEvent, HttpResult } from './http';

export interface RouteContext {
  event: HttpEvent;
  params: Record<string, string>;
  query: Record<string, string | undefined>;
}

export type RouteHandler = (ctx: RouteContext) => Promise<HttpResult>;

/** One row of a function's route table: `{name}` segments become params. */
export interface Route {
  method: string;
  path: string;
  handler: RouteHandler;
}

/** A path that exists, asked with a method it does not serve; `allow` becomes the Allow header. */
export class MethodNotAllowedError extends VicinityError {
  constructor(detail: string, allow: string) {
    super('method-not-allowed', 'method-not-allowed', 'Method not allowed', detail, { extras: { allow } });
  }
}

/**
 * The dispatcher of every HTTP function's route table. Not @middy/http-router: that one matches the
 * gateway's decoded path and answers no 405/Allow. This one matches rawPath split into segments and
 * percent-decodes each itself, so an item id with "/" (sent as %2F) stays one segment.
 */
export function createRouter(routes: readonly Route[]): (event: HttpEvent) => Promise<HttpResult> {
  const compiled = routes.map((r) => ({ ...r, parts: r.path.split('/').filter(Boolean) }));
  return async (event) => {
    const method = event.requestContext?.http?.method ?? 'GET';
    const raw = (event.rawPath ?? '/').split('/').filter(Boolean);
    // Decoded once per request (not once per route tried); a bad one is a 400 when a route reaches it.
    const got: (string | null)[] = raw.map((seg) => {
      try {
        return decodeURIComponent(seg);
      } catch {
        return null;
      }
    });
    const allowed: string[] = [];
    for (const r of compiled) {
      if (r.parts.length !== raw.length) continue;
      let ok = true;
      for (let i = 0; i < raw.length && ok; i++) {
        const want = r.parts[i] as string;
        if (got[i] === null)
          throw new BadRequestError(`Path segment ${JSON.stringify(raw[i])} is not valid percent-encoding`);
        ok = want.startsWith('{') || want === got[i];
      }
      if (!ok) continue;
      allowed.push(r.method);
      if (r.method !== method) continue;
      const params: Record<string, string> = {};
      for (let i = 0; i < raw.length; i++) {
        const want = r.parts[i] as string;
        if (want.startsWith('{')) params[want.slice(1, -1)] = got[i] as string;
      }
      return r.handler({ event, params, query: { ...(event.queryStringParameters ?? {}) } });
    }
    if (allowed.length) {
      const allow = [...new Set([...allowed, 'OPTIONS'])].join(', ');
      // A CORS preflight (or a plain OPTIONS): what the path allows; corsMiddleware adds the CORS part.
      if (method === 'OPTIONS') return { statusCode: 204, headers: { allow }, body: '' };
      throw new MethodNotAllowedError(
        `${method} is not allowed on ${event.rawPath}; allowed: ${allow}`,
        allow,
      );
    }
    throw new NotFoundError(`No route for ${method} ${event.rawPath}`);
  };
}
