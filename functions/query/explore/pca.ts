/** The first two principal axes of a sample (pure maths: no snapshot, no HTTP). */
import { mulberry32 } from '../../core/random';

export interface Pca2 {
  dims: number;
  mean: Float64Array;
  /** Two unit vectors of `dims`, the first two principal axes. */
  axes: [Float64Array, Float64Array];
  /** Share of the sample's total variance along each axis. */
  explained: [number, number];
}

/** Modified Gram–Schmidt on the `l` columns (each of length `len`, stored one after another). */
function orthonormalise(cols: Float64Array, len: number, l: number): void {
  for (let j = 0; j < l; j++) {
    const cj = cols.subarray(j * len, (j + 1) * len);
    for (let p = 0; p < j; p++) {
      const cp = cols.subarray(p * len, (p + 1) * len);
      let dot = 0;
      for (let i = 0; i < len; i++) dot += (cj[i] as number) * (cp[i] as number);
      for (let i = 0; i < len; i++) cj[i] = (cj[i] as number) - dot * (cp[i] as number);
    }
    let norm = 0;
    for (let i = 0; i < len; i++) norm += (cj[i] as number) ** 2;
    norm = Math.sqrt(norm);
    if (norm < 1e-12) {
      // A degenerate direction: replace it by a unit vector, re-orthogonalised on the next pass.
      cj.fill(0);
      cj[j % len] = 1;
      continue;
    }
    for (let i = 0; i < len; i++) cj[i] = (cj[i] as number) / norm;
  }
}

/** Eigen-decomposition of a small symmetric matrix (cyclic Jacobi): values descending, vectors as columns. */
export function symmetricEigen(a: Float64Array, m: number): { values: number[]; vectors: Float64Array } {
  const A = Float64Array.from(a);
  const V = new Float64Array(m * m);
  for (let i = 0; i < m; i++) V[i * m + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < m; p++) for (let q = p + 1; q < m; q++) off += (A[p * m + q] as number) ** 2;
    if (off < 1e-22) break;
    for (let p = 0; p < m; p++) {
      for (let q = p + 1; q < m; q++) {
        const apq = A[p * m + q] as number;
        if (Math.abs(apq) < 1e-300) continue;
        const app = A[p * m + p] as number;
        const aqq = A[q * m + q] as number;
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < m; k++) {
          const akp = A[k * m + p] as number;
          const akq = A[k * m + q] as number;
          A[k * m + p] = c * akp - s * akq;
          A[k * m + q] = s * akp + c * akq;
        }
        for (let k = 0; k < m; k++) {
          const apk = A[p * m + k] as number;
          const aqk = A[q * m + k] as number;
          A[p * m + k] = c * apk - s * aqk;
          A[q * m + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < m; k++) {
          const vkp = V[k * m + p] as number;
          const vkq = V[k * m + q] as number;
          V[k * m + p] = c * vkp - s * vkq;
          V[k * m + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: m }, (_, i) => i).sort(
    (x, y) => (A[y * m + y] as number) - (A[x * m + x] as number),
  );
  const vectors = new Float64Array(m * m);
  order.forEach((src, dst) => {
    for (let k = 0; k < m; k++) vectors[k * m + dst] = V[k * m + src] as number;
  });
  return { values: order.map((i) => A[i * m + i] as number), vectors };
}

/**
 * The first two principal axes of `n` rows of `dims` (row-major), by randomised subspace iteration
 * (Halko et al.) with a fixed seed: O(n·dims) per pass, no dims×dims covariance, deterministic.
 */
export function pca2(rows: Float64Array, n: number, dims: number, iterations = 12): Pca2 {
  if (n < 1 || dims < 1) throw new Error('pca2 needs at least one row and one dimension');
  const mean = new Float64Array(dims);
  for (let r = 0; r < n; r++)
    for (let d = 0; d < dims; d++) mean[d] = (mean[d] as number) + (rows[r * dims + d] as number);
  for (let d = 0; d < dims; d++) mean[d] = (mean[d] as number) / n;
  const X = new Float64Array(n * dims);
  let total = 0;
  for (let r = 0; r < n; r++) {
    for (let d = 0; d < dims; d++) {
      const v = (rows[r * dims + d] as number) - (mean[d] as number);
      X[r * dims + d] = v;
      total += v * v;
    }
  }
  const l = Math.min(dims, n, 8);
  const rand = mulberry32(0x5eed);
  // Z: dims × l (columns stored one after another), a random start.
  const Z = new Float64Array(l * dims);
  for (let i = 0; i < Z.length; i++) Z[i] = rand() - 0.5;
  orthonormalise(Z, dims, l);
  const Y = new Float64Array(l * n);
  const multiplyXZ = () => {
    // Y = X · Z  (n × l)
    for (let j = 0; j < l; j++) {
      const zj = Z.subarray(j * dims, (j + 1) * dims);
      for (let r = 0; r < n; r++) {
        let s = 0;
        const off = r * dims;
        for (let d = 0; d < dims; d++) s += (X[off + d] as number) * (zj[d] as number);
        Y[j * n + r] = s;
      }
    }
  };
  const multiplyXtY = () => {
    // Z = Xᵀ · Y  (dims × l)
    Z.fill(0);
    for (let j = 0; j < l; j++) {
      const zj = Z.subarray(j * dims, (j + 1) * dims);
      for (let r = 0; r < n; r++) {
        const y = Y[j * n + r] as number;
        if (y === 0) continue;
        const off = r * dims;
        for (let d = 0; d < dims; d++) zj[d] = (zj[d] as number) + y * (X[off + d] as number);
      }
    }
  };
  for (let it = 0; it < iterations; it++) {
    multiplyXZ();
    orthonormalise(Y, n, l);
    multiplyXtY();
    orthonormalise(Z, dims, l);
  }
  // Rayleigh–Ritz in the subspace spanned by Z: the l×l matrix Zᵀ XᵀX Z, from W = X Z.
  multiplyXZ();
  const G = new Float64Array(l * l);
  for (let a = 0; a < l; a++) {
    for (let b = a; b < l; b++) {
      let s = 0;
      for (let r = 0; r < n; r++) s += (Y[a * n + r] as number) * (Y[b * n + r] as number);
      G[a * l + b] = s;
      G[b * l + a] = s;
    }
  }
  const { values, vectors } = symmetricEigen(G, l);
  const axis = (k: number): Float64Array => {
    const out = new Float64Array(dims);
    if (k >= l) return out;
    for (let j = 0; j < l; j++) {
      const w = vectors[j * l + k] as number;
      const zj = Z.subarray(j * dims, (j + 1) * dims);
      for (let d = 0; d < dims; d++) out[d] = (out[d] as number) + w * (zj[d] as number);
    }
    // A fixed sign: the largest loading is positive, so the picture does not flip between calls.
    let big = 0;
    for (let d = 0; d < dims; d++) if (Math.abs(out[d] as number) > Math.abs(out[big] as number)) big = d;
    if ((out[big] as number) < 0) for (let d = 0; d < dims; d++) out[d] = -(out[d] as number);
    return out;
  };
  const share = (k: number) =>
    total > 0 && k < values.length ? Math.max(0, values[k] as number) / total : 0;
  return { dims, mean, axes: [axis(0), axis(1)], explained: [share(0), share(1)] };
}

/** Coordinates of one vector on the two axes. */
export function project(p: Pca2, v: ArrayLike<number>): [number, number] {
  let x = 0;
  let y = 0;
  for (let d = 0; d < p.dims; d++) {
    const c = (v[d] as number) - (p.mean[d] as number);
    x += c * (p.axes[0][d] as number);
    y += c * (p.axes[1][d] as number);
  }
  return [x, y];
}

/** A cosine index compares unit vectors, so the projection does too. */
export function unitIfCosine(v: number[], cosine: boolean): number[] {
  if (!cosine) return v;
  let n = 0;
  for (const x of v) n += x * x;
  n = Math.sqrt(n);
  return n > 0 ? v.map((x) => x / n) : v;
}
