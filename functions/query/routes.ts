import { json, parseJsonBody } from '../common/http';
import { intOr, parseSearchQuery, SEARCH_QUERY_KEYS } from '../common/params';
import { httpStatus, problemBody } from '../common/problem';
import { createRouter, type Route, type RouteContext } from '../common/router';
import { assertNotDeleting } from '../core/erasure';
import { BadRequestError, NotFoundError } from '../core/errors';
import { assertName, assertVersion } from '../core/names';
import type { Registry } from '../core/ports';
import {
  parseBatchBody,
  parseQueryBody,
  parseQueryRequest,
  parseSearchBody,
  type SearchParams,
} from '../core/query';
import { versionSummary } from '../core/version';
import { requestContext, served } from './context';
import { diffRoute } from './diff-route';
import { exploreRoutes } from './explore/routes';
import type { QueryService } from './service';

/**
 * The OpenAPI 3.1 document of the whole HTTP API (docs/openapi.json), served at /v1/openapi.json;
 * loaded on its first request, so a cold start does not evaluate its ~30 KB.
 */
export const openapiDocument = async (): Promise<Record<string, unknown>> =>
  (await import('../../docs/openapi.json')).default;

const ITEM_QUERY_KEYS = new Set(['include', 'version', 'consistency']);

/** The read API's one route table (contract: `/v1/...`); `createRouter` dispatches it. */
export function queryRoutes(service: QueryService, registry: Registry): Route[] {
  const base = '/v1/spaces/{space}';
  // GET takes the search parameters from the query string, POST from the body; the rest is one route.
  // The registry-backed reads of a space check its deletion mark (a consistent read of the pointer
  // item), so a space is a 404 here from the moment DELETE /v1/spaces/{space} is accepted.
  const live = async (space: string) => {
    const state = await registry.getSpaceState(space);
    assertNotDeleting(space, state);
    return state;
  };
  const similar =
    (parse: (c: RouteContext) => Promise<SearchParams>): Route['handler'] =>
    async (c) => {
      const t0 = performance.now();
      const ctx = requestContext();
      const { space, collection, id } = c.params as Record<'space' | 'collection' | 'id', string>;
      const body = await service.similar(space, collection, id, await parse(c), ctx);
      return served(body, ctx, t0);
    };
  return [
    { method: 'GET', path: '/v1/health', query: [], handler: async () => json(200, { status: 'ok' }) },
    { method: 'GET', path: '/v1/openapi.json', handler: async () => json(200, await openapiDocument()) },
    {
      method: 'GET',
      path: '/v1/spaces',
      handler: async () => {
        const spaces = await registry.listSpaces();
        const pointers = await registry.getPointers(spaces);
        return json(200, {
          spaces: pointers.map((p) => ({
            space: p.space,
            active: p.version ? { version: p.version, generation: p.generation } : null,
          })),
        });
      },
    },
    {
      method: 'GET',
      path: base,
      handler: async ({ params }) => {
        const space = assertName('space', params.space);
        const [{ pointer }, page, settings] = await Promise.all([
          live(space),
          registry.listVersions(space, 20),
          registry.getSpaceSettings(space),
        ]);
        if (!pointer.version && page.versions.length === 0) throw new NotFoundError(`Unknown space ${space}`);
        return json(200, {
          space,
          active: pointer.version
            ? { version: pointer.version, generation: pointer.generation, changedAt: pointer.changedAt }
            : null,
          pointer,
          settings,
          versions: page.versions.map(summary),
        });
      },
    },
    {
      method: 'GET',
      path: `${base}/versions`,
      query: ['limit', 'before'],
      handler: async ({ params, query }) => {
        const space = assertName('space', params.space);
        const limit = intOr(query.limit, 'limit', 1, 100, 20);
        const before = query.before === undefined ? undefined : assertVersion(query.before);
        const [, page] = await Promise.all([live(space), registry.listVersions(space, limit, before)]);
        return json(200, {
          space,
          versions: page.versions.map(summary),
          ...(page.next ? { next: page.next } : {}),
        });
      },
    },
    {
      method: 'GET',
      path: `${base}/versions/{version}`,
      handler: async ({ params }) => {
        const space = assertName('space', params.space);
        const version = assertVersion(params.version);
        const [, v] = await Promise.all([live(space), registry.getVersion(space, version)]);
        if (!v) throw new NotFoundError(`Space ${space} has no version ${version}`);
        const { leaseOwner: _o, leaseUntil: _u, ...record } = v;
        return json(200, record);
      },
    },
    {
      method: 'GET',
      path: `${base}/history`,
      handler: async ({ params }) => {
        const space = assertName('space', params.space);
        const [, history] = await Promise.all([live(space), registry.listHistory(space, 100)]);
        return json(200, { space, history });
      },
    },
    {
      method: 'GET',
      path: `${base}/collections/{collection}/items/{id}`,
      query: [...ITEM_QUERY_KEYS],
      handler: async ({ params, query }) => {
        const t0 = performance.now();
        const ctx = requestContext();
        const { include, ...rest } = query;
        const p = await parseSearchQuery(rest, ITEM_QUERY_KEYS);
        const parts = include === undefined ? [] : include.split(',');
        if (parts.some((i) => i !== 'vector'))
          throw new BadRequestError(`include: only "vector" is supported, got ${JSON.stringify(include)}`);
        const body = await service.item(
          params.space as string,
          params.collection as string,
          params.id as string,
          parts.includes('vector'),
          p,
          ctx,
        );
        return served(body, ctx, t0);
      },
    },
    {
      method: 'GET',
      path: `${base}/collections/{collection}/items/{id}/similar`,
      query: [...SEARCH_QUERY_KEYS],
      handler: similar(({ query }) => parseSearchQuery(query)),
    },
    {
      method: 'POST',
      path: `${base}/collections/{collection}/items/{id}/similar`,
      handler: similar(({ event }) => parseSearchBody(parseJsonBody(event, false))),
    },
    {
      method: 'POST',
      path: `${base}/collections/{collection}/query`,
      handler: async ({ params, event }) => {
        const t0 = performance.now();
        const ctx = requestContext();
        const raw = parseJsonBody(event);
        const parsed = parseQueryRequest(raw);
        const q = parsed instanceof Promise ? await parsed : parsed;
        const body = await service.query(
          params.space as string,
          params.collection as string,
          q.vector,
          q.params,
          ctx,
        );
        return served(body, ctx, t0);
      },
    },
    {
      method: 'POST',
      path: `${base}/batch`,
      handler: async ({ params, event }) => {
        const t0 = performance.now();
        const ctx = requestContext();
        const b = await parseBatchBody(parseJsonBody(event));
        const out = await service.batch(params.space as string, b, ctx);
        const results = out.outcomes.map((o) => {
          if (!o.ok) return { status: httpStatus(o.error), problem: problemBody(o.error) };
          const { space: _s, version: _v, ...answer } = o.answer;
          return { status: 200, ...answer };
        });
        return served({ space: out.space, version: out.version, results }, ctx, t0);
      },
    },
    diffRoute(service, registry),
    ...exploreRoutes(service),
  ];
}

const summary = versionSummary;

/** The query body (core/query.ts: a hand-written check, then the schema for anything it does not pass). */
export { parseQueryBody };

/**
 * The admin function's routes (functions/admin, its route table `adminRoutes`): the read router answers
 * 405/OPTIONS on their paths too, so Allow is the same whichever function a path's other methods reach.
 * openapi.test.ts checks this list against the admin route table.
 */
export const ADMIN_ROUTES: readonly Pick<Route, 'method' | 'path' | 'query'>[] = [
  { method: 'POST', path: '/v1/spaces/{space}/activate' },
  { method: 'POST', path: '/v1/spaces/{space}/rollback' },
  { method: 'DELETE', path: '/v1/spaces/{space}/collections/{collection}/items/{id}' },
  { method: 'POST', path: '/v1/spaces/{space}/collections/{collection}/items/{id}/restore' },
  { method: 'GET', path: '/v1/spaces/{space}/erasures', query: ['status'] },
  { method: 'DELETE', path: '/v1/spaces/{space}' },
  { method: 'PUT', path: '/v1/spaces/{space}/settings' },
];

export function queryRouter(service: QueryService, registry: Registry) {
  return createRouter(queryRoutes(service, registry), ADMIN_ROUTES);
}
