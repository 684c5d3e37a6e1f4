import { describe, expect, it } from 'vitest';
import {
  type AlsOptions,
  alsLoss,
  type CsrMatrix,
  choleskyDecompose,
  choleskySolve,
  confidenceWeights,
  csrFromTriples,
  mulberry32,
  solveSide,
  trainAls,
  transposeCsr,
} from '../../examples/als/als';

/** Plain Gaussian elimination with partial pivoting on a dense copy: the obvious reference solver. */
function gaussSolve(a: number[][], b: number[]): number[] {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i]!]);
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(m[r]![col]!) > Math.abs(m[pivot]![col]!)) pivot = r;
    [m[col], m[pivot]] = [m[pivot]!, m[col]!];
    for (let r = col + 1; r < n; r++) {
      const factor = m[r]![col]! / m[col]![col]!;
      for (let c = col; c <= n; c++) m[r]![c]! -= factor * m[col]![c]!;
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = m[r]![n]!;
    for (let c = r + 1; c < n; c++) s -= m[r]![c]! * x[c]!;
    x[r] = s / m[r]![r]!;
  }
  return x;
}

// 6 users × 5 items of play counts; user 5 has no positive value (a 0 and a negative row).
const TRIPLES: [number, number, number][] = [
  [0, 0, 3],
  [0, 2, 10],
  [0, 4, 1],
  [1, 1, 7],
  [1, 2, 2],
  [2, 0, 1],
  [2, 3, 25],
  [2, 4, 4],
  [3, 1, 1],
  [3, 3, 2],
  [3, 4, 9],
  [3, 0, 5],
  [4, 2, 30],
  [5, 1, 0],
  [5, 3, -2],
];
const USERS = 6;
const ITEMS = 5;
const F = 4;
const LAMBDA = 0.3;

function tinyMatrix(): CsrMatrix {
  return csrFromTriples(
    USERS,
    ITEMS,
    TRIPLES.map((t) => t[0]),
    TRIPLES.map((t) => t[1]),
    TRIPLES.map((t) => t[2]),
  );
}

function dense(): number[][] {
  const r = Array.from({ length: USERS }, () => new Array<number>(ITEMS).fill(0));
  for (const [u, i, v] of TRIPLES) r[u]![i]! += v;
  return r;
}

function randomFactors(rows: number, seed: number): Float64Array {
  const rnd = mulberry32(seed);
  return Float64Array.from({ length: rows * F }, () => rnd() - 0.5);
}

/** (Yᵀ C_u Y + λI) x_u = Yᵀ C_u p(u), built literally from the full diagonal C_u — no YᵀY trick. */
function directUserSolve(r: number[][], y: Float64Array, confidence: (value: number) => number): number[][] {
  return r.map((row) => {
    const c = row.map((v) => (v > 0 ? confidence(v) : 1)); // diagonal of C_u
    const p = row.map((v) => (v > 0 ? 1 : 0));
    const a = Array.from({ length: F }, (_, i) =>
      Array.from({ length: F }, (_, j) => {
        let s = i === j ? LAMBDA : 0;
        for (let it = 0; it < ITEMS; it++) s += y[it * F + i]! * c[it]! * y[it * F + j]!;
        return s;
      }),
    );
    const b = Array.from({ length: F }, (_, i) => {
      let s = 0;
      for (let it = 0; it < ITEMS; it++) s += y[it * F + i]! * c[it]! * p[it]!;
      return s;
    });
    return gaussSolve(a, b);
  });
}

function rowsOf(x: ArrayLike<number>, rows: number): number[][] {
  return Array.from({ length: rows }, (_, r) => Array.from({ length: F }, (_, a) => x[r * F + a]!));
}

describe('Cholesky', () => {
  const A = [4, 12, -16, 12, 37, -43, -16, -43, 98];

  it('factors a known matrix into its known L', () => {
    const l = Float64Array.from(A);
    expect(choleskyDecompose(l, 3)).toBe(true);
    const lower = [l[0], l[3], l[4], l[6], l[7], l[8]];
    expect(lower).toEqual([2, 6, 1, -8, 5, 3]);
  });

  it('solves A x = b', () => {
    // b = A · [1, -2, 3]
    const x = choleskySolve(A, 3, [4 - 24 - 48, 12 - 74 - 129, -16 + 86 + 294]);
    expect(Array.from(x).map((v) => Math.round(v * 1e9) / 1e9)).toEqual([1, -2, 3]);
  });

  it('agrees with Gaussian elimination on a random SPD system', () => {
    const n = 7;
    const rnd = mulberry32(3);
    const m = Array.from({ length: n * n }, () => rnd() - 0.5);
    const a: number[] = [];
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) {
        let s = i === j ? 0.5 : 0;
        for (let k = 0; k < n; k++) s += m[i * n + k]! * m[j * n + k]!;
        a.push(s);
      }
    const b = Array.from({ length: n }, () => rnd());
    const expected = gaussSolve(
      Array.from({ length: n }, (_, i) => a.slice(i * n, (i + 1) * n)),
      b,
    );
    const got = choleskySolve(a, n, b);
    for (let i = 0; i < n; i++) expect(got[i]).toBeCloseTo(expected[i]!, 10);
  });

  it('refuses a matrix that is not positive definite', () => {
    expect(choleskyDecompose(Float64Array.from([1, 2, 2, 1]), 2)).toBe(false);
    expect(() => choleskySolve([1, 2, 2, 1], 2, [1, 1])).toThrow(/positive definite/);
  });
});

describe('sparse matrices', () => {
  it('sums duplicate cells, sorts columns, and transposes', () => {
    const m = csrFromTriples(2, 3, [1, 0, 1, 1], [2, 1, 0, 2], [1, 2, 3, 4]);
    expect(Array.from(m.indptr)).toEqual([0, 1, 3]);
    expect(Array.from(m.indices)).toEqual([1, 0, 2]);
    expect(Array.from(m.data)).toEqual([2, 3, 5]);
    const t = transposeCsr(m);
    expect(Array.from(t.indptr)).toEqual([0, 1, 2, 3]);
    expect(Array.from(t.indices)).toEqual([1, 0, 1]);
    expect(Array.from(t.data)).toEqual([3, 2, 5]);
  });

  it('rejects out-of-range indices', () => {
    expect(() => csrFromTriples(2, 2, [2], [0], [1])).toThrow(/row index/);
    expect(() => csrFromTriples(2, 2, [0], [-1], [1])).toThrow(/column index/);
  });
});

describe('one ALS half-step equals the direct solve of the normal equations', () => {
  const y = randomFactors(ITEMS, 11);
  const m = tinyMatrix();
  const cases: { name: string; options: AlsOptions; confidence: (v: number) => number }[] = [
    { name: 'linear confidence', options: { alpha: 2, scaling: 'linear' }, confidence: (v) => 1 + 2 * v },
    {
      name: 'log confidence',
      options: { alpha: 3, scaling: 'log', epsilon: 0.5 },
      confidence: (v) => 1 + 3 * Math.log(1 + v / 0.5),
    },
  ];
  for (const { name, options, confidence } of cases) {
    const expected = directUserSolve(dense(), y, confidence);
    const weights = confidenceWeights(m.data, options);
    for (const method of ['auto', 'direct', 'woodbury'] as const) {
      it(`${name}, ${method} Cholesky path`, () => {
        const x = new Float64Array(USERS * F);
        solveSide(m, weights, y, x, { factors: F, regularization: LAMBDA, method });
        const got = rowsOf(x, USERS);
        for (let u = 0; u < USERS; u++) {
          for (let a = 0; a < F; a++) expect(got[u]![a]).toBeCloseTo(expected[u]![a]!, 10);
        }
        expect(got[5]).toEqual([0, 0, 0, 0]); // no positive value: the solution is exactly zero
      });
    }
  }

  it('the item half-step is the same solve on the transposed matrix', () => {
    const x = randomFactors(USERS, 12);
    const t = transposeCsr(m);
    const weights = confidenceWeights(t.data, { alpha: 2, scaling: 'linear' });
    const out = new Float64Array(ITEMS * F);
    solveSide(t, weights, x, out, { factors: F, regularization: LAMBDA });
    const r = dense();
    const rt = Array.from({ length: ITEMS }, (_, i) => r.map((row) => row[i]!));
    // directUserSolve with the roles swapped: rows are items, the fixed side is the users.
    for (let i = 0; i < ITEMS; i++) {
      const c = rt[i]!.map((v) => (v > 0 ? 1 + 2 * v : 1));
      const a = Array.from({ length: F }, (_, p) =>
        Array.from({ length: F }, (_, q) => {
          let s = p === q ? LAMBDA : 0;
          for (let u = 0; u < USERS; u++) s += x[u * F + p]! * c[u]! * x[u * F + q]!;
          return s;
        }),
      );
      const b = Array.from({ length: F }, (_, p) => {
        let s = 0;
        for (let u = 0; u < USERS; u++) s += x[u * F + p]! * c[u]! * (rt[i]![u]! > 0 ? 1 : 0);
        return s;
      });
      const expected = gaussSolve(a, b);
      for (let p = 0; p < F; p++) expect(out[i * F + p]).toBeCloseTo(expected[p]!, 10);
    }
  });
});

describe('trainAls', () => {
  const options: AlsOptions = {
    factors: F,
    iterations: 8,
    regularization: LAMBDA,
    alpha: 2,
    scaling: 'linear',
  };

  it('computes the loss the dense way', () => {
    const x = randomFactors(USERS, 21);
    const y = randomFactors(ITEMS, 22);
    const m = tinyMatrix();
    const weights = confidenceWeights(m.data, { alpha: 2, scaling: 'linear' });
    const r = dense();
    let expected = 0;
    for (let u = 0; u < USERS; u++)
      for (let i = 0; i < ITEMS; i++) {
        let s = 0;
        for (let a = 0; a < F; a++) s += x[u * F + a]! * y[i * F + a]!;
        const v = r[u]![i]!;
        const c = v > 0 ? 1 + 2 * v : 1;
        const p = v > 0 ? 1 : 0;
        expected += c * (p - s) ** 2;
      }
    for (const v of [...x, ...y]) expected += LAMBDA * v * v;
    expect(alsLoss(m, weights, x, y, F, LAMBDA)).toBeCloseTo(expected, 9);
  });

  it('returns Float32 factors of the right shape', () => {
    const r = trainAls(tinyMatrix(), options);
    expect(r.userFactors).toBeInstanceOf(Float32Array);
    expect(r.itemFactors).toBeInstanceOf(Float32Array);
    expect(r.userFactors.length).toBe(USERS * F);
    expect(r.itemFactors.length).toBe(ITEMS * F);
    expect({ factors: r.factors, users: r.users, items: r.items }).toEqual({
      factors: F,
      users: USERS,
      items: ITEMS,
    });
  });

  it('is deterministic for a seed and differs across seeds', () => {
    const a = trainAls(tinyMatrix(), { ...options, seed: 7 });
    const b = trainAls(tinyMatrix(), { ...options, seed: 7 });
    const c = trainAls(tinyMatrix(), { ...options, seed: 8 });
    expect(b.userFactors).toEqual(a.userFactors);
    expect(b.itemFactors).toEqual(a.itemFactors);
    expect(c.itemFactors).not.toEqual(a.itemFactors);
    expect(c.userFactors).not.toEqual(a.userFactors);
  });

  it('decreases the loss at every iteration and reports progress', () => {
    const seen: number[] = [];
    const r = trainAls(tinyMatrix(), options, (p) => seen.push(p.iteration));
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const loss = r.lossHistory!;
    expect(loss).toHaveLength(8);
    for (let k = 1; k < loss.length; k++) expect(loss[k]!).toBeLessThanOrEqual(loss[k - 1]! * (1 + 1e-12));
    expect(loss[loss.length - 1]!).toBeLessThan(loss[0]!);
  });

  it('ranks the items a user played above the others', () => {
    const r = trainAls(tinyMatrix(), { ...options, factors: 4, iterations: 15, regularization: 0.01 });
    const score = (u: number, i: number) => {
      let s = 0;
      for (let a = 0; a < F; a++) s += r.userFactors[u * F + a]! * r.itemFactors[i * F + a]!;
      return s;
    };
    // user 0 played items 0, 2, 4 (not 1, 3)
    expect(Math.min(score(0, 0), score(0, 2), score(0, 4))).toBeGreaterThan(
      Math.max(score(0, 1), score(0, 3)),
    );
  });

  it('validates options', () => {
    expect(() => trainAls(tinyMatrix(), { factors: 0 })).toThrow(/factors/);
    expect(() => trainAls(tinyMatrix(), { regularization: 0 })).toThrow(/regularization/);
    expect(() => trainAls(tinyMatrix(), { alpha: Number.NaN })).toThrow(/alpha/);
    expect(() => trainAls(tinyMatrix(), { alpha: 0 })).toThrow(/alpha/);
  });
});
