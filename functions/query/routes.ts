import { z } from 'zod';
import { createRouter, type HttpResult, json, parseJsonBody, type Route, serverTiming } from '../common/http';
import { BadRequestError, NotFoundError } from '../core/errors';
import { assertName, assertVersion } from '../core/names';
import type { Registry } from '../core/ports';
import { parseSearchBody, parseSearchQuery, zodDetail } from '../core/query';
import type { QueryService, Timings } from './service';

function served(
  body: { version: string } & Record<string, unknown>,
  timings: Timings,
  t0: number,
): HttpResult {
  timings.total = performance.now() - t0;
  return json(200, body, { 'vicinity-version': body.version, 'server-timing': serverTiming(timings) });
}

const vectorSchema = z
  .array(z.number({ message: 'vector values must be finite numbers' }))
  .min(1)
  .max(4096);

function parseVector(raw: unknown): number[] {
  const r = vectorSchema.safeParse(raw);
  if (!r.success) throw new BadRequestError(`vector: ${zodDetail(r.error, 'vector')}`);
  // JSON cannot carry NaN, but 1e999 parses to Infinity.
  const bad = r.data.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new BadRequestError(`vector[${bad}] is not a finite number`);
  return r.data;
}

/** The read routes of the HTTP API (contract: `/v1/...`). */
export function queryRoutes(service: QueryService, registry: Registry): Route[] {
  const base = '/v1/spaces/{space}';
  return [
    { method: 'GET', path: '/v1/health', handler: async () => json(200, { status: 'ok' }) },
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
        const [pointer, page] = await Promise.all([
          registry.getPointer(space),
          registry.listVersions(space, 20),
        ]);
        if (!pointer.version && page.versions.length === 0) throw new NotFoundError(`Unknown space ${space}`);
        return json(200, {
          space,
          active: pointer.version
            ? { version: pointer.version, generation: pointer.generation, changedAt: pointer.changedAt }
            : null,
          pointer,
          versions: page.versions.map(summary),
        });
      },
    },
    {
      method: 'GET',
      path: `${base}/versions`,
      handler: async ({ params, query }) => {
        const space = assertName('space', params.space);
        const limit = query.limit === undefined ? 20 : Number(query.limit);
        if (!Number.isInteger(limit) || limit < 1 || limit > 100)
          throw new BadRequestError('limit: an integer 1–100');
        const before = query.before === undefined ? undefined : assertVersion(query.before);
        const page = await registry.listVersions(space, limit, before);
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
        const v = await registry.getVersion(space, version);
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
        return json(200, { space, history: await registry.listHistory(space, 100) });
      },
    },
    {
      method: 'GET',
      path: `${base}/collections/{collection}/items/{id}`,
      handler: async ({ params, query }) => {
        const t0 = performance.now();
        const timings: Timings = {};
        const p = parseSearchQuery({ version: query.version, consistency: query.consistency });
        const include = query.include === undefined ? [] : query.include.split(',');
        if (include.some((i) => i !== 'vector'))
          throw new BadRequestError('include: only "vector" is supported');
        const body = await service.item(
          params.space!,
          params.collection!,
          params.id!,
          include.includes('vector'),
          p,
          timings,
        );
        return served(body, timings, t0);
      },
    },
    {
      method: 'GET',
      path: `${base}/collections/{collection}/items/{id}/similar`,
      handler: async ({ params, query }) => {
        const t0 = performance.now();
        const timings: Timings = {};
        const p = parseSearchQuery(query);
        const body = await service.similar(params.space!, params.collection!, params.id!, p, timings);
        return served({ ...body }, timings, t0);
      },
    },
    {
      method: 'POST',
      path: `${base}/collections/{collection}/items/{id}/similar`,
      handler: async ({ params, event }) => {
        const t0 = performance.now();
        const timings: Timings = {};
        const p = parseSearchBody(parseJsonBody(event, false));
        const body = await service.similar(params.space!, params.collection!, params.id!, p, timings);
        return served({ ...body }, timings, t0);
      },
    },
    {
      method: 'POST',
      path: `${base}/collections/{collection}/query`,
      handler: async ({ params, event }) => {
        const t0 = performance.now();
        const timings: Timings = {};
        const raw = parseJsonBody(event) as Record<string, unknown>;
        if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
          throw new BadRequestError('The request body must be a JSON object with a "vector"');
        }
        const { vector, ...rest } = raw;
        if (vector === undefined) throw new BadRequestError('vector: required');
        const v = parseVector(vector);
        const p = parseSearchBody(rest);
        const body = await service.query(params.space!, params.collection!, v, p, timings);
        return served({ ...body }, timings, t0);
      },
    },
  ];
}

function summary(v: import('../core/version').VersionRecord) {
  return {
    version: v.version,
    status: v.status,
    release: v.release,
    createdAt: v.createdAt,
    ...(v.finishedAt ? { finishedAt: v.finishedAt } : {}),
    ...(v.collections ? { collections: v.collections } : {}),
    ...(v.timings?.totalMs !== undefined ? { buildMs: v.timings.totalMs } : {}),
    ...(v.reason ? { reason: v.reason } : {}),
  };
}

export function queryRouter(service: QueryService, registry: Registry) {
  return createRouter(queryRoutes(service, registry));
}
