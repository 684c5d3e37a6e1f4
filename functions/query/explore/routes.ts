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
import type { CollectionManifest } from '../../snapshot/manifest';
import { type RequestContext, type Resolved, served, withRequest } from '../context';
import { erasedIn, isHidden } from '../erasures';
import type { QueryService } from '../service';
import type { ItemVector, ShardRouter } from '../shards/router';
import { PROJECTION_DEFAULT_SAMPLE, PROJECTION_MAX_IDS, PROJECTION_MAX_SAMPLE } from './limits';
import type { PrefixIndexes } from './prefix-index';
import type { Projections, SlotFits } from './projection';

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
  let loaded:
    | Promise<Maths & { projections: Projections; prefixIndexes: PrefixIndexes; slotFits: SlotFits }>
    | undefined;
  const maths = () => {
    loaded ??= import('./maths').then((m) => ({
      ...m,
      projections: new m.Projections(),
      prefixIndexes: new m.PrefixIndexes(),
      slotFits: new m.SlotFits(),
    }));
    return loaded;
  };

  const resolve = (params: Record<string, string>, query: QueryString) => {
    const space = assertName('space', params.space);
    const collection = assertName('collection', params.collection);
    return service.resolve(space, versionParams(query)).then((r) => ({ r, collection }));
  };

  /**
   * A sharded collection's projection through the shard slots (the router loads no shard): each slot
   * samples its shards by hash, the router keeps the collection's `n` smallest hashes — the ids one
   * instance would sample — fetches their vectors from their slots and fits the same PCA.
   */
  const slotProjection = async (
    router: ShardRouter,
    r: Resolved,
    collection: string,
    q: { sample: number; points: boolean; ids: string[]; fields?: string[] },
    ctx: RequestContext,
    t0: number,
  ) => {
    const cm = (await service.manifest(r)).collections[collection] as CollectionManifest;
    const m = await maths();
    const known = cm.metadataFields ?? [];
    if (q.fields) {
      const unknown = q.fields.filter((f) => !known.includes(f));
      if (unknown.length)
        throw new BadRequestError(
          `fields: ${unknown.map((u) => JSON.stringify(u)).join(', ')} never occur in ${collection} (it has ${known.join(', ') || 'no metadata'})`,
        );
    }
    const cosine = cm.metric === 'cosine';
    const key = `${r.space}/${r.version}/${collection}/${q.sample}`;
    let f = m.slotFits.get(key);
    if (!f) {
      const tf = performance.now();
      const sample = await router.sample(r, collection, m.sampleSize(q.sample, cm.dims), {}, ctx);
      const items = await router.items(r, collection, sample.ids, ctx);
      const ids = sample.ids.filter((id) => items.has(id));
      const rows = new Float64Array(ids.length * cm.dims);
      const metadata = ids.map((id, row) => {
        const it = items.get(id) as ItemVector;
        rows.set(m.unitIfCosine(it.vector, cosine), row * cm.dims);
        return it.metadata;
      });
      const { pca, coords } = m.fitRows(rows, ids.length, cm.dims);
      f = { pca, ids, metadata, coords, sampled: ids.length };
      m.slotFits.set(key, f);
      ctx.timings.fit = performance.now() - tf;
    }
    const fields = q.fields ?? m.scalarFieldsOf(known, f.metadata);
    const point = (id: string, x: number, y: number, meta: Record<string, unknown> | null) => {
      const picked = m.pickFields(meta, fields);
      return { id, x: round(x), y: round(y), ...(picked ? { metadata: picked } : {}) };
    };
    const erased = service.erased(r, collection);
    const extra: ReturnType<typeof point>[] = [];
    const missing: string[] = [];
    if (q.ids.length) {
      const found = await router.items(r, collection, q.ids, ctx);
      for (const id of q.ids) {
        const it = found.get(id);
        if (!it || erased.has(id)) {
          missing.push(id);
          continue;
        }
        const [x, y] = m.project(f.pca, m.unitIfCosine(it.vector, cosine));
        extra.push(point(id, x, y, it.metadata));
      }
    }
    const fit = f;
    return served(
      {
        space: r.space,
        version: r.version,
        collection,
        metric: cm.metric,
        dims: cm.dims,
        count: cm.count,
        sample: fit.sampled,
        method: 'pca',
        explained: fit.pca.explained.map(round),
        metadataFields: known,
        fields,
        ...(q.points
          ? {
              points: fit.ids.flatMap((id, i) =>
                erased.has(id)
                  ? []
                  : [
                      point(
                        id,
                        fit.coords[i * 2] as number,
                        fit.coords[i * 2 + 1] as number,
                        fit.metadata[i] ?? null,
                      ),
                    ],
              ),
            }
          : {}),
        ...(q.ids.length ? { extra, missing } : {}),
      },
      ctx,
      t0,
    );
  };

  /** A sharded collection's prefix search through the shard slots (each its best, merged). */
  const slotPrefix = async (
    router: ShardRouter,
    r: Resolved,
    collection: string,
    q: { prefix: string; field: string; limit: number },
    ctx: RequestContext,
    t0: number,
  ) => {
    const cm = (await service.manifest(r)).collections[collection] as CollectionManifest;
    const known = cm.metadataFields ?? [];
    if (q.field !== 'id' && !known.includes(q.field))
      throw new BadRequestError(
        `field: ${JSON.stringify(q.field)} never occurs in ${collection} (it has id${known.length ? `, ${known.join(', ')}` : ''})`,
      );
    const erased = service.erased(r, collection);
    const ts = performance.now();
    // Erased items are asked for on top of the limit and left out, so `limit` others still come back.
    const found = await router.prefix(
      r,
      collection,
      { field: q.field, prefix: q.prefix, limit: q.limit + Math.min(erased.size, 1000) },
      ctx,
    );
    const shown = found.hits.filter((h) => !erased.has(h.id));
    ctx.timings.search = performance.now() - ts;
    return served(
      {
        space: r.space,
        version: r.version,
        collection,
        field: q.field,
        prefix: q.prefix,
        metadataFields: known,
        results: shown.slice(0, q.limit).map((h) => ({ id: h.id, value: h.value, metadata: h.metadata })),
        more: found.more || shown.length > q.limit,
      },
      ctx,
      t0,
    );
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
        const { r, collection } = await resolve(params, query);
        const router = await service.slotsFor(r, collection);
        if (router) {
          const fields = query.fields === undefined ? undefined : listParam(query.fields);
          return slotProjection(
            router,
            r,
            collection,
            { sample, points, ids, ...(fields ? { fields } : {}) },
            ctx,
            t0,
          );
        }
        const [c, { projections, project, unitIfCosine, pickFields, scalarFields }] = await Promise.all([
          service.collection(r, collection, ctx),
          maths(),
        ]);
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
        const { r, collection } = await resolve(params, query);
        const router = await service.slotsFor(r, collection);
        if (router) return slotPrefix(router, r, collection, { prefix: query.prefix, field, limit }, ctx, t0);
        const [c, { prefixIndexes, flatOf, refOf }] = await Promise.all([
          service.collection(r, collection, ctx),
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
