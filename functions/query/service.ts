import { BudgetExceededError, type WorkBudget } from '../core/budget';
import {
  BadRequestError,
  NotFoundError,
  SnapshotUnavailableError,
  UnprocessableError,
  VicinityError,
} from '../core/errors';
import { assertItemId, assertName } from '../core/names';
import type { Pointer } from '../core/pointer';
import type { Log, Registry } from '../core/ports';
import { type BatchEntry, MAX_BATCH_RESULTS, parseBatchEntries, type SearchParams } from '../core/query';
import { type ScoredResult, shortestFloat32 } from '../core/search';
import type {
  CollectionOptions,
  LoadedCollection,
  LoadedSegment,
  LoadReport,
  SnapshotCache,
} from '../snapshot/cache';
import type { RequestContext, Resolved } from './context';
import { searchable, seenFilter, withErased, withVisibleMetadata } from './erasures';
import { type SearchOptions, SearchPlanner } from './search-plan';
import { localSide } from './shards/local-side';
import { type MissingShard, type ShardRouter, ShardsUnavailableError } from './shards/router';
import { type VersionChoice, VersionResolver } from './versions';

export interface SearchAnswer {
  space: string;
  version: string;
  collection: string;
  target?: string;
  id?: string;
  results: ScoredResult[];
  /** allowPartial on a sharded collection: the shards that did not answer. */
  missingShards?: MissingShard[];
}

export type BatchOutcome = { ok: true; answer: SearchAnswer } | { ok: false; error: VicinityError };

export interface ServedInfo {
  space: string;
  version: string;
  collection?: string;
  k?: number;
  cacheHit: boolean;
}

/**
 * The read use cases (similar, query, batch, item), composed from the version resolver (which version),
 * the snapshot cache (which collection) and the search planner (which neighbours).
 */
export class QueryService {
  private readonly versions: VersionResolver;
  private readonly planner: SearchPlanner;

  constructor(
    private readonly deps: {
      registry: Registry;
      cache: SnapshotCache;
      pointerTtlMs: number;
      log: Log;
      onLoad?: (what: { space: string; version: string; collection: string } & LoadReport) => void;
      onServed?: (what: ServedInfo) => void;
      /** Scatter-gather over the shard slots; absent: sharded collections are searched in-process. */
      shards?: ShardRouter;
      /** See VersionResolver: 0 or absent, requests wait for a new version's load. */
      switchGraceMs?: number;
      /** The clock for pointer and record TTLs and the switch grace (default Date.now). */
      now?: () => number;
    },
  ) {
    this.versions = new VersionResolver({
      registry: deps.registry,
      pointerTtlMs: deps.pointerTtlMs,
      log: deps.log,
      superseded: (space, version) => deps.cache.drop(space, version),
      roles: (space, active, previous) => deps.cache.setRoles(space, active, previous),
      gone: (space, version) => void deps.cache.retire(space, version),
      switchGraceMs: deps.switchGraceMs,
      ...(deps.now ? { now: deps.now } : {}),
      warmer: {
        loaded: (space, version) => deps.cache.loadedNames(space, version),
        load: async (space, version, names) => {
          for (const name of names) {
            const held = await deps.cache.collection(space, version, name);
            held.release();
            const { report } = held;
            if (!report.cached && report.bytes !== undefined)
              deps.onLoad?.({ space, version, collection: name, ...report });
          }
        },
      },
    });
    this.planner = new SearchPlanner(deps.cache);
  }

  pointer(space: string, strong = false): Promise<Pointer> {
    return this.versions.pointer(space, strong);
  }

  resolve(space: string, params: VersionChoice): Promise<Resolved> {
    return this.versions.resolve(space, params);
  }

  /**
   * What answers of `r` may show of metadata: erased ids left out of the release's seen lists (until the
   * purge has rewritten them); undefined when nothing is erased or the release names no seenField.
   */
  async metadataFilter(r: Resolved) {
    if (!r.erasures || r.erasures.ids.size === 0) return undefined;
    const m = await this.deps.cache.manifest(r.space, r.version, r.manifestKey);
    return seenFilter(r.erasures, m.seenField);
  }

  /** `answer` with its results' metadata as answers may show it (at once when nothing is erased). */
  private visible<A extends { results: ScoredResult[] }>(r: Resolved, answer: A): A | Promise<A> {
    // Nothing erased (metadataFilter's own first test): no filter, and no result's metadata to look at.
    if (!r.erasures || r.erasures.ids.size === 0) return answer;
    return this.visibleFiltered(r, answer);
  }

  private async visibleFiltered<A extends { results: ScoredResult[] }>(r: Resolved, answer: A): Promise<A> {
    if (!answer.results.some((x) => x.metadata)) return answer;
    const f = await this.metadataFilter(r);
    return f ? { ...answer, results: withVisibleMetadata(answer.results, f) } : answer;
  }

  /** A search of `c` (a collection opened by `collection`, so erased ids are excluded inside the search). */
  search(
    c: LoadedCollection,
    vector: number[],
    params: SearchOptions,
    exclude: Set<string>,
    budget?: WorkBudget,
  ) {
    return this.planner.search(searchable(c), vector, params, withErased(exclude, c), budget);
  }

  /**
   * `collection` without a wait when the manifest is read and the collection loaded (the same checks
   * and the same hold), else undefined: the caller then asks `collection`.
   */
  private collectionNow(r: Resolved, name: string, ctx: RequestContext): LoadedCollection | undefined {
    const manifest = this.deps.cache.manifestNow(r.space, r.version, r.manifestKey);
    if (!manifest || !Object.hasOwn(manifest.collections, name)) return undefined;
    assertName('collection', name);
    const held = this.deps.cache.collectionNow(r.space, r.version, name, holdOptions(r));
    if (!held) return undefined;
    ctx.held.push(held.release);
    // Erased ids are neither found nor returned, in every version (query/erasures.ts).
    return this.versions.erasures.view(held.collection, r.erasures);
  }

  /** A collection of the resolved version, held for the rest of the request. */
  async collection(r: Resolved, name: string, ctx: RequestContext): Promise<LoadedCollection> {
    assertName('collection', name);
    const manifest = await this.deps.cache.manifest(r.space, r.version, r.manifestKey);
    if (!Object.hasOwn(manifest.collections, name)) {
      throw new NotFoundError(
        `Space ${r.space} version ${r.version} has no collection ${name} (it has ${Object.keys(manifest.collections).join(', ')})`,
        { extras: { version: r.version } },
      );
    }
    const t0 = performance.now();
    const held = await this.deps.cache.collection(r.space, r.version, name, holdOptions(r));
    ctx.held.push(held.release);
    const { report } = held;
    if (!report.cached) {
      ctx.cacheHit = false;
      const t = ctx.timings;
      t.load = (t.load ?? 0) + performance.now() - t0;
      if (report.downloadMs !== undefined) t.download = (t.download ?? 0) + report.downloadMs;
      if (report.verifyMs !== undefined) t.verify = (t.verify ?? 0) + report.verifyMs;
      if (report.readIndexMs !== undefined) t.readIndex = (t.readIndex ?? 0) + report.readIndexMs;
      if (report.parseMs !== undefined) t.parse = (t.parse ?? 0) + report.parseMs;
      if (report.bytes !== undefined)
        this.deps.onLoad?.({ space: r.space, version: r.version, collection: name, ...report });
    }
    // Erased ids are neither found nor returned, in every version (query/erasures.ts).
    return this.versions.erasures.view(held.collection, r.erasures);
  }

  async similar(
    space: string,
    collection: string,
    rawId: string,
    params: SearchParams,
    ctx: RequestContext,
  ): Promise<SearchAnswer> {
    const id = assertItemId(rawId);
    const answer = await this.versions.onVersion(space, params, ctx, (r) =>
      this.similarOn(r, collection, id, params, ctx),
    );
    this.served(answer, collection, params.k, ctx);
    return answer;
  }

  private async similarOn(
    r: Resolved,
    collection: string,
    id: string,
    params: SearchOptions,
    ctx: RequestContext,
  ): Promise<SearchAnswer> {
    const sharded = await this.shardedAnswer(r, collection, params.target ?? collection, (router) => {
      assertNotErased(r, collection, id);
      return router.similar(
        r,
        collection,
        id,
        excludingErased(r, params.target ?? collection, params),
        ctx,
        localSide(this),
      );
    });
    if (sharded) return this.visible(r, { ...sharded, target: params.target ?? collection, id });
    const source = await this.collection(r, collection, ctx);
    const target =
      params.target && params.target !== collection ? await this.collection(r, params.target, ctx) : source;
    const ref = source.lookup(id);
    if (!ref) {
      throw new NotFoundError(
        `No item ${JSON.stringify(id)} in ${r.space}/${collection} (version ${r.version})`,
        {
          extras: { version: r.version },
        },
      );
    }
    if (target.manifest.dims !== source.manifest.dims) {
      throw new UnprocessableError(
        `Collection ${target.name} has ${target.manifest.dims} dims, ${source.name} has ${source.manifest.dims}: they cannot be compared`,
        { extras: { version: r.version } },
      );
    }
    const seg = source.segments[ref.segment] as LoadedSegment;
    const vector = seg.index.getVector(ref.label);
    const exclude = new Set(params.exclude);
    if (target === source) exclude.add(id);
    if (params.excludeSeen) {
      const seenField = (await this.deps.cache.manifest(r.space, r.version, r.manifestKey)).seenField;
      if (!seenField)
        throw new BadRequestError(
          `excludeSeen: release ${r.version} of ${r.space} names no seenField, so there is nothing to exclude`,
        );
      const seen = seg.meta?.[ref.label]?.[seenField];
      if (Array.isArray(seen)) for (const s of seen) exclude.add(String(s));
    }
    const found = this.planner.timed(searchable(target), vector, params, withErased(exclude, target), ctx);
    const results = found instanceof Promise ? await found : found;
    return this.visible(r, {
      space: r.space,
      version: r.version,
      collection,
      target: target.name,
      id,
      results,
    });
  }

  async query(
    space: string,
    collection: string,
    vector: number[],
    params: SearchParams,
    ctx: RequestContext,
  ): Promise<SearchAnswer> {
    const answer = await this.versions.onVersion(space, params, ctx, (r) =>
      this.queryOn(r, collection, vector, params, ctx),
    );
    this.served(answer, collection, params.k, ctx);
    return answer;
  }

  private async queryOn(
    r: Resolved,
    collection: string,
    vector: number[],
    params: SearchOptions,
    ctx: RequestContext,
  ): Promise<SearchAnswer> {
    if (params.target !== undefined) {
      throw new BadRequestError(
        `target: applies to item queries; a vector query searches the collection it is sent to (${collection})`,
      );
    }
    if (this.deps.shards) {
      const sharded = await this.shardedAnswer(r, collection, collection, (router) =>
        router.query(r, collection, vector, excludingErased(r, collection, params), ctx),
      );
      if (sharded) return this.visible(r, sharded);
    }
    const c = this.collectionNow(r, collection, ctx) ?? (await this.collection(r, collection, ctx));
    if (vector.length !== c.manifest.dims) {
      throw new BadRequestError(
        `vector has ${vector.length} values, collection ${collection} has ${c.manifest.dims} dims`,
      );
    }
    const found = this.planner.timed(
      searchable(c),
      vector,
      params,
      withErased(new Set(params.exclude), c),
      ctx,
    );
    const results = found instanceof Promise ? await found : found;
    return this.visible(r, { space: r.space, version: r.version, collection, results });
  }

  /**
   * Up to 100 queries answered from one version: each entry has its own outcome (a malformed entry is
   * its own 400), but a snapshot that cannot be served fails over (or fails) the batch as a whole, so
   * no answer ever mixes versions.
   */
  async batch(
    space: string,
    body: { queries: unknown[]; version?: string; consistency: 'eventual' | 'strong' },
    ctx: RequestContext,
  ): Promise<{ space: string; version: string; outcomes: BatchOutcome[] }> {
    const parsed = await parseBatchEntries(body.queries);
    const total = parsed.reduce((a, p) => a + ('entry' in p ? p.entry.k : 0), 0);
    if (total > MAX_BATCH_RESULTS) {
      throw new BadRequestError(
        `a batch asks for at most ${MAX_BATCH_RESULTS} results in all; these queries ask for ${total}`,
      );
    }
    const out = await this.versions.onVersion(space, body, ctx, async (r) => {
      const outcomes: BatchOutcome[] = [];
      const viaShards = await this.shardedBatch(r, parsed, ctx);
      for (const [i, p] of parsed.entries()) {
        const routed = viaShards.get(i);
        if (routed) {
          outcomes.push(routed);
          continue;
        }
        if ('error' in p) {
          outcomes.push({ ok: false, error: p.error });
          continue;
        }
        const e = p.entry;
        try {
          const answer =
            e.item !== undefined
              ? await this.similarOn(r, e.collection, assertItemId(e.item), e, ctx)
              : await this.queryOn(r, e.collection, e.vector as number[], e, ctx);
          outcomes.push({ ok: true, answer });
        } catch (err) {
          // The batch's work budget is the whole request's: over it, the batch is one 400.
          if (
            err instanceof SnapshotUnavailableError ||
            err instanceof BudgetExceededError ||
            !(err instanceof VicinityError)
          )
            throw err;
          outcomes.push({ ok: false, error: err });
        }
      }
      return { space: r.space, version: r.version, outcomes };
    });
    this.report({ space, version: out.version, k: total, cacheHit: ctx.cacheHit }, ctx);
    return out;
  }

  async item(
    space: string,
    collection: string,
    rawId: string,
    includeVector: boolean,
    params: VersionChoice,
    ctx: RequestContext,
  ) {
    const id = assertItemId(rawId);
    const answer = await this.versions.onVersion(space, params, ctx, async (r) => {
      const router = this.deps.shards;
      const m = router ? await this.deps.cache.manifest(r.space, r.version, r.manifestKey) : undefined;
      if (m && router?.sharded(m, collection)) {
        assertNotErased(r, collection, id);
        const got = await router.item(r, collection, id, ctx);
        return {
          space,
          version: r.version,
          collection,
          id,
          metadata: ((await this.metadataFilter(r)) ?? same)(got.metadata) ?? null,
          ...(includeVector
            ? {
                vector: got.vector.map(shortestFloat32),
                normalised: m.collections[collection]?.metric === 'cosine',
              }
            : {}),
        };
      }
      const c = await this.collection(r, collection, ctx);
      const ref = c.lookup(id);
      if (!ref)
        throw new NotFoundError(
          `No item ${JSON.stringify(id)} in ${space}/${collection} (version ${r.version})`,
          {
            extras: { version: r.version },
          },
        );
      const seg = c.segments[ref.segment] as LoadedSegment;
      return {
        space,
        version: r.version,
        collection,
        id,
        metadata: ((await this.metadataFilter(r)) ?? same)(seg.meta?.[ref.label]) ?? null,
        ...(includeVector
          ? {
              vector: seg.index.getVector(ref.label).map(shortestFloat32),
              // hnswlib keeps cosine vectors at unit length: that is what was indexed and compared.
              normalised: c.manifest.metric === 'cosine',
            }
          : {}),
      };
    });
    this.report({ space, version: answer.version, collection, cacheHit: ctx.cacheHit }, ctx);
    return answer;
  }

  /**
   * The shard router when `collection` of the resolved version is sharded and slot functions are
   * configured (the explore and diff routes then go through the slots and load no shard here).
   */
  async slotsFor(r: Resolved, collection: string): Promise<ShardRouter | undefined> {
    const router = this.deps.shards;
    if (!router) return undefined;
    return router.sharded(await this.deps.cache.manifest(r.space, r.version, r.manifestKey), collection)
      ? router
      : undefined;
  }

  /** The resolved version's manifest (small; the router reads it without loading any collection). */
  manifest(r: Resolved) {
    return this.deps.cache.manifest(r.space, r.version, r.manifestKey);
  }

  /** The ids of `collection` erased as of the request's pointer read. */
  erased(r: Resolved, collection: string): ReadonlySet<string> {
    return erasedOf(r, collection);
  }

  /**
   * Item queries through the shard router (one call per slot for the item lookups, one for the
   * searches), erased ids excluded as on every sharded path: the diff's searches of a sharded space.
   */
  async similarThroughSlots(
    r: Resolved,
    entries: BatchEntry[],
    ctx: RequestContext,
  ): Promise<({ ok: true; results: ScoredResult[] } | { ok: false; error: VicinityError })[]> {
    const router = this.deps.shards as ShardRouter;
    const got = await router.batch(
      r,
      entries.map((e) => excludingErased(r, e.target ?? e.collection, e)),
      ctx,
      localSide(this),
    );
    return got.map((g) => {
      if (!g.ok) return g;
      if (g.answer.missingShards?.length)
        return { ok: false, error: new ShardsUnavailableError(g.answer.missingShards, r.version) };
      return { ok: true, results: g.answer.results };
    });
  }

  /** A sharded collection on either side, with slot functions configured: the router answers. */
  private async shardedAnswer(
    r: Resolved,
    collection: string,
    target: string,
    run: (router: ShardRouter) => Promise<{ results: ScoredResult[]; missingShards?: MissingShard[] }>,
  ): Promise<SearchAnswer | undefined> {
    const router = this.deps.shards;
    if (!router) return undefined;
    const m = await this.deps.cache.manifest(r.space, r.version, r.manifestKey);
    if (!router.sharded(m, collection) && !router.sharded(m, target)) return undefined;
    const a = await run(router);
    return { space: r.space, version: r.version, collection, ...a };
  }

  /** The batch entries that touch a sharded collection, answered by the router in one call per slot. */
  private async shardedBatch(
    r: Resolved,
    parsed: ({ entry: BatchEntry } | { error: VicinityError })[],
    ctx: RequestContext,
  ): Promise<Map<number, BatchOutcome>> {
    const out = new Map<number, BatchOutcome>();
    const router = this.deps.shards;
    if (!router) return out;
    const m = await this.deps.cache.manifest(r.space, r.version, r.manifestKey);
    const picked: { i: number; entry: BatchEntry }[] = [];
    for (const [i, p] of parsed.entries()) {
      if (!('entry' in p && (router.sharded(m, p.entry.collection) || router.sharded(m, p.entry.target))))
        continue;
      const e = p.entry;
      if (e.item !== undefined && erasedOf(r, e.collection).has(e.item)) {
        out.set(i, {
          ok: false,
          error: new NotFoundError(
            `No item ${JSON.stringify(e.item)} in ${r.space}/${e.collection} (version ${r.version})`,
            { extras: { version: r.version } },
          ),
        });
        continue;
      }
      picked.push({ i, entry: excludingErased(r, e.target ?? e.collection, e) });
    }
    if (!picked.length) return out;
    const got = await router.batch(
      r,
      picked.map((p) => p.entry),
      ctx,
      localSide(this),
    );
    const filter = await this.metadataFilter(r);
    picked.forEach(({ i, entry }, j) => {
      const g0 = got[j];
      if (!g0) return;
      const g = g0.ok
        ? { ...g0, answer: { ...g0.answer, results: withVisibleMetadata(g0.answer.results, filter) } }
        : g0;
      out.set(
        i,
        g.ok
          ? {
              ok: true,
              answer: {
                space: r.space,
                version: r.version,
                collection: entry.collection,
                ...(entry.item !== undefined
                  ? { target: entry.target ?? entry.collection, id: entry.item }
                  : {}),
                ...g.answer,
              },
            }
          : g,
      );
    });
    return out;
  }

  private served(answer: SearchAnswer, collection: string, k: number, ctx: RequestContext): void {
    this.report({ space: answer.space, version: answer.version, collection, k, cacheHit: ctx.cacheHit }, ctx);
  }

  /** What the request served: for its access log line (through ctx) and the handler's metrics. */
  private report(s: ServedInfo, ctx: RequestContext): void {
    ctx.logKeys = {
      space: s.space,
      version: s.version,
      ...(s.collection ? { collection: s.collection } : {}),
      ...(s.k !== undefined ? { k: s.k } : {}),
      cache: s.cacheHit ? 'hit' : 'miss',
    };
    this.deps.onServed?.(s);
  }
}

/** How a request holds a collection of its resolved version (pinned, and from which manifest). */
function holdOptions(r: Resolved): CollectionOptions {
  return { pinned: r.pinned === true, ...(r.manifestKey ? { manifestKey: r.manifestKey } : {}) };
}

/**
 * Erasure on the sharded path: the slots know nothing of the erasure list, so the router sends the
 * erased ids of the searched collection as exclusions (k still met) and an erased item is a 404 here.
 */
function erasedOf(r: Resolved, collection: string): ReadonlySet<string> {
  return r.erasures?.ids.get(collection) ?? NO_IDS;
}
const NO_IDS: ReadonlySet<string> = new Set();
const same = <T>(m: T): T => m;

function assertNotErased(r: Resolved, collection: string, id: string): void {
  if (erasedOf(r, collection).has(id))
    throw new NotFoundError(
      `No item ${JSON.stringify(id)} in ${r.space}/${collection} (version ${r.version})`,
      {
        extras: { version: r.version },
      },
    );
}

function excludingErased<P extends { exclude: string[] }>(r: Resolved, collection: string, params: P): P {
  const erased = erasedOf(r, collection);
  return erased.size ? { ...params, exclude: [...new Set([...params.exclude, ...erased])] } : params;
}
