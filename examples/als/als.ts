// examples/als/: the implicit-ALS trainer and the Last.fm loader behind `vicinity train-als` and the demo.
// Imports only node and functions/core; used by cli/ and local/demo.ts.
/**
 * Implicit-feedback matrix factorisation by alternating least squares
 * (Hu, Koren, Volinsky: "Collaborative Filtering for Implicit Feedback Datasets", ICDM 2008).
 *
 * For an observation r_ui > 0 the preference is p_ui = 1 with confidence c_ui = 1 + alpha·r_ui
 * (`scaling: 'linear'`) or c_ui = 1 + alpha·log(1 + r_ui/epsilon) (`scaling: 'log'`); every other
 * cell has p = 0, c = 1. The loss is
 *   Σ_{u,i} c_ui (p_ui − x_uᵀy_i)² + λ (Σ_u ‖x_u‖² + Σ_i ‖y_i‖²)
 * and one half-step solves, for every user u (and symmetrically for every item),
 *   (YᵀY + Yᵀ(C_u − I)Y + λI) x_u = Yᵀ C_u p(u)
 * where YᵀY + λI is computed once per half-step, so a row costs O(nnz_u·f² + f³) (Cholesky), or
 * O(nnz_u²·f + nnz_u³) through the Woodbury identity when nnz_u is small against f — both exact.
 * (Conjugate gradient, the other usual choice, was slower here: the long tail of items with a
 * handful of listeners is where Woodbury wins most.)
 *
 * Pure math: no I/O. Float64 internally, Float32Array out, deterministic for a given seed.
 */
import { mulberry32 } from '../../functions/core/random';

/** A sparse matrix in compressed-sparse-row form (row r holds indices/data [indptr[r], indptr[r+1])). */
export interface CsrMatrix {
  rows: number;
  cols: number;
  /** Length rows + 1. */
  indptr: Int32Array;
  /** Column of each stored value, ascending within a row. */
  indices: Int32Array;
  /** The raw observation (e.g. a play count). Values ≤ 0 are treated as unobserved. */
  data: Float64Array;
}

export type ConfidenceScaling = 'linear' | 'log';

export interface AlsOptions {
  /** Latent dimensions (default 64). */
  factors?: number;
  /** Full sweeps, each solving all users then all items (default 15). */
  iterations?: number;
  /** λ, the L2 penalty on every factor vector (default 0.1). */
  regularization?: number;
  /** Confidence scale α (default 2, for log scaling; see ALS_DEFAULTS). */
  alpha?: number;
  /** How raw values become confidence (default 'log'). */
  scaling?: ConfidenceScaling;
  /** ε of log scaling: c = 1 + alpha·log(1 + r/ε) (default 1). */
  epsilon?: number;
  /** PRNG seed for the initial factors (default 42). */
  seed?: number;
  /** Compute the loss after every iteration (costs about one matrix–vector pass; default true). */
  computeLoss?: boolean;
}

export interface AlsProgress {
  iteration: number;
  iterations: number;
  /** The full objective after this iteration, when computeLoss is on. */
  loss?: number;
  elapsedMs: number;
}

export interface AlsResult {
  /** users × factors, row-major. */
  userFactors: Float32Array;
  /** items × factors, row-major. */
  itemFactors: Float32Array;
  factors: number;
  users: number;
  items: number;
  /** The objective after each iteration (when computeLoss is on). */
  lossHistory?: number[];
}

/**
 * Defaults for play counts, chosen on the Last.fm 2k data (20% of each user's artists held out,
 * recall@10 of inner-product recommendations): log confidence 1 + 2·log(1 + r) reached 0.223,
 * while the paper's linear 1 + 40·r reached 0.031 — with counts up to 352,698, one favourite
 * artist outweighs everything else a user played. λ barely mattered (0.1–5 moved it by at most 0.002).
 */
export const ALS_DEFAULTS = Object.freeze({
  factors: 64,
  iterations: 15,
  regularization: 0.1,
  alpha: 2,
  scaling: 'log' as ConfidenceScaling,
  epsilon: 1,
  seed: 42,
  computeLoss: true,
});

type ResolvedOptions = Required<AlsOptions>;

export function resolveAlsOptions(options: AlsOptions = {}): ResolvedOptions {
  const o: ResolvedOptions = { ...ALS_DEFAULTS };
  for (const [k, v] of Object.entries(options)) {
    if (v !== undefined) (o as Record<string, unknown>)[k] = v;
  }
  const positiveInt = (name: string, v: number, max: number) => {
    if (!Number.isInteger(v) || v < 1 || v > max)
      throw new RangeError(`${name} must be an integer in 1..${max}`);
  };
  positiveInt('factors', o.factors, 4096);
  if (!Number.isInteger(o.iterations) || o.iterations < 0 || o.iterations > 10_000) {
    throw new RangeError('iterations must be an integer in 0..10000');
  }
  if (!(o.regularization > 0) || !Number.isFinite(o.regularization)) {
    throw new RangeError('regularization must be a positive number');
  }
  // α > 0 keeps c − 1 > 0 for every positive observation, which is how the solver tells them apart.
  if (!(o.alpha > 0) || !Number.isFinite(o.alpha)) throw new RangeError('alpha must be a positive number');
  if (!(o.epsilon > 0) || !Number.isFinite(o.epsilon))
    throw new RangeError('epsilon must be a positive number');
  if (!Number.isFinite(o.seed)) throw new RangeError('seed must be a number');
  if (o.scaling !== 'linear' && o.scaling !== 'log')
    throw new RangeError("scaling must be 'linear' or 'log'");
  return o;
}

// ---------------------------------------------------------------------------------------------
// Sparse matrices

/**
 * Builds a CSR matrix from (row, col, value) triples. Duplicate cells are summed; columns are
 * sorted within each row.
 */
export function csrFromTriples(
  rows: number,
  cols: number,
  rowIndex: ArrayLike<number>,
  colIndex: ArrayLike<number>,
  values: ArrayLike<number>,
): CsrMatrix {
  const n = rowIndex.length;
  if (colIndex.length !== n || values.length !== n) throw new RangeError('triples must have equal lengths');
  const counts = new Int32Array(rows + 1);
  for (let k = 0; k < n; k++) {
    const r = rowIndex[k]!;
    const c = colIndex[k]!;
    if (!Number.isInteger(r) || r < 0 || r >= rows) throw new RangeError(`row index ${r} out of range`);
    if (!Number.isInteger(c) || c < 0 || c >= cols) throw new RangeError(`column index ${c} out of range`);
    counts[r + 1]!++;
  }
  for (let r = 0; r < rows; r++) counts[r + 1]! += counts[r]!;
  const order = new Int32Array(n);
  const fill = counts.slice(0, rows);
  for (let k = 0; k < n; k++) order[fill[rowIndex[k]!]!++] = k;
  // Sort each row by column, then merge duplicates.
  const indptr = new Int32Array(rows + 1);
  const indices: number[] = [];
  const data: number[] = [];
  for (let r = 0; r < rows; r++) {
    const slice = Array.from(order.subarray(counts[r]!, counts[r + 1]!));
    slice.sort((a, b) => colIndex[a]! - colIndex[b]! || a - b);
    let last = -1;
    for (const k of slice) {
      const c = colIndex[k]!;
      if (c === last) data[data.length - 1]! += values[k]!;
      else {
        indices.push(c);
        data.push(values[k]!);
        last = c;
      }
    }
    indptr[r + 1] = indices.length;
  }
  return { rows, cols, indptr, indices: Int32Array.from(indices), data: Float64Array.from(data) };
}

/** The transpose, still in CSR form (i.e. the CSC form of the input). */
export function transposeCsr(m: CsrMatrix): CsrMatrix {
  const nnz = m.indices.length;
  const indptr = new Int32Array(m.cols + 1);
  for (let k = 0; k < nnz; k++) indptr[m.indices[k]! + 1]!++;
  for (let c = 0; c < m.cols; c++) indptr[c + 1]! += indptr[c]!;
  const fill = indptr.slice(0, m.cols);
  const indices = new Int32Array(nnz);
  const data = new Float64Array(nnz);
  for (let r = 0; r < m.rows; r++) {
    for (let k = m.indptr[r]!; k < m.indptr[r + 1]!; k++) {
      const dst = fill[m.indices[k]!]!++;
      indices[dst] = r;
      data[dst] = m.data[k]!;
    }
  }
  return { rows: m.cols, cols: m.rows, indptr, indices, data };
}

/** c − 1 for every stored value (0 for values ≤ 0, which then contribute nothing). */
export function confidenceWeights(
  data: Float64Array,
  options: Pick<AlsOptions, 'alpha' | 'scaling' | 'epsilon'> = {},
): Float64Array {
  const alpha = options.alpha ?? ALS_DEFAULTS.alpha;
  const scaling = options.scaling ?? ALS_DEFAULTS.scaling;
  const eps = options.epsilon ?? ALS_DEFAULTS.epsilon;
  const out = new Float64Array(data.length);
  for (let k = 0; k < data.length; k++) {
    const r = data[k]!;
    if (!(r > 0)) continue;
    out[k] = scaling === 'log' ? alpha * Math.log1p(r / eps) : alpha * r;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Dense linear algebra

/**
 * Σ x[xo+e]·y[yo+e] for e < n. Four accumulators break the add-latency chain (≈1.3–1.5× faster
 * than one in a micro-benchmark here); the summation order is fixed, so results stay deterministic.
 */
function dot(x: Float64Array, xo: number, y: Float64Array, yo: number, n: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let e = 0;
  for (; e + 3 < n; e += 4) {
    s0 += x[xo + e]! * y[yo + e]!;
    s1 += x[xo + e + 1]! * y[yo + e + 1]!;
    s2 += x[xo + e + 2]! * y[yo + e + 2]!;
    s3 += x[xo + e + 3]! * y[yo + e + 3]!;
  }
  for (; e < n; e++) s0 += x[xo + e]! * y[yo + e]!;
  return s0 + s1 + (s2 + s3);
}

/**
 * In-place Cholesky factorisation of the symmetric positive-definite n×n row-major matrix `a`
 * (only its lower triangle is read). Afterwards the lower triangle holds L with A = L·Lᵀ.
 * Returns false when the matrix is not (numerically) positive definite.
 */
export function choleskyDecompose(a: Float64Array, n: number): boolean {
  for (let j = 0; j < n; j++) {
    const rj = j * n;
    const d = a[rj + j]! - dot(a, rj, a, rj, j);
    if (!(d > 0)) return false;
    const ljj = Math.sqrt(d);
    a[rj + j] = ljj;
    const inv = 1 / ljj;
    for (let i = j + 1; i < n; i++) {
      const ri = i * n;
      a[ri + j] = (a[ri + j]! - dot(a, ri, a, rj, j)) * inv;
    }
  }
  return true;
}

/** Solves L·Lᵀ x = b given the factor from choleskyDecompose; b is overwritten with x. */
export function choleskySubstitute(l: Float64Array, n: number, b: Float64Array): Float64Array {
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    b[i] = (b[i]! - dot(l, ri, b, 0, i)) / l[ri + i]!;
  }
  for (let i = n - 1; i >= 0; i--) {
    let s = b[i]!;
    for (let k = i + 1; k < n; k++) s -= l[k * n + i]! * b[k]!;
    b[i] = s / l[i * n + i]!;
  }
  return b;
}

/** Solves A x = b for symmetric positive-definite A (n×n, row-major); inputs are not modified. */
export function choleskySolve(a: ArrayLike<number>, n: number, b: ArrayLike<number>): Float64Array {
  if (a.length !== n * n || b.length !== n) throw new RangeError('dimension mismatch');
  const l = Float64Array.from(a);
  if (!choleskyDecompose(l, n)) throw new RangeError('matrix is not positive definite');
  return choleskySubstitute(l, n, Float64Array.from(b));
}

/** MᵀM + λI for the rows × f matrix M (row-major). */
export function gramian(m: Float64Array, rows: number, f: number, lambda = 0): Float64Array {
  const g = new Float64Array(f * f);
  for (let r = 0; r < rows; r++) {
    const o = r * f;
    for (let a = 0; a < f; a++) {
      const va = m[o + a]!;
      if (va === 0) continue;
      const ga = a * f;
      for (let b = 0; b <= a; b++) g[ga + b]! += va * m[o + b]!;
    }
  }
  for (let a = 0; a < f; a++) {
    g[a * f + a]! += lambda;
    for (let b = 0; b < a; b++) g[b * f + a] = g[a * f + b]!;
  }
  return g;
}

// ---------------------------------------------------------------------------------------------
// The half-step

export interface SolveSideOptions {
  factors: number;
  regularization: number;
  /**
   * 'auto' (default) picks per row between assembling the f×f system and the
   * Woodbury k×k form by a cost model; 'direct' / 'woodbury' force one (for tests).
   */
  method?: 'auto' | 'direct' | 'woodbury';
}

/**
 * One ALS half-step: for every row r of `m` (e.g. a user), solves
 *   (FᵀF + Fᵀ(C_r − I)F + λI) x_r = Fᵀ C_r p(r)
 * against the fixed factors F (m.cols × f, e.g. the items), writing x_r into `out` (m.rows × f).
 * `weights` holds c − 1 for each stored value of `m` (see confidenceWeights). A row with no
 * positive value gets the zero vector.
 */
export function solveSide(
  m: CsrMatrix,
  weights: Float64Array,
  fixed: Float64Array,
  out: Float64Array,
  options: SolveSideOptions,
): void {
  const f = options.factors;
  if (fixed.length !== m.cols * f || out.length !== m.rows * f) throw new RangeError('factor size mismatch');
  const g = gramian(fixed, m.cols, f, options.regularization);
  solveExact(m, weights, fixed, out, g, f, options.method ?? 'auto');
}

/** Multiply–adds of one row's direct solve: assemble Σ w y yᵀ (lower half), factor, substitute. */
const directCost = (k: number, f: number) => (k * f * f) / 2 + (f * f * f) / 6 + f * f;
/**
 * …and of its Woodbury solve, given G⁻¹y for every fixed row: k×k system, two f×k products. Its
 * scattered row accesses made each multiply–add ~1.4× dearer than the direct path's (measured on
 * Last.fm, f = 32 and 64), hence the 1.5.
 */
const woodburyCost = (k: number, f: number) => 1.5 * ((f * k * k) / 2 + (k * k * k) / 6 + 3 * f * k);

/**
 * Exact solves. Each row's matrix is A = G + U·D·Uᵀ (U: the k fixed vectors the row observed,
 * D: their weights). When k is small against f (most items of a long-tailed catalogue), the
 * Woodbury identity A⁻¹ = G⁻¹ − G⁻¹U (D⁻¹ + UᵀG⁻¹U)⁻¹ UᵀG⁻¹ turns the f×f solve into a k×k one,
 * given P = G⁻¹Fᵀ computed once per half-step; rows with many observations assemble A and
 * factor it directly. Both are exact; the cost model picks per row.
 */
function solveExact(
  m: CsrMatrix,
  weights: Float64Array,
  fixed: Float64Array,
  out: Float64Array,
  g: Float64Array,
  f: number,
  method: 'auto' | 'direct' | 'woodbury',
): void {
  const { indptr, indices } = m;
  let plain = 0;
  let mixed = (f * f * f) / 6 + m.cols * f * f; // factor G once, then G⁻¹y for every fixed row
  for (let r = 0; r < m.rows; r++) {
    const k = indptr[r + 1]! - indptr[r]!;
    if (k === 0) continue;
    const d = directCost(k, f);
    plain += d;
    mixed += Math.min(d, woodburyCost(k, f));
  }
  let p: Float64Array | undefined;
  if (method === 'woodbury' || (method === 'auto' && mixed < plain)) {
    const l = Float64Array.from(g);
    if (!choleskyDecompose(l, f)) throw new Error('ALS: Gram matrix is not positive definite');
    p = Float64Array.from(fixed);
    for (let j = 0; j < m.cols; j++) choleskySubstitute(l, f, p.subarray(j * f, (j + 1) * f));
  }
  const a = new Float64Array(f * f);
  const b = new Float64Array(f);
  let small = new Float64Array(0);
  let t = new Float64Array(0);
  let ut = new Float64Array(0);
  let wut = new Float64Array(0);
  for (let r = 0; r < m.rows; r++) {
    const start = indptr[r]!;
    const end = indptr[r + 1]!;
    const o = r * f;
    let k = 0;
    for (let e = start; e < end; e++) if (weights[e]! !== 0) k++;
    if (k === 0) {
      out.fill(0, o, o + f);
      continue;
    }
    if (p !== undefined && (method === 'woodbury' || woodburyCost(k, f) < directCost(k, f))) {
      if (small.length < k * k) {
        small = new Float64Array(k * k);
        t = new Float64Array(k);
      }
      if (woodburyRow(start, end, k, indices, weights, fixed, p, f, small, t, out, o)) continue;
    }
    // Gather the observed vectors transposed (ut: f × k) and weighted (wut), so that every entry
    // of Σ w y yᵀ is one contiguous dot product of length k.
    if (ut.length < f * k) {
      ut = new Float64Array(f * k);
      wut = new Float64Array(f * k);
    }
    b.fill(0);
    let c = 0;
    for (let e = start; e < end; e++) {
      const w = weights[e]!;
      if (w === 0) continue;
      const y = indices[e]! * f;
      for (let i = 0; i < f; i++) {
        const yi = fixed[y + i]!;
        ut[i * k + c] = yi;
        wut[i * k + c] = w * yi;
        b[i]! += (1 + w) * yi;
      }
      c++;
    }
    for (let i = 0; i < f; i++) {
      const ai = i * f;
      const wi = i * k;
      for (let j = 0; j <= i; j++) a[ai + j] = g[ai + j]! + dot(wut, wi, ut, j * k, k);
    }
    if (!choleskyDecompose(a, f))
      throw new Error(`ALS: normal equations of row ${r} are not positive definite`);
    choleskySubstitute(a, f, b);
    out.set(b, o);
  }
}

/**
 * x = z − Z·M⁻¹·t with Z = G⁻¹U (columns of P), z = Z·c, M = D⁻¹ + UᵀZ, t = UᵀZ·c, c = 1 + w.
 * Returns false (and writes nothing) if M is numerically not positive definite.
 */
function woodburyRow(
  start: number,
  end: number,
  k: number,
  indices: Int32Array,
  weights: Float64Array,
  fixed: Float64Array,
  p: Float64Array,
  f: number,
  mat: Float64Array,
  t: Float64Array,
  out: Float64Array,
  o: number,
): boolean {
  // Active entries in order: a-th active entry ↔ row a of M.
  let ai = 0;
  for (let ea = start; ea < end; ea++) {
    const wa = weights[ea]!;
    if (wa === 0) continue;
    const ya = indices[ea]! * f;
    let bi = 0;
    for (let eb = start; eb <= ea; eb++) {
      if (weights[eb]! === 0) continue;
      const pb = indices[eb]! * f;
      const s = dot(fixed, ya, p, pb, f);
      mat[ai * k + bi] = s;
      mat[bi * k + ai] = s;
      bi++;
    }
    ai++;
  }
  // t = (UᵀZ)·c, then M = UᵀZ + D⁻¹.
  ai = 0;
  for (let ea = start; ea < end; ea++) {
    const wa = weights[ea]!;
    if (wa === 0) continue;
    let s = 0;
    let bi = 0;
    for (let eb = start; eb < end; eb++) {
      const wb = weights[eb]!;
      if (wb === 0) continue;
      s += mat[ai * k + bi]! * (1 + wb);
      bi++;
    }
    t[ai] = s;
    ai++;
  }
  ai = 0;
  for (let ea = start; ea < end; ea++) {
    const wa = weights[ea]!;
    if (wa === 0) continue;
    mat[ai * k + ai]! += 1 / wa;
    ai++;
  }
  if (!choleskyDecompose(mat, k)) return false;
  choleskySubstitute(mat, k, t.subarray(0, k));
  // x = Σ_a (c_a − s_a) P_a
  out.fill(0, o, o + f);
  ai = 0;
  for (let ea = start; ea < end; ea++) {
    const wa = weights[ea]!;
    if (wa === 0) continue;
    const coef = 1 + wa - t[ai]!;
    const pa = indices[ea]! * f;
    for (let i = 0; i < f; i++) out[o + i]! += coef * p[pa + i]!;
    ai++;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Loss

/**
 * The full objective Σ_{u,i} c_ui (p_ui − x_uᵀy_i)² + λ(‖X‖² + ‖Y‖²), computed without touching
 * the dense users × items matrix: Σ_all s² = Σ_u x_uᵀ(YᵀY)x_u, plus a correction per stored value.
 */
export function alsLoss(
  m: CsrMatrix,
  weights: Float64Array,
  userFactors: Float64Array,
  itemFactors: Float64Array,
  f: number,
  lambda: number,
): number {
  const g = gramian(itemFactors, m.cols, f, 0);
  let loss = 0;
  let normX = 0;
  for (let u = 0; u < m.rows; u++) {
    const o = u * f;
    for (let a = 0; a < f; a++) {
      const xa = userFactors[o + a]!;
      normX += xa * xa;
      if (xa === 0) continue;
      const ga = a * f;
      let s = 0;
      for (let b = 0; b < f; b++) s += g[ga + b]! * userFactors[o + b]!;
      loss += xa * s;
    }
    for (let k = m.indptr[u]!; k < m.indptr[u + 1]!; k++) {
      const w = weights[k]!;
      if (w === 0) continue;
      const y = m.indices[k]! * f;
      let s = 0;
      for (let a = 0; a < f; a++) s += userFactors[o + a]! * itemFactors[y + a]!;
      // replace the s² counted above (c = 1, p = 0) by c (1 − s)²
      loss += (1 + w) * (1 - s) * (1 - s) - s * s;
    }
  }
  let normY = 0;
  for (let k = 0; k < itemFactors.length; k++) normY += itemFactors[k]! * itemFactors[k]!;
  return loss + lambda * (normX + normY);
}

// ---------------------------------------------------------------------------------------------
// PRNG and training

export { mulberry32 };

/** Initial factors: normal with standard deviation 0.01, from the seeded PRNG (Box–Muller). */
export function initialFactors(rows: number, f: number, random: () => number): Float64Array {
  const out = new Float64Array(rows * f);
  for (let k = 0; k < out.length; k += 2) {
    const u1 = 1 - random();
    const u2 = random();
    const radius = 0.01 * Math.sqrt(-2 * Math.log(u1));
    out[k] = radius * Math.cos(2 * Math.PI * u2);
    if (k + 1 < out.length) out[k + 1] = radius * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

/**
 * Trains implicit ALS on a users × items matrix of raw observations (e.g. play counts).
 * Each iteration solves all users, then all items. `onProgress` runs after every iteration.
 */
export function trainAls(
  matrix: CsrMatrix,
  options: AlsOptions = {},
  onProgress?: (p: AlsProgress) => void,
): AlsResult {
  const o = resolveAlsOptions(options);
  const f = o.factors;
  const started = performance.now();
  const byUser = matrix;
  const byItem = transposeCsr(matrix);
  const userWeights = confidenceWeights(byUser.data, o);
  const itemWeights = confidenceWeights(byItem.data, o);
  const random = mulberry32(o.seed);
  const itemFactors = initialFactors(matrix.cols, f, random);
  // The first half-step solves the users exactly from the items, so they need no initial values.
  const userFactors = new Float64Array(matrix.rows * f);
  const side: SolveSideOptions = { factors: f, regularization: o.regularization };
  const lossHistory: number[] = [];
  for (let it = 1; it <= o.iterations; it++) {
    solveSide(byUser, userWeights, itemFactors, userFactors, side);
    solveSide(byItem, itemWeights, userFactors, itemFactors, side);
    let loss: number | undefined;
    if (o.computeLoss) {
      loss = alsLoss(byUser, userWeights, userFactors, itemFactors, f, o.regularization);
      lossHistory.push(loss);
    }
    onProgress?.({ iteration: it, iterations: o.iterations, loss, elapsedMs: performance.now() - started });
  }
  const result: AlsResult = {
    userFactors: Float32Array.from(userFactors),
    itemFactors: Float32Array.from(itemFactors),
    factors: f,
    users: matrix.rows,
    items: matrix.cols,
  };
  if (o.computeLoss) result.lossHistory = lossHistory;
  return result;
}
