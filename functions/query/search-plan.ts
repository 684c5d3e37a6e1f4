import { compileFilter, MAX_EF, type Predicate, type SearchParams } from '../core/query';
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
  type SnapshotCache,
  segmentVectors,
} from '../snapshot/cache';
import type { RequestContext } from './context';
import { segmentFilters } from './filter-index';

/** The search fields of a request; the version was chosen before planning starts. */
export type SearchOptions = Omit<SearchParams, 'version' | 'consistency'>;

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

/**
 * How a collection is searched: per segment, plain HNSW, HNSW widened past exclusions, filtered HNSW,
 * or an exact scan of the allowed items — whichever answers k qualifying items cheapest.
 */
export class SearchPlanner {
  constructor(private readonly cache: Pick<SnapshotCache, 'evict'>) {}

  /** `search`, with its time added to the request's `search` timing. */
  async timed(
    c: LoadedCollection,
    vector: number[],
    params: SearchOptions,
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
    params: SearchOptions,
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
      // Not cut to k here: items tied with the k-th are settled by id in mergeNeighbours.
      const got = seg.index.search(vector, kk, Math.max(ef, kk)).filter((h) => !excluded.has(h.label));
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
    // The flat vectors count against the memory budget: let the cache make room.
    if (fresh) this.cache.evict();
    const q = c.manifest.metric === 'cosine' ? normalise(vector) : vector;
    const rows = labels ?? Int32Array.from({ length: seg.ids.length }, (_, i) => i);
    return exactOverLabels(c.manifest.metric, dims, vectors, rows, q, k, allow);
  }
}
