/** Deterministic synthetic embeddings: Gaussian clusters, L2-normalised (not uniform noise). */
import { mulberry32 } from '../functions/core/random';

export { mulberry32 };

export function gaussian(rand: () => number): number {
  const u = Math.max(rand(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

export interface ClusteredData {
  vectors: Float32Array;
  cluster: Int32Array;
  centres: Float32Array;
}

/** n vectors of `dims` around `clusters` random centres, spread `noise`, each normalised to unit length. */
export function clusteredVectors(
  n: number,
  dims: number,
  clusters: number,
  seed: number,
  noise = 0.35,
): ClusteredData {
  const rand = mulberry32(seed);
  const centres = new Float32Array(clusters * dims);
  for (let i = 0; i < centres.length; i++) centres[i] = gaussian(rand);
  const vectors = new Float32Array(n * dims);
  const cluster = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    const c = Math.floor(rand() * clusters);
    cluster[r] = c;
    let norm = 0;
    for (let d = 0; d < dims; d++) {
      const v = (centres[c * dims + d] as number) + noise * gaussian(rand) * Math.sqrt(dims) * 0.2;
      vectors[r * dims + d] = v;
      norm += v * v;
    }
    const inv = 1 / Math.sqrt(norm || 1);
    for (let d = 0; d < dims; d++) vectors[r * dims + d] = (vectors[r * dims + d] as number) * inv;
  }
  return { vectors, cluster, centres };
}

export function jsonlRows(
  ids: string[],
  vectors: Float32Array,
  dims: number,
  metadata?: (i: number) => Record<string, unknown> | undefined,
): string {
  const lines: string[] = [];
  for (let i = 0; i < ids.length; i++) {
    const v = Array.from(vectors.subarray(i * dims, (i + 1) * dims), (x) => Number(x.toPrecision(6)));
    const m = metadata?.(i);
    lines.push(JSON.stringify({ id: ids[i], vector: v, ...(m ? { metadata: m } : {}) }));
  }
  return `${lines.join('\n')}\n`;
}
