/**
 * `GET /v1/spaces/{space}/diff?from&to&sample&k&top&collection&target`: how much the neighbour lists of
 * two READY versions differ (core/diff.ts does the arithmetic). The CLI's `diff` and the explorer page
 * both read this route, so they show the same numbers.
 */
import { json, serverTiming } from '../common/http';
import { DIFF_QUERY_KEYS, parseDiffQuery } from '../common/params';
import type { Route } from '../common/router';
import { effectiveEf, graphUnits, LIMITS, searchUnits, WorkBudget } from '../core/budget';
import {
  type CollectionDiff,
  type DiffAnswer,
  describeDiff,
  type ItemDiff,
  type Labelled,
  labelOf,
  type NeighbourPair,
  strideSample,
  summariseDiff,
} from '../core/diff';
import { NotFoundError, UnprocessableError } from '../core/errors';
import { assertName, assertVersion } from '../core/names';
import { compatibilityDiffs } from '../core/pointer';
import type { Registry } from '../core/ports';
import type { CollectionReport, VersionRecord } from '../core/version';
import type { LoadedCollection } from '../snapshot/cache';
import { type RequestContext, type Resolved, withRequest } from './context';
import type { SearchOptions } from './search-plan';
import type { QueryService } from './service';

function metadataOf(c: LoadedCollection, id: string): Record<string, unknown> | null | undefined {
  const ref = c.lookup(id);
  return ref ? c.segments[ref.segment]?.meta?.[ref.label] : undefined;
}

function labelled(c: LoadedCollection, id: string): Labelled {
  const label = labelOf(metadataOf(c, id));
  return label === undefined ? { id } : { id, label };
}

/** Every id of a loaded collection, in snapshot order (segment by segment). */
function* idsOf(c: LoadedCollection): Generator<string> {
  for (const s of c.segments) yield* s.ids;
}

/** The k nearest of `id` (from `source`) in `target`, best first, the item itself left out, with distances. */
async function neighbours(
  service: QueryService,
  source: LoadedCollection,
  target: LoadedCollection,
  id: string,
  params: SearchOptions,
  budget: WorkBudget,
): Promise<{ ids: string[]; distances: number[] }> {
  const ref = source.lookup(id);
  if (!ref) return { ids: [], distances: [] };
  const vector = (source.segments[ref.segment] as LoadedCollection['segments'][number]).index.getVector(
    ref.label,
  );
  const exclude = new Set<string>(target === source ? [id] : []);
  const results = await service.search(target, vector, params, exclude, budget);
  return { ids: results.map((r) => r.id), distances: results.map((r) => r.distance) };
}

function shape(r: CollectionReport | undefined) {
  return r ? { count: r.count, dims: r.dims, metric: r.metric } : null;
}

export function diffRoute(service: QueryService, registry: Registry): Route {
  return {
    method: 'GET',
    path: '/v1/spaces/{space}/diff',
    query: DIFF_QUERY_KEYS,
    handler: withRequest((ctx, { params, query }) => {
      ctx.budget = new WorkBudget(LIMITS.diffWork, 'diffWork');
      return diff(service, registry, params, query, ctx);
    }),
  };
}

async function diff(
  service: QueryService,
  registry: Registry,
  params: Record<string, string>,
  query: Record<string, string | undefined>,
  ctx: RequestContext,
) {
  const t0 = performance.now();
  const timings = ctx.timings;
  const space = assertName('space', params.space);
  const p = parseDiffQuery(query);
  const to = assertVersion(p.to);
  const from = p.from === undefined ? undefined : assertVersion(p.from);
  if (p.collection !== undefined) assertName('collection', p.collection);
  if (p.target !== undefined) assertName('collection', p.target);
  // Unpinned `from` is the active version, read fresh: the usual question is "active vs candidate".
  const [fromR, toR] = await Promise.all([
    service.resolve(space, { version: from, consistency: 'strong' }),
    service.resolve(space, { version: to, consistency: 'eventual' }),
  ]);
  const [fromRec, toRec] = (await Promise.all([
    registry.getVersion(space, fromR.version),
    registry.getVersion(space, toR.version),
  ])) as [VersionRecord, VersionRecord];
  const fromCols = fromRec?.collections ?? {};
  const toCols = toRec?.collections ?? {};
  const common = Object.keys(fromCols).filter((c) => Object.hasOwn(toCols, c));
  const missing = (c: string) =>
    !(Object.hasOwn(fromCols, c) && Object.hasOwn(toCols, c))
      ? new NotFoundError(
          `Collection ${c} is not in both versions (${fromR.version} has ${Object.keys(fromCols).join(', ') || 'none'}; ${toR.version} has ${Object.keys(toCols).join(', ') || 'none'})`,
        )
      : undefined;
  for (const c of [p.collection, p.target]) {
    const err = c === undefined ? undefined : missing(c);
    if (err) throw err;
  }
  const names = p.collection !== undefined ? [p.collection] : common;
  const search: SearchOptions = { k: p.k, exclude: [], excludeSeen: false, includeMetadata: false };
  const same = fromR.version === toR.version;
  // Refused before any search when the sampled searches alone would go over the request's work budget.
  let estimate = 0;
  for (const name of names) {
    const col = toCols[p.target ?? name] ?? fromCols[p.target ?? name];
    const pairs = Math.min(p.sample, fromCols[name]?.count ?? 0, toCols[name]?.count ?? 0);
    const ef = effectiveEf(Math.max(col?.ef ?? 0, p.k + 1), p.k + 1, col?.count ?? 0);
    estimate += (same ? 1 : 2) * pairs * (searchUnits(p.k) + graphUnits(ef, col?.dims ?? 0));
  }
  ctx.budget.ensure(estimate, `a diff of ${names.length} collection(s), ${p.sample} items sampled, k ${p.k}`);

  const load = async (r: Resolved, name: string) => service.collection(r, name, ctx);
  const collections: CollectionDiff[] = [];
  for (const name of names) {
    const targetName = p.target ?? name;
    const [fromSrc, toSrc] = await Promise.all([load(fromR, name), load(toR, name)]);
    const [fromTgt, toTgt] =
      targetName === name
        ? [fromSrc, toSrc]
        : await Promise.all([load(fromR, targetName), load(toR, targetName)]);
    for (const [src, tgt, v] of [
      [fromSrc, fromTgt, fromR.version],
      [toSrc, toTgt, toR.version],
    ] as const) {
      if (src.manifest.dims !== tgt.manifest.dims) {
        throw new UnprocessableError(
          `In ${v}, collection ${tgt.name} has ${tgt.manifest.dims} dims and ${src.name} has ${src.manifest.dims}: they cannot be compared`,
        );
      }
    }
    const s0 = performance.now();
    const both: string[] = [];
    for (const id of idsOf(fromSrc)) if (toSrc.lookup(id)) both.push(id);
    const pairs: NeighbourPair[] = [];
    for (const id of strideSample(both, p.sample)) {
      const a = await neighbours(service, fromSrc, fromTgt, id, search, ctx.budget);
      // A version against itself: the same lists, searched once.
      const b = same ? a : await neighbours(service, toSrc, toTgt, id, search, ctx.budget);
      pairs.push({ id, from: a.ids, to: b.ids, fromDistances: a.distances, toDistances: b.distances });
    }
    const summary = summariseDiff(pairs, p.k, p.top);
    timings.search = (timings.search ?? 0) + performance.now() - s0;
    const { mostChanged, ...numbers } = summary;
    collections.push({
      collection: name,
      ...(targetName !== name ? { target: targetName } : {}),
      from: shape(fromCols[name]),
      to: shape(toCols[name]),
      inBoth: both.length,
      onlyFrom: fromSrc.manifest.count - both.length,
      onlyTo: toSrc.manifest.count - both.length,
      ...numbers,
      mostChanged: mostChanged.map((d: ItemDiff) => ({
        ...labelled(toSrc, d.id),
        overlap: d.overlap,
        removed: d.removed.map((id) => labelled(fromTgt, id)),
        added: d.added.map((id) => labelled(toTgt, id)),
      })),
      text: describeDiff(targetName === name ? name : `${name} → ${targetName}`, summary, p.k, both.length),
    });
  }

  const incompatibilities = compatibilityDiffs(fromCols, toCols);
  const body: DiffAnswer = {
    space,
    from: fromR.version,
    to: toR.version,
    k: p.k,
    sample: p.sample,
    compatible: incompatibilities.length === 0,
    incompatibilities,
    collections,
    summary: [
      ...collections.map((c) => c.text),
      ...(incompatibilities.length
        ? [
            `${toR.version} is not shape-compatible with ${fromR.version} (${incompatibilities.join('; ')}): activating one over the other needs force`,
          ]
        : []),
    ].join('\n'),
  };
  timings.total = performance.now() - t0;
  return json(200, body, { 'vicinity-version': toR.version, 'server-timing': serverTiming(timings) });
}
