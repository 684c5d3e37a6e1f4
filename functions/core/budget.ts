/**
 * The work budget (contract: "Work budget"): no request can make an instance search for long. Each
 * search is planned against per-search limits, and every request — one query, a batch, a diff — has
 * one budget of estimated search work that its searches draw on. A request that would exceed a limit
 * is a 400 naming it, before the work is done, never a long stall.
 */
import { BadRequestError } from './errors';

export const LIMITS = Object.freeze({
  /** `ef` above this (or above a segment's item count) buys nothing: it is clamped, silently. */
  efCeiling: 4096,
  /** Rows one exact scan may visit. */
  scanRows: 200_000,
  /** Nodes one filtered graph search may be estimated to visit (each a filter callback). */
  filterVisits: 40_000,
  /** Estimated search work of one request, in work units (1 unit ≈ 1 µs of search on the reference machine). */
  requestWork: 50_000,
  /** A diff (an analysis route: two searches per sampled item) has twice a request's budget. */
  diffWork: 100_000,
});

/**
 * The cost model behind the units (measured by `npm run bench:query` and bench/hostile.ts on the
 * 2-core reference machine, docs/performance.md): a graph search costs about GRAPH_NS_PER_EF_DIM per
 * ef per dimension, an exact scan EXACT_NS_PER_DIM per row per dimension, a filtered graph search
 * HNSW_NS_PER_VISIT per visited node (a JavaScript callback plus a distance).
 */
export const GRAPH_NS_PER_EF_DIM = 12;
export const EXACT_NS_PER_DIM = 4;
export const HNSW_NS_PER_VISIT = 2000;

/** What any search costs besides its distances: planning, merging and building k results (25 units + k/2). */
export const SEARCH_BASE_UNITS = 25;
export const searchUnits = (k: number) => SEARCH_BASE_UNITS + Math.ceil(k / 2);
export const graphUnits = (ef: number, dims: number) => Math.ceil((ef * dims * GRAPH_NS_PER_EF_DIM) / 1000);
export const scanUnits = (rows: number, dims: number) => Math.ceil((rows * dims * EXACT_NS_PER_DIM) / 1000);
export const filterUnits = (visits: number) => Math.ceil((visits * HNSW_NS_PER_VISIT) / 1000);

/** The effective ef of a search: what was asked (or the collection's default), at most the ceiling and the count, at least k. */
export function effectiveEf(ef: number, k: number, count: number): number {
  return Math.max(Math.min(ef, LIMITS.efCeiling, count), Math.min(k, count), 1);
}

/** A request over a limit of the work budget; a batch or diff that hits it fails as a whole. */
export class BudgetExceededError extends BadRequestError {
  static override readonly errorName: string = 'BudgetExceededError';
  constructor(limit: keyof typeof LIMITS, detail: string) {
    super(detail, { extras: { limit, max: LIMITS[limit] } });
  }
}

/** One request's budget of search work; each search charges it before it runs. */
export class WorkBudget {
  used = 0;
  constructor(
    readonly limit: number = LIMITS.requestWork,
    private readonly name: 'requestWork' | 'diffWork' = 'requestWork',
  ) {}

  /** Refuses, without charging, work that would not fit what is left of the budget. */
  ensure(units: number, what: string): void {
    if (this.used + units > this.limit) this.refuse(units, what);
  }

  /**
   * Charges `units` when they fit and answers true; else charges nothing and answers false (the caller
   * then calls `charge` with its description, which refuses): the hot path builds no description.
   */
  take(units: number): boolean {
    if (this.used + units > this.limit) return false;
    this.used += units;
    return true;
  }

  charge(units: number, what: string): void {
    this.ensure(units, what);
    this.used += units;
  }

  private refuse(units: number, what: string): never {
    throw new BudgetExceededError(
      this.name,
      `work budget: ${what} would bring this request's estimated search work to ${this.used + units} units, over the limit of ${this.limit} per request (contract: "Work budget"); ask for fewer or smaller searches (k, ef, batch queries, diff sample)`,
    );
  }
}
