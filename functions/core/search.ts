import type { Metric } from './release';

export interface Neighbour {
  id: string;
  distance: number;
}

export interface ScoredResult {
  id: string;
  score: number;
  distance: number;
  metadata?: Record<string, unknown> | null;
}

/** Higher score is more similar: 1 − distance for cosine and ip, −distance for l2. */
export function scoreOf(metric: Metric, distance: number): number {
  return metric === 'l2' ? -distance : 1 - distance;
}

/** Best first, ties broken by id so answers are deterministic across segments and runs. */
export function compareNeighbours(a: Neighbour, b: Neighbour): number {
  if (a.distance !== b.distance) return a.distance - b.distance;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** Merges per-segment neighbour lists into the k best overall. */
export function mergeNeighbours<T extends Neighbour>(lists: T[][], k: number): T[] {
  if (lists.length === 1) {
    // One list already in order (one segment's search, ties by id included): its first k, unsorted.
    const one = lists[0] ?? [];
    let sorted = true;
    for (let i = 1; i < one.length && sorted; i++)
      sorted = compareNeighbours(one[i - 1] as T, one[i] as T) <= 0;
    if (sorted) return one.slice(0, k);
  }
  const all = lists.length === 1 ? [...(lists[0] ?? [])] : lists.flat();
  all.sort(compareNeighbours);
  return all.slice(0, k);
}

export function normalise(v: ArrayLike<number>): Float32Array {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += (v[i] as number) * (v[i] as number);
  const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
  const out = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = (v[i] as number) * inv;
  return out;
}

/**
 * `normalise` as a plain array (what hnswlib-node's searchKnn takes): the same float32 values, written
 * straight into an array, without a Float32Array and Array.from's iteration over it (~3 µs at 128 dims).
 */
export function normalisedArray(v: ArrayLike<number>): number[] {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += (v[i] as number) * (v[i] as number);
  const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
  const out = new Array<number>(v.length);
  for (let i = 0; i < v.length; i++) out[i] = Math.fround((v[i] as number) * inv);
  return out;
}

/** hnswlib's distance for a metric; cosine expects both vectors already normalised. */
export function distance(metric: Metric, a: ArrayLike<number>, b: ArrayLike<number>): number {
  let acc = 0;
  if (metric === 'l2') {
    for (let i = 0; i < a.length; i++) {
      const d = (a[i] as number) - (b[i] as number);
      acc += d * d;
    }
    return acc;
  }
  for (let i = 0; i < a.length; i++) acc += (a[i] as number) * (b[i] as number);
  return 1 - acc;
}

/**
 * Exact k-nearest search over flat row-major vectors: the baseline for recall, for tests, and for
 * very selective filters where HNSW's callback costs more than a scan.
 */
export function bruteForce(
  metric: Metric,
  dims: number,
  vectors: Float32Array,
  ids: readonly string[],
  query: ArrayLike<number>,
  k: number,
  allow?: (row: number) => boolean,
): Neighbour[] {
  const q = metric === 'cosine' ? normalise(query) : query;
  const labels = Int32Array.from({ length: ids.length }, (_, i) => i);
  return exactOverLabels(metric, dims, vectors, labels, q, k, allow, ids).map((h) => ({
    id: ids[h.label] as string,
    distance: h.distance,
  }));
}

/** |A ∩ B| / k for two top-k id lists (ids only; see tieAwareOverlap for lists that carry distances). */
export function overlapAt(a: readonly string[], b: readonly string[], k: number): number {
  if (k === 0) return 1;
  const set = new Set(a.slice(0, k));
  let hit = 0;
  for (const id of b.slice(0, k)) if (set.has(id)) hit++;
  return hit / Math.min(k, Math.max(a.length, b.length, 1));
}

/**
 * How far apart two distances may be and still count as a tie: 1e-6 absolute below 1, 1e-6 relative
 * above (ann-benchmarks' convention of a small ε on the k-th distance). Items with identical vectors
 * have bit-identical distances; ε only absorbs summation-order rounding, so a genuinely different
 * neighbour is never within it in practice.
 */
export const TIE_EPSILON = 1e-6;

export function tieTolerance(d: number): number {
  return TIE_EPSILON * Math.max(1, Math.abs(d));
}

export function sameDistance(a: number, b: number): boolean {
  return Math.abs(a - b) <= tieTolerance(Math.max(Math.abs(a), Math.abs(b)));
}

/**
 * recall@k counting ties: `got` are the exact distances (to the query) of the items a search returned,
 * `truth` the exact k nearest distances, ascending. A returned item is a hit when its distance is at most
 * the exact k-th distance + ε, so an item exactly as near as one of the true k is never a miss; one that
 * is genuinely further away still is. Only the first k of `got` count; the result is hits / min(k, |truth|).
 */
export function tieAwareRecall(got: readonly number[], truth: readonly number[], k: number): number {
  const n = Math.min(k, truth.length);
  if (n === 0) return 1;
  const kth = truth[n - 1] as number;
  const limit = kth + tieTolerance(kth);
  let hits = 0;
  for (const d of got.slice(0, k)) if (d <= limit) hits++;
  return Math.min(hits, n) / n;
}

/**
 * overlap@k of two neighbour lists that carry distances (each to the query item in the version the list
 * came from), counting tied neighbours as equivalent: first every item of B whose id is in A is matched
 * to it; then the remaining items of A and B, each in ascending distance, are paired greedily when their
 * distances are the same within ε (sameDistance). Each item of A is matched at most once. The result is
 * matched / min(k, longer list), as overlapAt; with no ties it equals overlapAt.
 */
export function tieAwareOverlap(a: readonly Neighbour[], b: readonly Neighbour[], k: number): number {
  if (k === 0) return 1;
  return matchNeighbours(a.slice(0, k), b.slice(0, k)).shared / Math.min(k, Math.max(a.length, b.length, 1));
}

/**
 * The matching behind tieAwareOverlap: how many items are shared, and which of A and B were left
 * unmatched (in their lists' order) — the neighbours a diff calls removed and added.
 */
export function matchNeighbours(
  a: readonly Neighbour[],
  b: readonly Neighbour[],
): { shared: number; onlyA: Neighbour[]; onlyB: Neighbour[] } {
  const inB = new Set(b.map((n) => n.id));
  const inA = new Set(a.map((n) => n.id));
  const restA = a.filter((n) => !inB.has(n.id));
  const restB = b.filter((n) => !inA.has(n.id));
  let shared = b.length - restB.length;
  const byDistance = (x: Neighbour, y: Neighbour) => x.distance - y.distance;
  const sa = restA.map((n, i) => ({ n, i })).sort((x, y) => byDistance(x.n, y.n));
  const sb = restB.map((n, i) => ({ n, i })).sort((x, y) => byDistance(x.n, y.n));
  const usedA = new Set<number>();
  const usedB = new Set<number>();
  let i = 0;
  let j = 0;
  while (i < sa.length && j < sb.length) {
    const x = sa[i] as { n: Neighbour; i: number };
    const y = sb[j] as { n: Neighbour; i: number };
    if (sameDistance(x.n.distance, y.n.distance)) {
      usedA.add(x.i);
      usedB.add(y.i);
      shared++;
      i++;
      j++;
    } else if (x.n.distance < y.n.distance) i++;
    else j++;
  }
  return {
    shared,
    onlyA: restA.filter((_, idx) => !usedA.has(idx)),
    onlyB: restB.filter((_, idx) => !usedB.has(idx)),
  };
}

export interface LabelHit {
  label: number;
  distance: number;
}

/** Whether hit `a` ranks after hit `b`: larger distance, or the same distance and the larger id. */
function worse(a: LabelHit, b: LabelHit, ids: readonly string[] | undefined): boolean {
  if (a.distance !== b.distance) return a.distance > b.distance;
  if (!ids) return a.label > b.label;
  const x = ids[a.label] as string;
  const y = ids[b.label] as string;
  return x > y;
}

/**
 * The k best hits seen so far, as a bounded max-heap (the worst kept hit on top): each candidate costs
 * O(1) when it cannot enter and O(log k) when it can, whatever the ties. Ties are broken by id (the
 * smaller id string, by code units, wins; by label when no ids are given), the same rule as
 * `compareNeighbours`, so a scan, a graph search and a merge across segments agree.
 */
export class TopK {
  private readonly heap: LabelHit[] = [];
  constructor(
    private readonly k: number,
    private readonly ids?: readonly string[],
  ) {}

  get size(): number {
    return this.heap.length;
  }

  /** Offers one candidate; returns whether it was kept. */
  offer(label: number, distance: number): boolean {
    const h = this.heap;
    if (this.k <= 0) return false;
    if (h.length < this.k) {
      h.push({ label, distance });
      this.up(h.length - 1);
      return true;
    }
    const top = h[0] as LabelHit;
    const cand = { label, distance };
    if (!worse(top, cand, this.ids)) return false;
    h[0] = cand;
    this.down(0);
    return true;
  }

  /** The kept hits, best first. */
  sorted(): LabelHit[] {
    const ids = this.ids;
    return [...this.heap].sort((a, b) => (worse(a, b, ids) ? 1 : worse(b, a, ids) ? -1 : 0));
  }

  private up(i: number): void {
    const h = this.heap;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!worse(h[i] as LabelHit, h[p] as LabelHit, this.ids)) return;
      [h[i], h[p]] = [h[p] as LabelHit, h[i] as LabelHit];
      i = p;
    }
  }

  private down(i: number): void {
    const h = this.heap;
    const n = h.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && worse(h[l] as LabelHit, h[m] as LabelHit, this.ids)) m = l;
      if (r < n && worse(h[r] as LabelHit, h[m] as LabelHit, this.ids)) m = r;
      if (m === i) return;
      [h[i], h[m]] = [h[m] as LabelHit, h[i] as LabelHit];
      i = m;
    }
  }
}

/**
 * Exact k-nearest over chosen rows (labels) of a flat row-major array — the scan used when a filter
 * or exclusion allows so few items that HNSW's filter callback would cost more. `query` must already
 * be normalised for cosine (the rows of a cosine index are). `ids` (by label) break ties: the smaller
 * id wins. O(n·dims + n·log k) whatever the ties.
 */
export function exactOverLabels(
  metric: Metric,
  dims: number,
  vectors: Float32Array,
  labels: ArrayLike<number>,
  query: ArrayLike<number>,
  k: number,
  allow?: (label: number) => boolean,
  ids?: readonly string[],
): LabelHit[] {
  const best = new TopK(k, ids);
  const l2 = metric === 'l2';
  const q = Float64Array.from(query as ArrayLike<number>);
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i] as number;
    if (allow && !allow(label)) continue;
    const off = label * dims;
    let acc = 0;
    if (l2) {
      for (let d = 0; d < dims; d++) {
        const x = (vectors[off + d] as number) - (q[d] as number);
        acc += x * x;
      }
    } else {
      for (let d = 0; d < dims; d++) acc += (vectors[off + d] as number) * (q[d] as number);
      acc = 1 - acc;
    }
    best.offer(label, acc);
  }
  return best.sorted();
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
