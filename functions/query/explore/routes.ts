// query/explore/: the explorer page's read routes and their maths (PCA, sampling, prefix index).
// May import core/, common/, snapshot/ and query/; the maths files import nothing but core/.
/**
 * Read routes the explorer page needs (contract: "Explore routes"): a 2-D PCA projection of a
 * deterministic sample of a collection, and a prefix search over ids or a metadata field.
 * Both read one version, resolved once, and answer with it like every other data route.
 */
import { intOr, listParam, type QueryString, versionParams } from '../../common/params';
import type { Route } from '../../common/router';
import { BadRequestError } from '../../core/errors';
import { assertItemId, assertName } from '../../core/names';
import type { LoadedCollection } from '../../snapshot/cache';
import { type RequestContext, type Resolved, served, withRequest } from '../context';
import { erasedIn, isHidden } from '../erasures';
import type { QueryService } from '../service';
import { PROJECTION_DEFAULT_SAMPLE, PROJECTION_MAX_IDS, PROJECTION_MAX_SAMPLE } from './limits';
import type { PrefixIndexes } from './prefix-index';
import type { Projections } from './projection';

type Maths = typeof import('./maths');

export const PREFIX_DEFAULT_LIMIT = 20;
export const PREFIX_MAX_LIMIT = 100;

const PROJECTION_QUERY_KEYS = ['sample', 'fields', 'ids', 'points', 'version', 'consistency'];
const PREFIX_QUERY_KEYS = ['prefix', 'field', 'limit', 'version', 'consistency'];

const round = (v: number) => Math.round(v * 1e5) / 1e5;

/**
 * The explore routes, spread into queryRoutes. Fitted projections and prefix indexes are kept per
 * loaded collection (versions are immutable, so they never go stale) and go with it when evicted.
 */
export function exploreRoutes(service: QueryService): Route[] {
  const base = '/v1/spaces/{space}/collections/{collection}';
  // The maths (PCA, sampling, prefix index) and its caches are loaded by the first explore request.
  let loaded: Promise<Maths & { projections: Projections; prefixIndexes: PrefixIndexes }> | undefined;
  const maths = () => {
    loaded ??= import('./maths').then((m) => ({
      ...m,
      projections: new m.Projections(),
      prefixIndexes: new m.PrefixIndexes(),
    }));
    return loaded;
  };

  const open = async (
    params: Record<string, string>,
    query: QueryString,
    ctx: RequestContext,
  ): Promise<{ r: Resolved; c: LoadedCollection }> => {
    const space = assertName('space', params.space);
    const collection = assertName('collection', params.collection);
    const r = await service.resolve(space, versionParams(query));
    const c = await service.collection(r, collection, ctx);
    return { r, c };
  };

  return [
    {
      method: 'GET',
      path: `${base}/projection`,
      query: PROJECTION_QUERY_KEYS,
      handler: withRequest(async (ctx, { params, query }) => {
        const t0 = performance.now();
        const sample = intOr(query.sample, 'sample', 1, PROJECTION_MAX_SAMPLE, PROJECTION_DEFAULT_SAMPLE);
        const points = query.points === undefined ? true : query.points === 'true';
        if (query.points !== undefined && query.points !== 'true' && query.points !== 'false')
          throw new BadRequestError('points: true or false');
        const ids = listParam(query.ids);
        if (ids.length > PROJECTION_MAX_IDS)
          throw new BadRequestError(`ids: at most ${PROJECTION_MAX_IDS} (got ${ids.length})`);
        for (const id of ids) assertItemId(id);
        const [{ r, c }, { projections, project, unitIfCosine, pickFields, scalarFields }] =
          await Promise.all([open(params, query, ctx), maths()]);
        const known = c.manifest.metadataFields ?? [];
        let fields: string[];
        if (query.fields === undefined) fields = scalarFields(c);
        else {
          fields = listParam(query.fields);
          const unknown = fields.filter((f) => !known.includes(f));
          if (unknown.length)
            throw new BadRequestError(
              `fields: ${unknown.map((u) => JSON.stringify(u)).join(', ')} never occur in ${c.name} (it has ${known.join(', ') || 'no metadata'})`,
            );
        }
        const tf = performance.now();
        const f = projections.fit(c, sample);
        ctx.timings.fit = performance.now() - tf;
        const metaOf = (segment: number, label: number) => c.segments[segment]?.meta?.[label];
        const point = (id: string, x: number, y: number, segment: number, label: number) => {
          const m = pickFields(metaOf(segment, label), fields);
          return { id, x: round(x), y: round(y), ...(m ? { metadata: m } : {}) };
        };
        const extra: ReturnType<typeof point>[] = [];
        const missing: string[] = [];
        const cosine = c.manifest.metric === 'cosine';
        for (const id of ids) {
          const ref = c.lookup(id);
          if (!ref) {
            missing.push(id);
            continue;
          }
          const v = unitIfCosine(c.segments[ref.segment]!.index.getVector(ref.label), cosine);
          const [x, y] = project(f.pca, v);
          extra.push(point(id, x, y, ref.segment, ref.label));
        }
        return served(
          {
            space: r.space,
            version: r.version,
            collection: c.name,
            metric: c.manifest.metric,
            dims: c.manifest.dims,
            count: c.manifest.count,
            sample: f.sampled,
            method: 'pca',
            explained: f.pca.explained.map(round),
            metadataFields: known,
            fields,
            ...(points
              ? {
                  points: f.refs.flatMap((ref, i) =>
                    // An erased item is never shown, even before the purge rewrote the snapshot.
                    isHidden(c, ref.id)
                      ? []
                      : [
                          point(
                            ref.id,
                            f.coords[i * 2] as number,
                            f.coords[i * 2 + 1] as number,
                            ref.segment,
                            ref.label,
                          ),
                        ],
                  ),
                }
              : {}),
            ...(ids.length ? { extra, missing } : {}),
          },
          ctx,
          t0,
        );
      }),
    },
    {
      method: 'GET',
      path: `${base}/items`,
      query: PREFIX_QUERY_KEYS,
      handler: withRequest(async (ctx, { params, query }) => {
        const t0 = performance.now();
        if (query.prefix === undefined || query.prefix === '')
          throw new BadRequestError('prefix: required, at least one character');
        if (query.prefix.length > 256) throw new BadRequestError('prefix: at most 256 characters');
        const limit = intOr(query.limit, 'limit', 1, PREFIX_MAX_LIMIT, PREFIX_DEFAULT_LIMIT);
        const field = query.field ?? 'id';
        const [{ r, c }, { prefixIndexes, flatOf, refOf }] = await Promise.all([
          open(params, query, ctx),
          maths(),
        ]);
        const known = c.manifest.metadataFields ?? [];
        if (field !== 'id' && !known.includes(field))
          throw new BadRequestError(
            `field: ${JSON.stringify(field)} never occurs in ${c.name} (it has id${known.length ? `, ${known.join(', ')}` : ''})`,
          );
        const { index, builtMs } = prefixIndexes.of(c, field);
        if (builtMs !== undefined) ctx.timings.index = builtMs;
        const flat = flatOf(c);
        const ts = performance.now();
        // Erased items are asked for on top of the limit and left out, so `limit` others still come back.
        const hidden = erasedIn(c).length;
        const found = index.search(query.prefix, limit + hidden);
        const shown = hidden
          ? found.hits.filter((h) => !isHidden(c, flat.ids[h.item] as string))
          : found.hits;
        const hits = shown.slice(0, limit);
        const visible = (await service.metadataFilter(r)) ?? ((m) => m);
        const more = found.more || shown.length > limit;
        ctx.timings.search = performance.now() - ts;
        return served(
          {
            space: r.space,
            version: r.version,
            collection: c.name,
            field,
            prefix: query.prefix,
            metadataFields: known,
            results: hits.map((h) => {
              const ref = refOf(flat, h.item);
              return {
                id: flat.ids[h.item] as string,
                value: h.value,
                metadata: visible(c.segments[ref.segment]?.meta?.[ref.label]) ?? null,
              };
            }),
            more,
          },
          ctx,
          t0,
        );
      }),
    },
  ];
}
