import { Worker } from 'node:worker_threads';
import type { Metric } from '../core/release';

/**
 * Exact top-k for a sample of rows against all rows, split over worker threads: the quality gate's
 * baseline, which on 1M × 64 is ~13 GFLOP and would otherwise hold one core for many seconds.
 * Vectors must already be normalised for cosine (distance = 1 − dot).
 */
const WORKER_SOURCE = `
const { parentPort, workerData: w } = require('node:worker_threads');
const data = new Float32Array(w.buffer, 0, w.rows * w.dims);
const out = new Int32Array(w.queries.length * w.k).fill(-1);
for (let qi = 0; qi < w.queries.length; qi++) {
  const q = w.queries[qi], qo = q * w.dims;
  const bestD = new Float64Array(w.k).fill(Infinity), bestR = new Int32Array(w.k).fill(-1);
  for (let r = 0; r < w.rows; r++) {
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
}
parentPort.postMessage(out);
`;

export async function exactNeighbours(
  buffer: SharedArrayBuffer,
  rows: number,
  dims: number,
  metric: Metric,
  queries: number[],
  k: number,
  threads: number,
): Promise<Int32Array[]> {
  const n = Math.max(1, Math.min(threads, queries.length));
  const shares = Array.from({ length: n }, (_, i) => queries.filter((_, j) => j % n === i));
  const results = await Promise.all(
    shares.map(
      (share) =>
        new Promise<Int32Array>((resolve, reject) => {
          const w = new Worker(WORKER_SOURCE, {
            eval: true,
            workerData: { buffer, rows, dims, l2: metric === 'l2', queries: share, k },
          });
          w.once('message', (m: Int32Array) => {
            resolve(m);
            void w.terminate();
          });
          w.once('error', reject);
        }),
    ),
  );
  const byQuery = new Map<number, Int32Array>();
  shares.forEach((share, i) => {
    share.forEach((q, j) => {
      byQuery.set(q, (results[i] as Int32Array).subarray(j * k, (j + 1) * k));
    });
  });
  return queries.map((q) => byQuery.get(q) as Int32Array);
}
