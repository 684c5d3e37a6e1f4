import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GroupedIndex } from '../../functions/adapters/grouped-index';
import { hnswEngine, readIndexVectors } from '../../functions/adapters/hnsw-index';
import { findDuplicates, segmentLayout } from '../../functions/builder/duplicates';
import { itemDiff } from '../../functions/core/diff';
import type { VectorIndex } from '../../functions/core/ports';
import {
  matchNeighbours,
  type Neighbour,
  overlapAt,
  sameDistance,
  tieAwareOverlap,
  tieAwareRecall,
  tieTolerance,
} from '../../functions/core/search';

const n = (id: string, distance: number): Neighbour => ({ id, distance });

describe('tie-aware recall', () => {
  it('counts an item exactly as near as the k-th true neighbour as a hit, where ids-based recall would not', () => {
    // Exact search listed a, b, c; d is as near as c (an identical vector). The search returned a, b, d.
    const truth = [n('a', 0.1), n('b', 0.2), n('c', 0.3)];
    const got = [n('a', 0.1), n('b', 0.2), n('d', 0.3)];
    const idsRecall = got.filter((g) => truth.some((t) => t.id === g.id)).length / 3;
    expect(idsRecall).toBeCloseTo(2 / 3);
    expect(
      tieAwareRecall(
        got.map((g) => g.distance),
        truth.map((t) => t.distance),
        3,
      ),
    ).toBe(1);
    // All items identical: every returned item is at distance 0, ids never agree.
    expect(tieAwareRecall([0, 0, 0], [0, 0, 0], 3)).toBe(1);
  });

  it('still counts a genuinely worse neighbour as a miss, and tolerates only rounding', () => {
    expect(tieAwareRecall([0.1, 0.2, 0.31], [0.1, 0.2, 0.3], 3)).toBeCloseTo(2 / 3);
    expect(tieAwareRecall([0.1, 0.2, 0.3 + 5e-7], [0.1, 0.2, 0.3], 3)).toBe(1);
    expect(tieAwareRecall([0.1, 0.2, 0.3 + 2e-6], [0.1, 0.2, 0.3], 3)).toBeCloseTo(2 / 3);
    // Relative above 1: l2 distances of large vectors.
    expect(tieTolerance(5000)).toBeCloseTo(5e-3);
    expect(tieAwareRecall([5000.004], [5000], 1)).toBe(1);
    expect(tieAwareRecall([5000.02], [5000], 1)).toBe(0);
    // Fewer returned than k: the missing ones are misses; a short truth caps the denominator.
    expect(tieAwareRecall([0.1], [0.1, 0.2], 2)).toBe(0.5);
    expect(tieAwareRecall([0.1, 0.2], [0.1], 10)).toBe(1);
    expect(tieAwareRecall([], [], 10)).toBe(1);
  });
});

describe('tie-aware overlap', () => {
  it('equals the id overlap when nothing is tied', () => {
    const a = [n('a', 0.1), n('b', 0.2), n('c', 0.3)];
    const b = [n('c', 0.3), n('d', 0.35), n('a', 0.1)];
    expect(tieAwareOverlap(a, b, 3)).toBeCloseTo(overlapAt(['a', 'b', 'c'], ['c', 'd', 'a'], 3));
  });

  it('treats tied neighbours as the same, each at most once', () => {
    // Ten identical items in each list, different ids: ids overlap 0, tie-aware 1.
    const a = Array.from({ length: 10 }, (_, i) => n(`a${i}`, 0));
    const b = Array.from({ length: 10 }, (_, i) => n(`b${i}`, 0));
    expect(
      overlapAt(
        a.map((x) => x.id),
        b.map((x) => x.id),
        10,
      ),
    ).toBe(0);
    expect(tieAwareOverlap(a, b, 10)).toBe(1);
    // x is shared by id, z pairs with y (both 0.5); w has no partner left.
    const m = matchNeighbours([n('x', 0.1), n('y', 0.5)], [n('x', 0.1), n('z', 0.5), n('w', 0.5)]);
    expect(m.shared).toBe(2);
    expect(m.onlyB.map((x) => x.id)).toEqual(['w']);
    // A genuinely different neighbour is not shared, even when close.
    expect(tieAwareOverlap([n('a', 0.1), n('b', 0.2)], [n('a', 0.1), n('c', 0.2001)], 2)).toBe(0.5);
    expect(sameDistance(0.2, 0.2 + 1e-7)).toBe(true);
  });

  it('makes the diff report tied neighbours as kept, not removed and added', () => {
    const d = itemDiff(
      {
        id: 'q',
        from: ['a', 'b', 'c'],
        to: ['a', 'd', 'e'],
        fromDistances: [0.1, 0.2, 0.2],
        toDistances: [0.1, 0.2, 0.4],
      },
      3,
    );
    expect(d).toEqual({ id: 'q', overlap: 0.6667, removed: ['c'], added: ['e'] });
    // Without distances: ids only, as before.
    expect(itemDiff({ id: 'q', from: ['a', 'b'], to: ['a', 'd'] }, 2).overlap).toBe(0.5);
  });
});

describe('duplicate groups', () => {
  it('finds identical rows (hash collisions never merge different vectors) and lays a segment out by group, in id order', () => {
    const dims = 2;
    const v = new Float32Array([1, 0, 0, 1, 1, 0, 0.5, 0.5, 1, 0, 0, 1]);
    const ids = ['r0', 'r1', 'r2', 'r3', 'q4', 'r5'];
    const dup = findDuplicates(v, dims, 6);
    expect(dup).toMatchObject({ groups: 2, largest: 3 });
    expect(Array.from(dup.first)).toEqual([0, 1, 0, 3, 0, 1]);
    const layout = segmentLayout(dup, ids, 0, 6);
    // Group {r0, r2, q4} at row 0's place in id order, then group {r1, r5}, then r3.
    expect(Array.from(layout?.rows ?? [])).toEqual([4, 0, 2, 1, 5, 3]);
    expect(Array.from(layout?.indexed ?? [])).toEqual([0, 3, 5]);
    // A segment holding one member of each group has nothing to group.
    expect(segmentLayout(dup, ids, 3, 5)).toBeUndefined();
    expect(findDuplicates(new Float32Array([1, 2, 3, 4]), 2, 2)).toMatchObject({ groups: 0, largest: 1 });
  });
});

describe('GroupedIndex', () => {
  let dir: string;
  let index: VectorIndex;
  // Labels 0–4: one vector (group of 5); 5: another; 6–7: a third (group of 2).
  const vectors = [
    [1, 0, 0],
    [0, 1, 0],
    [0, 0, 1],
  ];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vicinity-grouped-'));
    const b = hnswEngine.create('l2', 3, 3, 8, 50);
    b.add(vectors[0] as number[], 0);
    b.add(vectors[1] as number[], 5);
    b.add(vectors[2] as number[], 6);
    await b.write(join(dir, 'index.hnsw'));
    index = await hnswEngine.load(join(dir, 'index.hnsw'), 'l2', 3, 8, 8, 20);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('loads as a grouped index and expands groups into their members, in label (id) order, k at a time', () => {
    expect(index).toBeInstanceOf(GroupedIndex);
    expect(index.count).toBe(8);
    expect(index.search([1, 0, 0], 3, 20).map((h) => h.label)).toEqual([0, 1, 2]);
    const all = index.search([1, 0, 0], 8, 20);
    expect(all.map((h) => h.label)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(all.slice(0, 5).every((h) => h.distance === 0)).toBe(true);
    expect(index.getVector(3)).toEqual([1, 0, 0]);
    expect(index.getVector(7)).toEqual([0, 0, 1]);
  });

  it('applies a filter per member and visits a group when any member passes', () => {
    const odd = (l: number) => l % 2 === 1;
    // 1 and 3 from the first group, 5; then 7, tied with 5 (both at distance 2): ties are the caller's to break by id.
    expect(index.search([1, 0, 0], 3, 20, odd).map((h) => h.label)).toEqual([1, 3, 5, 7]);
    expect(index.search([0, 0, 1], 2, 20, (l) => l === 7 || l === 2).map((h) => h.label)).toEqual([7, 2]);
  });

  it('reads every member’s vector for exact scans', async () => {
    const flat = await readIndexVectors(join(dir, 'index.hnsw'), 3, 8);
    expect(Array.from(flat.subarray(4 * 3, 5 * 3))).toEqual([1, 0, 0]);
    expect(Array.from(flat.subarray(7 * 3, 8 * 3))).toEqual([0, 0, 1]);
  });
});
