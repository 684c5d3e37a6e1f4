import { BadRequestError, NotFoundError, VicinityError } from '../core/errors';
import type { HttpEvent, HttpResult } from './http';
import { rejectUnknownParams } from './params';

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
  /** The query parameters the route takes; any other is a 400 naming it. Absent: none at all. */
  query?: readonly string[];
  handler: RouteHandler;
}

/** A path that exists, asked with a method it does not serve; `allow` becomes the Allow header. */
export class MethodNotAllowedError extends VicinityError {
  static override readonly errorName: string = 'MethodNotAllowedError';
  constructor(detail: string, allow: string) {
    super('method-not-allowed', 'method-not-allowed', 'Method not allowed', detail, { extras: { allow } });
  }
}

/**
 * The dispatcher of every HTTP function's route table. Not @middy/http-router: that one matches the
 * gateway's decoded path and answers no 405/Allow. This one matches rawPath split into segments and
 * percent-decodes each itself, so an item id with "/" (sent as %2F) stays one segment.
 *
 * One rule per concern, the same on every route (contract: "Requests"):
 * - only canonical paths match: an empty segment (a trailing or doubled slash) matches nothing, so
 *   `/v1/spaces/` and `//v1//spaces` are 404;
 * - a known path asked with another method is 405 with Allow; OPTIONS is 204 with Allow;
 * - a query parameter the route does not take is a 400 naming it.
 */
export function createRouter(
  routes: readonly Route[],
  /** Routes of the same API another function serves: they count for 405/Allow and OPTIONS, never dispatched here. */
  elsewhere: readonly Pick<Route, 'method' | 'path' | 'query'>[] = [],
): (event: HttpEvent) => Promise<HttpResult> {
  const foreign: Route[] = elsewhere.map((r) => ({
    ...r,
    handler: async () => {
      throw new NotFoundError(`${r.method} ${r.path} is served by another function of this API`);
    },
  }));
  const compiled = [...routes, ...foreign].map((r) => ({ ...r, parts: r.path.split('/').slice(1) }));
  // The route handler's own promise is the answer (no async wrapper around it); what the dispatch
  // itself refuses (400, 404, 405) is a rejected promise, as from an async function.
  return (event) => {
    try {
      return dispatch(event);
    } catch (err) {
      return Promise.reject(err);
    }
  };
  function dispatch(event: HttpEvent): Promise<HttpResult> {
    const method = event.requestContext?.http?.method ?? 'GET';
    const rawPath = event.rawPath ?? '/';
    const raw = rawPath.startsWith('/') ? rawPath.slice(1).split('/') : [];
    // Each segment decoded once, when a route first needs it (so a bad one is a 400 exactly when it was).
    const decoded: (string | undefined)[] = new Array(raw.length);
    const allowed: string[] = [];
    for (const r of compiled) {
      if (r.parts.length !== raw.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < raw.length && ok; i++) {
        const want = r.parts[i] as string;
        const segment = raw[i] as string;
        if (segment === '') {
          ok = false;
          break;
        }
        let got = decoded[i];
        if (got === undefined) {
          try {
            got = segment.includes('%') ? decodeURIComponent(segment) : segment;
          } catch {
            throw new BadRequestError(
              `Path segment ${JSON.stringify(segment)} is not valid percent-encoding`,
            );
          }
          decoded[i] = got;
        }
        if (want.startsWith('{')) params[want.slice(1, -1)] = got;
        else ok = want === got;
      }
      if (!ok) continue;
      allowed.push(r.method);
      if (r.method !== method) continue;
      // No query string (most POSTs): nothing to copy or check.
      const qs = event.queryStringParameters;
      const query = qs ? { ...qs } : {};
      if (qs) rejectUnknownParams(query, r.query ?? []);
      return r.handler({ event, params, query });
    }
    if (allowed.length) {
      const allow = [...new Set([...allowed, 'OPTIONS'])].join(', ');
      // A CORS preflight (or a plain OPTIONS): what the path allows; corsMiddleware adds the CORS part.
      if (method === 'OPTIONS') return Promise.resolve({ statusCode: 204, headers: { allow }, body: '' });
      throw new MethodNotAllowedError(`${method} is not allowed on ${rawPath}; allowed: ${allow}`, allow);
    }
    throw new NotFoundError(`No route for ${method} ${rawPath.slice(0, 200)}`);
  }
}
