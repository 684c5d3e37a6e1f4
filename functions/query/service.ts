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
import {
  type BatchEntry,
  batchEntrySchema,
  compileFilter,
  MAX_BATCH_RESULTS,
  MAX_EF,
  type Predicate,
  type SearchParams,
  zodDetail,
  zodErrors,
} from '../core/query';
import {
  exactOverLabels,
  type LabelHit,
  mergeNeighbours,
  normalise,
  type ScoredResult,
  scoreOf,
} from '../core/search';
import {
  type LoadedCollection,
  type LoadedSegment,
  type LoadReport,
  type SnapshotCache,
  segmentVectors,
} from '../snapshot/cache';
import { segmentFilters } from './filter-index';

/** Per-request timing parts, reported in Server-Timing and logs. */
export type Timings = Record<string, number>;

/** What one request holds while it runs: its timings, the collections it uses (never evicted meanwhile). */
export interface RequestContext {
  timings: Timings;
  held: (() => void)[];
  /** Whether every collection the request used was already in memory. */
  cacheHit: boolean;
}

export function requestContext(): RequestContext {
  return { timings: {}, held: [], cacheHit: true };
}

export interface Resolved {
  space: string;
  version: string;
  generation?: number;
}

export interface SearchAnswer {
  space: string;
  version: string;
  collection: string;
  target?: string;
  id?: string;
  results: ScoredResult[];
}

export type BatchOutcome = { ok: true; answer: SearchAnswer } | { ok: false; error: VicinityError };

export interface ServedInfo {
  space: string;
  version: string;
  collection?: string;
  k?: number;
  cacheHit: boolean;
}

/** Up to this many excluded items in a segment, asking HNSW for k + that many beats a filter callback. */
const WIDEN_LIMIT = 256;

/**
 * The exact-scan / filtered-HNSW crossover, measured by `npm run bench:query` (docs/performance.md,
 * "filter crossover") on this 2-core machine. A filtered HNSW search visits about ef / s nodes at
 * selectivity s, each a JavaScript callback plus a distance (HNSW_NS_PER_VISIT); an exact scan costs
 * EXACT_NS_PER_DIM per dimension of each allowed item. So with `allowed` items of n, the scan wins when
 * allowed · dims · EXACT_NS_PER_DIM < HNSW_NS_PER_VISIT · ef · n / allowed.
 */
export const HNSW_NS_PER_VISIT = 2000;
export const EXACT_NS_PER_DIM = 4;

export function exactIsCheaper(allowed: number, n: number, dims: number, ef: number): boolean {
  if (allowed <= 0) return true;
  return allowed * allowed * dims * EXACT_NS_PER_DIM < HNSW_NS_PER_VISIT * ef * n;
}

interface Hit {
  id: string;
  distance: number;
  seg: LoadedSegment;
  label: number;
}

export class QueryService {
  private readonly pointers = new Map<string, { pointer: Pointer; at: number }>();
  private readonly lastGood = new Map<string, string>();

  constructor(
    private readonly deps: {
      registry: Registry;
      cache: SnapshotCache;
      pointerTtlMs: number;
      log: Log;
      onLoad?: (what: { space: string; version: string; collection: string } & LoadReport) => void;
      onServed?: (what: ServedInfo) => void;
    },
  ) {}

  /** The pointer, from a cache trusted for pointerTtlMs; never moves back to a generation older than one seen. */
  async pointer(space: string, strong = false): Promise<Pointer> {
    const cached = this.pointers.get(space);
    if (!strong && cached && Date.now() - cached.at < this.deps.pointerTtlMs) return cached.pointer;
    const fresh = await this.deps.registry.getPointer(space, strong);
    const keep = cached && cached.pointer.generation > fresh.generation ? cached.pointer : fresh;
    this.pointers.set(space, { pointer: keep, at: Date.now() });
    return keep;
  }

  /** Resolves the one version a request will read, once. */
  async resolve(space: string, params: Pick<SearchParams, 'version' | 'consistency'>): Promise<Resolved> {
    assertName('space', space);
    if (params.version) {
      const v = await this.deps.registry.getVersion(space, params.version);
      if (!v || v.status === 'DELETED') {
        throw new NotFoundError(
          `Space ${space} has no version ${params.version}${v ? ' (its snapshot was deleted)' : ''}`,
        );
      }
      if (v.status !== 'READY')
        throw new NotFoundError(`Version ${params.version} of space ${space} is ${v.status}, not READY`);
      return { space, version: v.version };
    }
    const p = await this.pointer(space, params.consistency === 'strong');
    if (!p.version) {
      const any = await this.deps.registry.listVersions(space, 1);
      throw new NotFoundError(
        any.versions.length ? `Space ${space} has no active version yet` : `Unknown space ${space}`,
      );
    }
    return { space, version: p.version, generation: p.generation };
  }

  /** A collection of the resolved version, held for the rest of the request. */
  async collection(r: Resolved, name: string, ctx: RequestContext): Promise<LoadedCollection> {
    assertName('collection', name);
    const manifest = await this.deps.cache.manifest(r.space, r.version);
    if (!Object.hasOwn(manifest.collections, name)) {
      throw new NotFoundError(
        `Space ${r.space} version ${r.version} has no collection ${name} (it has ${Object.keys(manifest.collections).join(', ')})`,
        { extras: { version: r.version } },
      );
    }
    const t0 = performance.now();
    const held = await this.deps.cache.collection(r.space, r.version, name);
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
    return held.collection;
  }

  /**
   * Runs `fn` on the one version the request resolves to. When the active version's snapshot cannot be
   * served (checksum or load failure) an unpinned request is answered from the last version this
   * instance served for the space — never a mix — and the broken one is only a 503 for pinned requests.
   */
  private async onVersion<T>(
    space: string,
    params: Pick<SearchParams, 'version' | 'consistency'>,
    ctx: RequestContext,
    fn: (r: Resolved) => Promise<T>,
  ): Promise<T> {
    try {
      const r = await this.resolve(space, params);
      try {
        const out = await fn(r);
        if (!params.version) {
          const before = this.lastGood.get(space);
          this.lastGood.set(space, r.version);
          // The pointer moved and the new version serves: the old one's memory goes (its files stay for a rollback).
          if (before && before !== r.version) this.deps.cache.drop(space, before);
        }
        return out;
      } catch (err) {
        // A cold instance has served nothing yet: the pointer's previous version is the one that was serving.
        const fallback =
          this.lastGood.get(space) ?? (r.generation ? (await this.pointer(space)).previous : undefined);
        if (
          !(err instanceof SnapshotUnavailableError) ||
          params.version ||
          !fallback ||
          fallback === r.version
        )
          throw err;
        this.deps.log.warn('active snapshot unavailable; serving the last good version', {
          space,
          version: fallback,
          broken: r.version,
        });
        return await fn({ space, version: fallback });
      }
    } finally {
      for (const release of ctx.held.splice(0)) release();
    }
  }

  async similar(
    space: string,
    collection: string,
    rawId: string,
    params: SearchParams,
    ctx: RequestContext,
  ): Promise<SearchAnswer> {
    const id = assertItemId(rawId);
    const answer = await this.onVersion(space, params, ctx, (r) =>
      this.similarOn(r, collection, id, params, ctx),
    );
    this.served(answer, collection, params.k, ctx);
    return answer;
  }

  private async similarOn(
    r: Resolved,
    collection: string,
    id: string,
    params: Omit<SearchParams, 'version' | 'consistency'>,
    ctx: RequestContext,
  ): Promise<SearchAnswer> {
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
      const seenField = (await this.deps.cache.manifest(r.space, r.version)).seenField;
      if (!seenField)
        throw new BadRequestError(
          `excludeSeen: release ${r.version} of ${r.space} names no seenField, so there is nothing to exclude`,
        );
      const seen = seg.meta?.[ref.label]?.[seenField];
      if (Array.isArray(seen)) for (const s of seen) exclude.add(String(s));
    }
    const results = await this.timedSearch(target, vector, params, exclude, ctx);
    return { space: r.space, version: r.version, collection, target: target.name, id, results };
  }

  async query(
    space: string,
    collection: string,
    vector: number[],
    params: SearchParams,
    ctx: RequestContext,
  ): Promise<SearchAnswer> {
    const answer = await this.onVersion(space, params, ctx, (r) =>
      this.queryOn(r, collection, vector, params, ctx),
    );
    this.served(answer, collection, params.k, ctx);
    return answer;
  }

  private async queryOn(
    r: Resolved,
    collection: string,
    vector: number[],
    params: Omit<SearchParams, 'version' | 'consistency'>,
    ctx: RequestContext,
  ): Promise<SearchAnswer> {
    if (params.target !== undefined) {
      throw new BadRequestError(
        `target: applies to item queries; a vector query searches the collection it is sent to (${collection})`,
      );
    }
    const c = await this.collection(r, collection, ctx);
    if (vector.length !== c.manifest.dims) {
      throw new BadRequestError(
        `vector has ${vector.length} values, collection ${collection} has ${c.manifest.dims} dims`,
      );
    }
    const results = await this.timedSearch(c, vector, params, new Set(params.exclude), ctx);
    return { space: r.space, version: r.version, collection, results };
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
    const parsed = body.queries.map((q): { entry: BatchEntry } | { error: VicinityError } => {
      const r = batchEntrySchema.safeParse(q);
      return r.success
        ? { entry: r.data }
        : {
            error: new BadRequestError(zodDetail(r.error, 'query'), {
              extras: { errors: zodErrors(r.error) },
            }),
          };
    });
    const total = parsed.reduce((a, p) => a + ('entry' in p ? p.entry.k : 0), 0);
    if (total > MAX_BATCH_RESULTS) {
      throw new BadRequestError(
        `a batch asks for at most ${MAX_BATCH_RESULTS} results in all; these queries ask for ${total}`,
      );
    }
    const out = await this.onVersion(space, body, ctx, async (r) => {
      const outcomes: BatchOutcome[] = [];
      for (const p of parsed) {
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
          if (err instanceof SnapshotUnavailableError || !(err instanceof VicinityError)) throw err;
          outcomes.push({ ok: false, error: err });
        }
      }
      return { space: r.space, version: r.version, outcomes };
    });
    this.deps.onServed?.({ space, version: out.version, k: total, cacheHit: ctx.cacheHit });
    return out;
  }

  private served(answer: SearchAnswer, collection: string, k: number, ctx: RequestContext): void {
    this.deps.onServed?.({
      space: answer.space,
      version: answer.version,
      collection,
      k,
      cacheHit: ctx.cacheHit,
    });
  }

  private async timedSearch(
    c: LoadedCollection,
    vector: number[],
    params: Omit<SearchParams, 'version' | 'consistency'>,
    exclude: Set<string>,
    ctx: RequestContext,
  ): Promise<ScoredResult[]> {
    const t0 = performance.now();
    const results = await this.search(c, vector, params, exclude);
    ctx.timings.search = (ctx.timings.search ?? 0) + performance.now() - t0;
    return results;
  }

  /**
   * The k nearest allowed items over every segment, merged. Exclusions and filters never shorten the
   * answer while k items qualify: HNSW is asked for more (or widened), and an exact scan of the allowed
   * items settles it when that is cheaper or HNSW still came up short.
   */
  async search(
    c: LoadedCollection,
    vector: number[],
    params: Omit<SearchParams, 'version' | 'consistency'>,
    exclude: Set<string>,
  ): Promise<ScoredResult[]> {
    const { k } = params;
    const ef = params.ef ?? c.manifest.ef;
    const predicate = compileFilter(params.filter, c.manifest.metadataFields);
    const excluded: Set<number>[] = c.segments.map(() => new Set<number>());
    for (const id of exclude) {
      const ref = c.lookup(id);
      if (ref) excluded[ref.segment]?.add(ref.label);
    }
    const lists = await Promise.all(
      c.segments.map((seg, i) =>
        this.searchSegment(c, seg, vector, k, ef, excluded[i] as Set<number>, params, predicate),
      ),
    );
    const metric = c.manifest.metric;
    return mergeNeighbours(lists, k).map((n) => {
      const out: ScoredResult = { id: n.id, score: scoreOf(metric, n.distance), distance: n.distance };
      if (params.includeMetadata) out.metadata = n.seg.meta?.[n.label] ?? null;
      return out;
    });
  }

  private async searchSegment(
    c: LoadedCollection,
    seg: LoadedSegment,
    vector: number[],
    k: number,
    ef: number,
    excluded: Set<number>,
    params: Pick<SearchParams, 'filter'>,
    predicate: Predicate | undefined,
  ): Promise<Hit[]> {
    const hits = (list: LabelHit[]): Hit[] =>
      list.map((h) => ({ id: seg.ids[h.label] as string, distance: h.distance, seg, label: h.label }));
    if (!predicate && excluded.size === 0) return hits(seg.index.search(vector, k, ef));

    const n = seg.ids.length;
    const candidates = predicate && params.filter ? segmentFilters(seg).candidates(params.filter) : undefined;
    // Exact for a one-condition filter or plain exclusions, an upper bound for several conditions.
    const allowed = candidates ? candidates.count : n - excluded.size;
    if (allowed <= 0) return [];
    const allow = (label: number) => !excluded.has(label) && (!predicate || predicate(seg.meta?.[label]));
    const scan = async () => hits(await this.exact(c, seg, vector, k, candidates?.labels(), allow));
    if (allowed <= k || exactIsCheaper(allowed, n, c.manifest.dims, Math.max(ef, k))) return scan();

    const want = Math.min(k, allowed);
    if (!predicate && excluded.size <= WIDEN_LIMIT) {
      const kk = k + excluded.size;
      const got = seg.index
        .search(vector, kk, Math.max(ef, kk))
        .filter((h) => !excluded.has(h.label))
        .slice(0, k);
      if (got.length >= want) return hits(got);
    } else {
      for (const e of [ef, Math.min(MAX_EF, Math.max(ef, k) * 8)]) {
        const got = seg.index.search(vector, k, e, allow);
        if (got.length >= k) return hits(got);
      }
    }
    // HNSW came up short (or fewer than k qualify): the exact scan is the answer either way.
    return scan();
  }

  /** Exact search over a segment's allowed items, from the flat vectors read out of its index file. */
  private async exact(
    c: LoadedCollection,
    seg: LoadedSegment,
    vector: number[],
    k: number,
    labels: Int32Array | undefined,
    allow: (label: number) => boolean,
  ): Promise<LabelHit[]> {
    const dims = c.manifest.dims;
    const fresh = seg.vectors === undefined;
    const vectors = await segmentVectors(seg, dims);
    if (fresh) this.deps.cache.evict();
    const q = c.manifest.metric === 'cosine' ? normalise(vector) : vector;
    const rows = labels ?? Int32Array.from({ length: seg.ids.length }, (_, i) => i);
    return exactOverLabels(c.manifest.metric, dims, vectors, rows, q, k, allow);
  }

  async item(
    space: string,
    collection: string,
    rawId: string,
    includeVector: boolean,
    params: Pick<SearchParams, 'version' | 'consistency'>,
    ctx: RequestContext,
  ) {
    const id = assertItemId(rawId);
    const answer = await this.onVersion(space, params, ctx, async (r) => {
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
        metadata: seg.meta?.[ref.label] ?? null,
        ...(includeVector
          ? {
              vector: seg.index.getVector(ref.label).map(shortestFloat32),
              // hnswlib keeps cosine vectors at unit length: that is what was indexed and compared.
              normalised: c.manifest.metric === 'cosine',
            }
          : {}),
      };
    });
    this.deps.onServed?.({ space, version: answer.version, collection, cacheHit: ctx.cacheHit });
    return answer;
  }
}

/** The shortest decimal that reads back as the same float32 (0.1 rather than 0.10000000149011612). */
export function shortestFloat32(x: number): number {
  const f = Math.fround(x);
  for (let p = 1; p < 10; p++) {
    const d = Number(f.toPrecision(p));
    if (Math.fround(d) === f) return d;
  }
  return f;
}
