import { Worker } from 'node:worker_threads';
import type { Metric } from '../core/release';

/**
 * Exact top-k for a sample of rows against all rows (each query row itself left out), split over worker
 * threads: the quality gate's baseline, which on 1M × 64 is ~13 GFLOP and would otherwise hold one core
 * for many seconds. Vectors must already be normalised for cosine (distance = 1 − dot). Distances are
 * accumulated in float64 over the float32 rows, as exactDistance computes them, so identical vectors
 * always give bit-identical distances. Among equal distances the earlier row wins.
 */
const WORKER_SOURCE = `
const { parentPort, workerData: w } = require('node:worker_threads');
const data = new Float32Array(w.buffer, 0, w.rows * w.dims);
const out = new Int32Array(w.queries.length * w.k).fill(-1);
const outD = new Float64Array(w.queries.length * w.k).fill(Infinity);
for (let qi = 0; qi < w.queries.length; qi++) {
  const q = w.queries[qi], qo = q * w.dims;
  const bestD = new Float64Array(w.k).fill(Infinity), bestR = new Int32Array(w.k).fill(-1);
  for (let r = 0; r < w.rows; r++) {
    if (r === q) continue;
    const o = r * w.dims; let acc = 0;
    if (w.l2) { for (let d = 0; d < w.dims; d++) { const x = data[o + d] - data[qo + d]; acc += x * x; } }
    else { for (let d = 0; d < w.dims; d++) acc += data[o + d] * data[qo + d]; acc = 1 - acc; }
    if (acc < bestD[w.k - 1]) {
      let j = w.k - 1;
      while (j > 0 && bestD[j - 1] > acc) { bestD[j] = bestD[j - 1]; bestR[j] = bestR[j - 1]; j--; }
      bestD[j] = acc; bestR[j] = r;
    }
  }
  out.set(bestR, qi * w.k);
  outD.set(bestD, qi * w.k);
}
parentPort.postMessage({ rows: out, distances: outD });
`;

export interface ExactList {
  /** Rows, nearest first; −1 past the end when fewer than k other rows exist. */
  rows: Int32Array;
  distances: Float64Array;
}

/** The distance the exact workers compute between two rows of a flat row-major array. */
export function exactDistance(
  vectors: Float32Array,
  dims: number,
  l2: boolean,
  a: number,
  b: number,
): number {
  const oa = a * dims;
  const ob = b * dims;
  let acc = 0;
  if (l2) {
    for (let d = 0; d < dims; d++) {
      const x = (vectors[oa + d] as number) - (vectors[ob + d] as number);
      acc += x * x;
    }
    return acc;
  }
  for (let d = 0; d < dims; d++) acc += (vectors[ob + d] as number) * (vectors[oa + d] as number);
  return 1 - acc;
}

export async function exactNeighbours(
  buffer: SharedArrayBuffer,
  rows: number,
  dims: number,
  metric: Metric,
  queries: number[],
  k: number,
  threads: number,
): Promise<ExactList[]> {
  const n = Math.max(1, Math.min(threads, queries.length));
  const shares = Array.from({ length: n }, (_, i) => queries.filter((_, j) => j % n === i));
  const results = await Promise.all(
    shares.map(
      (share) =>
        new Promise<{ rows: Int32Array; distances: Float64Array }>((resolve, reject) => {
          const w = new Worker(WORKER_SOURCE, {
            eval: true,
            workerData: { buffer, rows, dims, l2: metric === 'l2', queries: share, k },
          });
          w.once('message', (m: { rows: Int32Array; distances: Float64Array }) => {
            resolve(m);
            void w.terminate();
          });
          w.once('error', reject);
        }),
    ),
  );
  const byQuery = new Map<number, ExactList>();
  shares.forEach((share, i) => {
    const r = results[i] as { rows: Int32Array; distances: Float64Array };
    share.forEach((q, j) => {
      byQuery.set(q, {
        rows: r.rows.subarray(j * k, (j + 1) * k),
        distances: r.distances.subarray(j * k, (j + 1) * k),
      });
    });
  });
  return queries.map((q) => byQuery.get(q) as ExactList);
}
