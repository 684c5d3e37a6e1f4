/** What one read request carries through the query use cases: its timings and the collections it holds. */
import { type HttpResult, LOG_KEYS, serverTiming } from '../common/http';
import type { RouteContext, RouteHandler } from '../common/router';
import { WorkBudget } from '../core/budget';
import type { ErasureState } from './erasures';

/** Per-request timing parts, reported in Server-Timing and logs. */
export type Timings = Record<string, number>;

/** What one request holds while it runs: its timings, the collections it uses (never evicted meanwhile). */
export interface RequestContext {
  timings: Timings;
  held: (() => void)[];
  /** Whether every collection the request used was already in memory. */
  cacheHit: boolean;
  /** What the request served (space, version, collection, k, cache), for its access log line. */
  logKeys?: Record<string, unknown>;
  /** The request's budget of search work (a batch's or a diff's searches all draw on it). */
  budget: WorkBudget;
}

export function requestContext(): RequestContext {
  return { timings: {}, held: [], cacheHit: true, budget: new WorkBudget() };
}

/** Lets the cache evict the collections a request loaded once it is answered. */
export function releaseHeld(ctx: RequestContext): void {
  for (const release of ctx.held.splice(0)) release();
}

/** The one version a request reads, resolved once. */
export interface Resolved {
  space: string;
  version: string;
  generation?: number;
  /** The pointer's previous version when the request read the pointer: the only fallback. */
  previous?: string;
  /** Named with `?version=` and neither the active nor the previous version: the pin cap applies. */
  pinned?: boolean;
  /** The space's erasure list as of the pointer read: applied to every collection the request opens. */
  erasures?: ErasureState;
  /** The manifest the version is served from (a purge switches it); the default key when absent. */
  manifestKey?: string;
}

/** A 200 naming the version it served, in the body and the Vicinity-Version header, with Server-Timing. */
export function served<
  T extends { version: string; missingShards?: readonly { collection: string; shard: number }[] },
>(body: T, ctx: RequestContext, t0: number): HttpResult {
  ctx.timings.total = performance.now() - t0;
  const missing = body.missingShards;
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'vicinity-version': body.version,
    'server-timing': serverTiming(ctx.timings),
  };
  // allowPartial on a sharded collection: the shards the answer lacks, as collection/shard.
  if (missing?.length)
    headers['vicinity-missing-shards'] = missing.map((m) => `${m.collection}/${m.shard}`).join(',');
  // json(200, body, headers) without copying the headers into a second object.
  const res: HttpResult = { statusCode: 200, headers, body: JSON.stringify(body) };
  if (ctx.logKeys) res[LOG_KEYS] = ctx.logKeys;
  return res;
}

/** A route handler given a fresh request context, whose held collections are released when it answers. */
export function withRequest(
  fn: (ctx: RequestContext, route: RouteContext) => Promise<HttpResult>,
): RouteHandler {
  return async (route) => {
    const ctx = requestContext();
    try {
      return await fn(ctx, route);
    } finally {
      releaseHeld(ctx);
    }
  };
}
