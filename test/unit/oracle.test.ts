/**
 * Production's exact scan (functions/core/search.ts bruteForce, the recall baseline and the scan behind
 * selective filters) against the test oracle (test/support/oracle.ts), on random data, all three metrics.
 */
import { describe, expect, it } from 'vitest';
import { bruteForce, normalise, normalisedArray } from '../../functions/core/search';
import { mulberry32 } from '../../local/synthetic';
import { exactKnn, expectExactNeighbours, type OracleMetric, rows } from '../support/oracle';

function random(n: number, dims: number, seed: number, ints = false): Float32Array {
  const rand = mulberry32(seed);
  return Float32Array.from({ length: n * dims }, () =>
    ints ? Math.floor(rand() * 5) - 2 : (rand() - 0.5) * 4,
  );
}

/** What a cosine index holds: every row normalised (bruteForce expects that, the oracle does not). */
function normalisedRows(v: Float32Array, dims: number): Float32Array {
  const out = new Float32Array(v.length);
  for (let r = 0; r * dims < v.length; r++)
    out.set(normalise(v.subarray(r * dims, (r + 1) * dims)), r * dims);
  return out;
}

describe('bruteForce agrees with the independent oracle', () => {
  const metrics: OracleMetric[] = ['cosine', 'ip', 'l2'];

  it.each(metrics)('%s: random float data, several k, with and without a filter', (metric) => {
    // Break seen: bruteForce's `acc = 1 - acc` dropped for ip/cosine (ranks the farthest first) — fails here.
    for (const [n, dims, seed] of [
      [300, 8, 1],
      [1000, 24, 2],
      [57, 3, 3],
    ] as const) {
      const data = random(n, dims, seed);
      const ids = Array.from({ length: n }, (_, i) => `x${i}`);
      const indexed = metric === 'cosine' ? normalisedRows(data, dims) : data;
      const plain = rows(data, dims);
      const rand = mulberry32(seed + 100);
      for (let q = 0; q < 5; q++) {
        const query = Array.from({ length: dims }, () => (rand() - 0.5) * 4);
        for (const k of [1, 10, 100, n + 5]) {
          const allow = q % 2 ? (r: number) => r % 3 !== 0 : undefined;
          const got = bruteForce(metric, dims, indexed, ids, query, k, allow).map((x) => x.id);
          const want = exactKnn(metric, plain, ids, query, Number.POSITIVE_INFINITY, allow);
          expectExactNeighbours(got, want, k, 1e-6);
        }
      }
    }
  });

  it.each(['ip', 'l2'] as const)('%s: small-integer data full of exact ties, broken by id', (metric) => {
    // Integer arithmetic is exact in both: the lists must be identical, tie order and distances included.
    // Break seen: compareNeighbours without its id tie-break (`return a.distance - b.distance`) — fails here.
    const dims = 4;
    const n = 400;
    const data = random(n, dims, 9, true);
    // Ids that do not sort like their rows, so row order cannot stand in for id order.
    const ids = Array.from({ length: n }, (_, i) => `id-${(i * 7919) % n}`);
    const query = [1, -1, 2, 0];
    for (const k of [1, 7, 50, 399]) {
      const got = bruteForce(metric, dims, data, ids, query, k);
      const want = exactKnn(metric, rows(data, dims), ids, query, k);
      expect(got.map((x) => x.id)).toEqual(want.map((x) => x.id));
      expect(got.map((x) => x.distance)).toEqual(want.map((x) => x.distance));
    }
  });

  it('the oracle itself: hand-computed distances and tie order', () => {
    const data = [
      [3, 4],
      [0, 1],
      [0, 2],
      [-1, 0],
    ];
    const ids = ['d', 'c', 'b', 'a'];
    expect(exactKnn('l2', data, ids, [0, 0])).toEqual([
      { id: 'a', distance: 1 },
      { id: 'c', distance: 1 },
      { id: 'b', distance: 4 },
      { id: 'd', distance: 25 },
    ]);
    expect(exactKnn('ip', data, ids, [0, 1]).map((x) => [x.id, x.distance])).toEqual([
      ['d', -3],
      ['b', -1],
      ['c', 0],
      ['a', 1],
    ]);
    const cos = exactKnn('cosine', data, ids, [0, 5]);
    expect(cos.map((x) => x.id)).toEqual(['b', 'c', 'd', 'a']);
    expect(cos[0]?.distance).toBeCloseTo(0, 12);
    expect(cos[2]?.distance).toBeCloseTo(1 - 0.8, 12);
    expect(cos[3]?.distance).toBeCloseTo(1, 12);
  });
});

describe('the query vector handed to hnswlib', () => {
  it('normalisedArray holds exactly the float32 values normalise computes, for tiny, huge and zero vectors', () => {
    const rnd = mulberry32(7);
    const vectors: number[][] = [
      Array.from({ length: 128 }, () => rnd() - 0.5),
      Array.from({ length: 64 }, () => (rnd() - 0.5) * 1e-30),
      Array.from({ length: 3 }, () => (rnd() - 0.5) * 3e38),
      [0, 0, 0],
      [1],
    ];
    for (const v of vectors) {
      const got = normalisedArray(v);
      expect(Array.isArray(got)).toBe(true);
      expect(got).toEqual(Array.from(normalise(v)));
    }
  });
});
