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
  summariseDiff,
} from '../core/diff';
import { NotFoundError, UnprocessableError } from '../core/errors';
import { idHash, sampleByHash } from '../core/id-hash';
import { assertName, assertVersion } from '../core/names';
import { compatibilityDiffs } from '../core/pointer';
import type { Registry } from '../core/ports';
import type { BatchEntry } from '../core/query';
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

/** Whether either collection is sharded in either version, with slot functions to answer it. */
async function throughSlots(service: QueryService, rs: Resolved[], names: string[]): Promise<boolean> {
  for (const r of rs) for (const n of names) if (await service.slotsFor(r, n)) return true;
  return false;
}

const labelledBy = (labels: ReadonlyMap<string, string>, id: string): Labelled => {
  const label = labels.get(id);
  return label === undefined ? { id } : { id, label };
};

/** The diff's sample of the ids in both versions: the `n` with the smallest idHash (ties by id), in that order. */
const hashSample = (both: readonly string[], n: number) =>
  sampleByHash(both, n).map((i) => both[i] as string);

/** How many ids a slot page of a hash walk asks for (at least the sample). */
const HASH_PAGE = 2000;

interface Hashed {
  id: string;
  hash: number;
  label?: string;
}

/** (idHash, id) order: the hash sample's order, the same on every instance. */
const byHash = (a: Hashed, b: Hashed) => a.hash - b.hash || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/**
 * A version's ids of a collection in (idHash, id) order, erased ids left out: from the slots a page at a
 * time when it is sharded (each slot its shards' next `page`, merged — the router loads no shard), from
 * the in-process collection when not.
 */
async function* idsByHash(
  service: QueryService,
  r: Resolved,
  name: string,
  erased: ReadonlySet<string>,
  labels: boolean,
  page: number,
  ctx: RequestContext,
): AsyncGenerator<Hashed> {
  const router = await service.slotsFor(r, name);
  if (!router) {
    const c = await service.collection(r, name, ctx);
    const all: Hashed[] = [];
    for (const id of idsOf(c)) if (!erased.has(id)) all.push({ id, hash: idHash(id) });
    all.sort(byHash);
    for (const h of all) {
      if (labels) {
        const l = labelled(c, h.id).label;
        if (l !== undefined) h.label = l;
      }
      yield h;
    }
    return;
  }
  let after: { hash: number; id: string } | undefined;
  for (;;) {
    const got = await router.sample(
      r,
      name,
      page,
      { exclude: [...erased], labels, ...(after ? { after } : {}) },
      ctx,
    );
    for (const [i, id] of got.ids.entries()) {
      const label = got.labels.get(id);
      yield { id, hash: got.hashes[i] as number, ...(label !== undefined ? { label } : {}) };
    }
    if (got.ids.length < page) return;
    const last = got.ids.length - 1;
    after = { hash: got.hashes[last] as number, id: got.ids[last] as string };
  }
}

/**
 * The ids in both walks: how many, and the first `n` in hash order (the diff's sample) with the second
 * walk's labels. The walks go on until one ends, for the count.
 */
async function intersectByHash(
  from: AsyncGenerator<Hashed>,
  to: AsyncGenerator<Hashed>,
  n: number,
): Promise<{ count: number; ids: string[]; labels: Map<string, string> }> {
  let count = 0;
  const ids: string[] = [];
  const labels = new Map<string, string>();
  let a = await from.next();
  let b = await to.next();
  while (!a.done && !b.done) {
    const d = byHash(a.value, b.value);
    if (d < 0) a = await from.next();
    else if (d > 0) b = await to.next();
    else {
      count++;
      if (ids.length < n) {
        ids.push(b.value.id);
        if (b.value.label !== undefined) labels.set(b.value.id, b.value.label);
      }
      [a, b] = await Promise.all([from.next(), to.next()]);
    }
  }
  return { count, ids, labels };
}

/**
 * One collection's diff through the shard slots, the router loading no shard: a hash sample of the ids
 * in both versions (each slot samples its shards of both, the router keeps the smallest hashes), then
 * each sampled item's neighbours in each version by one batch of item queries per version (one call
 * per slot for the lookups, one for the searches). A source sharded alike in both versions is sampled by
 * the slots (an id lives in the same slot in both); one sharded differently, or in one version only, by
 * walking both versions' ids in hash order; an unsharded source is sampled here. Every way picks the
 * same ids: the `sample` ids in both versions with the smallest id hashes.
 */
async function slotDiff(
  service: QueryService,
  fromR: Resolved,
  toR: Resolved,
  name: string,
  targetName: string,
  p: ReturnType<typeof parseDiffQuery>,
  same: boolean,
  ctx: RequestContext,
): Promise<CollectionDiff> {
  const [fm, tm] = await Promise.all([service.manifest(fromR), service.manifest(toR)]);
  const side = (m: typeof fm, r: Resolved, c: string) => {
    const cm = m.collections[c];
    if (!cm) throw new NotFoundError(`Space ${r.space} version ${r.version} has no collection ${c}`);
    return cm;
  };
  const [fs, ts, ft, tt] = [
    side(fm, fromR, name),
    side(tm, toR, name),
    side(fm, fromR, targetName),
    side(tm, toR, targetName),
  ];
  for (const [src, tgt, v] of [
    [fs, ft, fromR.version],
    [ts, tt, toR.version],
  ] as const) {
    if (src.dims !== tgt.dims)
      throw new UnprocessableError(
        `In ${v}, collection ${targetName} has ${tgt.dims} dims and ${name} has ${src.dims}: they cannot be compared`,
      );
  }
  let inBoth: number;
  let ids: string[];
  let labels: Map<string, string>;
  const erased = new Set([...service.erased(fromR, name), ...service.erased(toR, name)]);
  if (fs.sharding && ts.sharding && fs.sharding.shards === ts.sharding.shards) {
    // The same shard count: an id lives in the same slot in both versions, each slot intersects its own.
    const router = (await service.slotsFor(toR, name)) as NonNullable<
      Awaited<ReturnType<QueryService['slotsFor']>>
    >;
    const sample = await router.sample(
      toR,
      name,
      p.sample,
      { alsoIn: fromR, exclude: [...erased], labels: true },
      ctx,
    );
    inBoth = sample.count;
    ids = sample.ids;
    labels = sample.labels;
  } else if (fs.sharding || ts.sharding) {
    // Sharded differently, or in one version only: walk both versions' ids in hash order (page by page
    // from the slots, or from the in-process collection) and intersect them here.
    const page = Math.max(p.sample, HASH_PAGE);
    const both = await intersectByHash(
      idsByHash(service, fromR, name, erased, false, page, ctx),
      idsByHash(service, toR, name, erased, true, page, ctx),
      p.sample,
    );
    inBoth = both.count;
    ids = both.ids;
    labels = both.labels;
  } else {
    const [fromSrc, toSrc] = await Promise.all([
      service.collection(fromR, name, ctx),
      service.collection(toR, name, ctx),
    ]);
    const both: string[] = [];
    for (const id of idsOf(fromSrc)) if (toSrc.lookup(id)) both.push(id);
    inBoth = both.length;
    ids = hashSample(both, p.sample);
    labels = new Map();
    for (const id of ids) {
      const l = labelled(toSrc, id).label;
      if (l !== undefined) labels.set(id, l);
    }
  }
  const entries = ids.map(
    (id) =>
      ({
        collection: name,
        item: id,
        target: targetName,
        k: p.k,
        exclude: [],
        excludeSeen: false,
        includeMetadata: true,
        allowPartial: false,
      }) as BatchEntry,
  );
  const run = async (r: Resolved) => {
    const got = await service.similarThroughSlots(r, entries, ctx);
    const labelsOf = new Map<string, string>();
    const lists = got.map((g) => {
      if (!g.ok) throw g.error;
      for (const h of g.results) {
        const l = labelOf(h.metadata);
        if (l !== undefined) labelsOf.set(h.id, l);
      }
      return { ids: g.results.map((h) => h.id), distances: g.results.map((h) => h.distance as number) };
    });
    return { lists, labels: labelsOf };
  };
  const a = await run(fromR);
  const b = same ? a : await run(toR);
  const pairs: NeighbourPair[] = ids.map((id, i) => {
    const x = a.lists[i] as { ids: string[]; distances: number[] };
    const y = b.lists[i] as { ids: string[]; distances: number[] };
    return { id, from: x.ids, to: y.ids, fromDistances: x.distances, toDistances: y.distances };
  });
  const summary = summariseDiff(pairs, p.k, p.top);
  const { mostChanged, ...numbers } = summary;
  return {
    collection: name,
    ...(targetName !== name ? { target: targetName } : {}),
    from: { count: fs.count, dims: fs.dims, metric: fs.metric },
    to: { count: ts.count, dims: ts.dims, metric: ts.metric },
    inBoth,
    onlyFrom: fs.count - inBoth,
    onlyTo: ts.count - inBoth,
    ...numbers,
    mostChanged: mostChanged.map((d: ItemDiff) => ({
      ...labelledBy(labels, d.id),
      overlap: d.overlap,
      removed: d.removed.map((id) => labelledBy(a.labels, id)),
      added: d.added.map((id) => labelledBy(b.labels, id)),
    })),
    text: describeDiff(targetName === name ? name : `${name} → ${targetName}`, summary, p.k, inBoth),
  };
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
    const pairs = Math.min(p.sample, fromCols[name]?.count ?? 0, toCols[name]?.count ?? 0);
    // A sharded target is searched shard by shard (each shard's ef at most its share of the items), in
    // each version with that version's shard count.
    const perSearch = (col: CollectionReport | undefined) => {
      const shards = Math.max(col?.shards ?? 1, 1);
      const ef = effectiveEf(Math.max(col?.ef ?? 0, p.k + 1), p.k + 1, Math.ceil((col?.count ?? 0) / shards));
      return shards * (searchUnits(p.k) + graphUnits(ef, col?.dims ?? 0));
    };
    const target = p.target ?? name;
    estimate += pairs * (perSearch(fromCols[target]) + (same ? 0 : perSearch(toCols[target])));
  }
  ctx.budget.ensure(estimate, `a diff of ${names.length} collection(s), ${p.sample} items sampled, k ${p.k}`);

  const load = async (r: Resolved, name: string) => service.collection(r, name, ctx);
  const collections: CollectionDiff[] = [];
  for (const name of names) {
    const targetName = p.target ?? name;
    if (await throughSlots(service, [fromR, toR], [name, targetName])) {
      const s0 = performance.now();
      collections.push(await slotDiff(service, fromR, toR, name, targetName, p, same, ctx));
      timings.search = (timings.search ?? 0) + performance.now() - s0;
      continue;
    }
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
    for (const id of hashSample(both, p.sample)) {
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
