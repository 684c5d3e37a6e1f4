import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SearchParams } from '../../../functions/core/query';
import { mulberry32 } from '../../../functions/core/random';
import { requestContext } from '../../../functions/query/context';
import { QueryService } from '../../../functions/query/service';
import { jsonlRows } from '../../../local/synthetic';
import { type Harness, harness } from '../../support/memory/harness';

const SPACE = 'catalogue';
const DIMS = 16;
const release = { collections: { items: { file: 'items.jsonl', metric: 'cosine' } } };
const params: SearchParams = {
  k: 10,
  exclude: [],
  excludeSeen: false,
  includeMetadata: false,
  consistency: 'eventual',
};

/** `distinct` random 16-d vectors, then `shared` items with one common vector; ids i0000…, shuffled in the file. */
function catalogue(distinct: number, shared: number, seed = 7): { text: string; sharedIds: string[] } {
  const rand = mulberry32(seed);
  const n = distinct + shared;
  const common = Array.from({ length: DIMS }, () => rand() * 2 - 1);
  const vectors = new Float32Array(n * DIMS);
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j] as number, order[i] as number];
  }
  const ids = order.map((i) => `i${String(i).padStart(4, '0')}`);
  const sharedIds: string[] = [];
  order.forEach((item, row) => {
    const isShared = item >= distinct;
    if (isShared) sharedIds.push(ids[row] as string);
    for (let d = 0; d < DIMS; d++)
      vectors[row * DIMS + d] = isShared ? (common[d] as number) : rand() * 2 - 1;
  });
  return { text: jsonlRows(ids, vectors, DIMS), sharedIds: sharedIds.sort() };
}

describe('releases with duplicate vectors', () => {
  let h: Harness;
  beforeEach(async () => {
    // The defaults of a real build: a 200-item sample, minRecall 0.95.
    h = await harness({ qualitySample: 200 });
  });
  afterEach(async () => h.dispose());

  const query = async () =>
    new QueryService({
      registry: h.registry,
      cache: await h.snapshotCache(),
      pointerTtlMs: 0,
      log: h.deps().log,
    });

  it('builds 3,000 distinct vectors plus 1,000 items sharing one into a READY version with tie-aware recall ≥ 0.99', async () => {
    const { text } = catalogue(3000, 1000);
    const outcome = await h.build(await h.publish(SPACE, 'r1', { 'items.jsonl': text }, release));
    expect(outcome).toMatchObject({ status: 'READY' });
    const report = (await h.registry.getVersion(SPACE, 'v1'))?.collections?.items;
    expect(report?.recallAt10).toBeGreaterThanOrEqual(0.99);
    expect(report).toMatchObject({ count: 4000, duplicateGroups: 1, largestDuplicateGroup: 1000 });
  });

  it('builds 4,000 items sharing one vector, answers k of them in id order, and keeps overlap 1.0 across rebuilds', async () => {
    const { text, sharedIds } = catalogue(0, 4000);
    expect(await h.build(await h.publish(SPACE, 'r1', { 'items.jsonl': text }, release))).toMatchObject({
      status: 'READY',
    });
    const v1 = (await h.registry.getVersion(SPACE, 'v1'))?.collections?.items;
    expect(v1?.recallAt10).toBeGreaterThanOrEqual(0.99);
    expect(v1).toMatchObject({ duplicateGroups: 1, largestDuplicateGroup: 4000 });

    const service = await query();
    const vector = Array.from({ length: DIMS }, (_, i) => (i === 0 ? 1 : 0));
    const t0 = performance.now();
    const answer = await service.query(SPACE, 'items', vector, params, requestContext());
    const ms = performance.now() - t0;
    expect(answer.results.map((r) => r.id)).toEqual(sharedIds.slice(0, 10));
    expect(ms).toBeLessThan(2000); // includes the first load of the collection
    const t1 = performance.now();
    await service.query(SPACE, 'items', vector, params, requestContext());
    expect(performance.now() - t1).toBeLessThan(20);

    // An item query leaves the item itself and the excluded ones out, and still answers k in id order.
    const similar = await service.similar(
      SPACE,
      'items',
      sharedIds[0] as string,
      { ...params, exclude: [sharedIds[2] as string] },
      requestContext(),
    );
    expect(similar.results.map((r) => r.id)).toEqual([sharedIds[1], ...sharedIds.slice(3, 12)]);

    // The same data built again: its neighbour lists are the same up to ties.
    expect(await h.build(await h.publish(SPACE, 'r2', { 'items.jsonl': text }, release))).toMatchObject({
      status: 'READY',
    });
    expect((await h.registry.getVersion(SPACE, 'v2'))?.collections?.items).toMatchObject({
      overlapAt10: 1,
      overlapWith: 'v1',
    });
  });

  it('keeps overlap@10 at 1.0 between two builds of duplicate-heavy data (25% sharing one vector)', async () => {
    const { text } = catalogue(3000, 1000, 11);
    await h.build(await h.publish(SPACE, 'r1', { 'items.jsonl': text }, release));
    expect(await h.build(await h.publish(SPACE, 'r2', { 'items.jsonl': text }, release))).toMatchObject({
      status: 'READY',
    });
    const v2 = (await h.registry.getVersion(SPACE, 'v2'))?.collections?.items;
    expect(v2?.overlapAt10).toBe(1);
    expect(v2?.recallAt10).toBeGreaterThanOrEqual(0.99);
  });
});
