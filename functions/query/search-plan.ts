import {
  BudgetExceededError,
  EXACT_NS_PER_DIM,
  effectiveEf,
  filterUnits,
  graphUnits,
  HNSW_NS_PER_VISIT,
  LIMITS,
  scanUnits,
  searchUnits,
  WorkBudget,
} from '../core/budget';
import { BadRequestError } from '../core/errors';
import { compileFilter, FLOAT32_MAX, type Predicate, type SearchParams } from '../core/query';
import {
  exactOverLabels,
  type LabelHit,
  mergeNeighbours,
  normalisedArray,
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

export { EXACT_NS_PER_DIM, HNSW_NS_PER_VISIT };

/** The search fields of a request; the version was chosen before planning starts. */
export type SearchOptions = Omit<SearchParams, 'version' | 'consistency'>;

/** The exclusions of a segment nothing is excluded from: never written to. */
const NONE: ReadonlySet<number> = new Set<number>();

/** Up to this many excluded items in a segment, asking HNSW for k + that many beats a filter callback. */
const WIDEN_LIMIT = 256;

/**
 * The exact-scan / filtered-HNSW crossover, measured by `npm run bench:query` (docs/performance.md,
 * "filter crossover") on this 2-core machine. A filtered HNSW search visits about ef / s nodes at
 * selectivity s, each a JavaScript callback plus a distance (HNSW_NS_PER_VISIT); an exact scan costs
 * EXACT_NS_PER_DIM per dimension of each allowed item. So with `allowed` items of n, the scan wins when
 * allowed · dims · EXACT_NS_PER_DIM < HNSW_NS_PER_VISIT · ef · n / allowed.
 */
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

/** A segment's hits with their ids (and where their metadata is). */
function hitsOf(seg: LoadedSegment, list: readonly LabelHit[]): Hit[] {
  const out: Hit[] = new Array(list.length);
  for (let i = 0; i < list.length; i++) {
    const h = list[i] as LabelHit;
    out[i] = { id: seg.ids[h.label] as string, distance: h.distance, seg, label: h.label };
  }
  return out;
}

/** The nodes a filtered graph search is expected to visit: ef / selectivity, the whole segment when fewer than ef qualify. */
export function filteredVisits(allowed: number, n: number, ef: number): number {
  if (allowed < ef) return n;
  return Math.min(n, Math.ceil((ef * n) / allowed));
}

/** A result's distance as a response may carry it: a finite float32, else the query overflowed. */
function assertFiniteDistances(results: readonly { distance: number }[], collection: string): void {
  for (const r of results) {
    if (!(Math.abs(r.distance) <= FLOAT32_MAX)) {
      throw new BadRequestError(
        `vector: its magnitude overflows float32 distances against collection ${collection} (a distance is not a finite float32); scale the vector down`,
      );
    }
  }
}

/**
 * How a collection is searched: per segment, plain HNSW, HNSW widened past exclusions, filtered HNSW,
 * or an exact scan of the allowed items — whichever answers k qualifying items cheapest, within the
 * work budget (core/budget.ts): ef clamped to min(ef, 4096, count), an exact scan of at most
 * LIMITS.scanRows rows, a filtered graph search of at most LIMITS.filterVisits estimated visits, and
 * every search charged to the request's budget before it runs.
 */
export class SearchPlanner {
  constructor(private readonly cache: Pick<SnapshotCache, 'evict'>) {}

  /**
   * `search`, with its time added to the request's `search` timing and its work to the request's budget;
   * answered without a wait when no segment needed one (searchNow).
   */
  timed(
    c: LoadedCollection,
    vector: number[],
    params: SearchOptions,
    exclude: Set<string>,
    ctx: RequestContext,
  ): ScoredResult[] | Promise<ScoredResult[]> {
    const t0 = performance.now();
    const done = () => {
      ctx.timings.search = (ctx.timings.search ?? 0) + performance.now() - t0;
    };
    let got: ScoredResult[] | Promise<ScoredResult[]>;
    try {
      got = this.searchNow(c, vector, params, exclude, ctx.budget);
    } catch (err) {
      done();
      throw err;
    }
    if (got instanceof Promise) return got.finally(done);
    done();
    return got;
  }

  /**
   * The k nearest allowed items over every segment, merged (ties by id: the smaller id wins). Exclusions
   * and filters never shorten the answer while k items qualify: HNSW is asked for more (or widened), and
   * an exact scan of the allowed items settles it when that is cheaper or HNSW still came up short.
   */
  async search(
    c: LoadedCollection,
    vector: number[],
    params: SearchOptions,
    exclude: Set<string>,
    budget: WorkBudget = new WorkBudget(),
  ): Promise<ScoredResult[]> {
    return this.searchNow(c, vector, params, exclude, budget);
  }

  /**
   * `search` answered without a wait when every segment's search is a graph search (the common case);
   * a promise when one needs an exact scan (its vectors may have to be read): the segments after it
   * then run once it is done, in the same order.
   */
  searchNow(
    c: LoadedCollection,
    vector: number[],
    params: SearchOptions,
    exclude: Set<string>,
    budget: WorkBudget = new WorkBudget(),
  ): ScoredResult[] | Promise<ScoredResult[]> {
    const { k } = params;
    const units = searchUnits(k);
    if (!budget.take(units)) budget.charge(units, `a search of ${c.name} (k ${k})`);
    const ef = params.ef ?? c.manifest.ef;
    const predicate = compileFilter(params.filter, c.manifest.metadataFields);
    const segments = c.segments;
    // No exclusions (the common case): no per-segment sets at all (each segment reads the shared NONE).
    let excluded: ReadonlySet<number>[] | undefined;
    if (exclude.size > 0) {
      const sets: ReadonlySet<number>[] = segments.map(() => NONE);
      for (const id of exclude) {
        const ref = c.lookup(id);
        if (!ref) continue;
        const set = sets[ref.segment] === NONE ? new Set<number>() : (sets[ref.segment] as Set<number>);
        set.add(ref.label);
        sets[ref.segment] = set;
      }
      excluded = sets;
    }
    // Cosine: normalised here in float64, so a huge or tiny (but finite float32) vector keeps its direction.
    const q = c.manifest.metric === 'cosine' ? normalisedArray(vector) : vector;
    const lists: Hit[][] = new Array(segments.length);
    const segment = (i: number) =>
      this.searchSegment(
        c,
        segments[i] as LoadedSegment,
        q,
        k,
        ef,
        excluded ? (excluded[i] as ReadonlySet<number>) : NONE,
        params,
        predicate,
        budget,
      );
    for (let i = 0; i < segments.length; i++) {
      // Only an exact scan waits (for the segment's vectors); a graph search answers at once.
      const got = segment(i);
      if (got instanceof Promise) {
        return (async () => {
          lists[i] = await got;
          for (let j = i + 1; j < segments.length; j++) {
            const next = segment(j);
            lists[j] = next instanceof Promise ? await next : next;
          }
          return this.results(c, lists, params);
        })();
      }
      lists[i] = got;
    }
    return this.results(c, lists, params);
  }

  /** The per-segment hits merged into the k best, as results (scores, metadata when asked for). */
  private results(c: LoadedCollection, lists: Hit[][], params: SearchOptions): ScoredResult[] {
    const k = params.k;
    const metric = c.manifest.metric;
    const merged = mergeNeighbours(lists, k);
    assertFiniteDistances(merged, c.name);
    const out: ScoredResult[] = new Array(merged.length);
    // One object literal per shape (no property added afterwards): same fields, same order.
    if (params.includeMetadata) {
      for (let i = 0; i < merged.length; i++) {
        const n = merged[i] as Hit;
        const d = n.distance;
        out[i] = {
          id: n.id,
          score: scoreOf(metric, d),
          distance: d,
          metadata: n.seg.meta?.[n.label] ?? null,
        };
      }
    } else {
      for (let i = 0; i < merged.length; i++) {
        const n = merged[i] as Hit;
        const d = n.distance;
        out[i] = { id: n.id, score: scoreOf(metric, d), distance: d };
      }
    }
    return out;
  }

  /** A plain graph search answers at once; a search that may scan answers a promise. */
  private searchSegment(
    c: LoadedCollection,
    seg: LoadedSegment,
    vector: number[],
    k: number,
    askedEf: number,
    excluded: ReadonlySet<number>,
    params: Pick<SearchParams, 'filter'>,
    predicate: Predicate | undefined,
    budget: WorkBudget,
  ): Hit[] | Promise<Hit[]> {
    const n = seg.ids.length;
    const dims = c.manifest.dims;
    const ef = effectiveEf(askedEf, k, n);
    if (!predicate && excluded.size === 0) {
      const units = graphUnits(ef, dims);
      if (!budget.take(units)) budget.charge(units, `a search of ${c.name}`);
      return hitsOf(seg, seg.index.search(vector, k, ef));
    }
    return this.searchSegmentNarrowed(c, seg, vector, k, ef, excluded, params, predicate, budget);
  }

  /** searchSegment with exclusions or a filter: widened or filtered HNSW, or an exact scan. */
  private async searchSegmentNarrowed(
    c: LoadedCollection,
    seg: LoadedSegment,
    vector: number[],
    k: number,
    ef: number,
    excluded: ReadonlySet<number>,
    params: Pick<SearchParams, 'filter'>,
    predicate: Predicate | undefined,
    budget: WorkBudget,
  ): Promise<Hit[]> {
    const hits = (list: LabelHit[]): Hit[] => hitsOf(seg, list);
    const n = seg.ids.length;
    const dims = c.manifest.dims;
    const where = `a search of ${c.name}`;

    const candidates = predicate && params.filter ? segmentFilters(seg).candidates(params.filter) : undefined;
    // Exact for a one-condition filter or plain exclusions, an upper bound for several conditions.
    const allowed = candidates ? candidates.count : n - excluded.size;
    if (allowed <= 0) return [];
    const allow = (label: number) => !excluded.has(label) && (!predicate || predicate(seg.meta?.[label]));
    const rows = candidates ? candidates.count : n;
    const scanFits = rows <= LIMITS.scanRows;
    const scan = async () => {
      if (!scanFits) {
        throw new BudgetExceededError(
          'scanRows',
          `work budget: ${where} needs an exact scan of ${rows} items, over the limit of ${LIMITS.scanRows} rows per scan (contract: "Work budget"); make the filter more or less selective, or exclude fewer items`,
        );
      }
      budget.charge(scanUnits(rows, dims), `${where} (an exact scan of ${rows} items)`);
      return hits(await this.exact(c, seg, vector, k, candidates?.labels(), allow));
    };
    if (scanFits && (allowed <= k || exactIsCheaper(allowed, n, dims, ef))) return scan();

    const want = Math.min(k, allowed);
    if (!predicate && excluded.size <= WIDEN_LIMIT) {
      const kk = Math.min(k + excluded.size, n);
      const e = Math.max(ef, kk);
      budget.charge(graphUnits(e, dims), where);
      // Not cut to k here: items tied with the k-th are settled by id in mergeNeighbours.
      const got = seg.index.search(vector, kk, e).filter((h) => !excluded.has(h.label));
      if (got.length >= want) return hits(got);
    } else {
      // A second, wider pass only while its expected visits stay within the per-search limit.
      const passes = [ef, effectiveEf(Math.max(ef, k) * 8, k, n)];
      for (const [i, e] of passes.entries()) {
        if (i > 0 && e <= ef) break;
        const visits = filteredVisits(allowed, n, e);
        if (visits > LIMITS.filterVisits) {
          if (i > 0 || scanFits) break;
          throw new BudgetExceededError(
            'filterVisits',
            `work budget: ${where} with this filter or exclusion would visit about ${visits} items, over the limit of ${LIMITS.filterVisits} per filtered search, and an exact scan of ${rows} items is over the limit of ${LIMITS.scanRows} rows (contract: "Work budget")`,
          );
        }
        budget.charge(filterUnits(visits), `${where} (a filtered search visiting about ${visits} items)`);
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
    const rows = labels ?? Int32Array.from({ length: seg.ids.length }, (_, i) => i);
    return exactOverLabels(c.manifest.metric, dims, vectors, rows, vector, k, allow, seg.ids);
  }
}
