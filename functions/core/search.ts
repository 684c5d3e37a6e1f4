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
  const n = ids.length;
  const best: Neighbour[] = [];
  let worst = Number.POSITIVE_INFINITY;
  for (let r = 0; r < n; r++) {
    if (allow && !allow(r)) continue;
    const off = r * dims;
    let acc = 0;
    if (metric === 'l2') {
      for (let i = 0; i < dims; i++) {
        const d = (vectors[off + i] as number) - (q[i] as number);
        acc += d * d;
      }
    } else {
      for (let i = 0; i < dims; i++) acc += (vectors[off + i] as number) * (q[i] as number);
      acc = 1 - acc;
    }
    if (best.length < k || acc <= worst) {
      best.push({ id: ids[r] as string, distance: acc });
      if (best.length > k * 4 + 16) {
        best.sort(compareNeighbours);
        best.length = k;
        worst = (best[k - 1] as Neighbour).distance;
      }
    }
  }
  best.sort(compareNeighbours);
  return best.slice(0, k);
}

/** |A ∩ B| / k for two top-k id lists. */
export function overlapAt(a: readonly string[], b: readonly string[], k: number): number {
  if (k === 0) return 1;
  const set = new Set(a.slice(0, k));
  let hit = 0;
  for (const id of b.slice(0, k)) if (set.has(id)) hit++;
  return hit / Math.min(k, Math.max(a.length, b.length, 1));
}

export interface LabelHit {
  label: number;
  distance: number;
}

/**
 * Exact k-nearest over chosen rows (labels) of a flat row-major array — the scan used when a filter
 * or exclusion allows so few items that HNSW's filter callback would cost more. `query` must already
 * be normalised for cosine (the rows of a cosine index are).
 */
export function exactOverLabels(
  metric: Metric,
  dims: number,
  vectors: Float32Array,
  labels: ArrayLike<number>,
  query: ArrayLike<number>,
  k: number,
  allow?: (label: number) => boolean,
): LabelHit[] {
  const best: LabelHit[] = [];
  let worst = Number.POSITIVE_INFINITY;
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
    if (best.length < k || acc <= worst) {
      best.push({ label, distance: acc });
      if (best.length >= k * 4 + 16) worst = keepBest(best, k);
    }
  }
  keepBest(best, k);
  return best;
}

/** Sorts and cuts to the k best, keeping any ties with the k-th (the caller breaks them by id); returns the k-th distance. */
function keepBest(best: LabelHit[], k: number): number {
  best.sort((a, b) => a.distance - b.distance);
  if (best.length <= k) return Number.POSITIVE_INFINITY;
  const kth = (best[k - 1] as LabelHit).distance;
  let cut = k;
  while (cut < best.length && (best[cut] as LabelHit).distance === kth) cut++;
  best.length = cut;
  return kth;
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
