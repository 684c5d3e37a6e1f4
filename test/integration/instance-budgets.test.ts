/**
 * A query instance's budgets end to end on the local stack (s3rver, dynalite, the query handler):
 * a client alternating pins across three old versions on a memory budget that fits two gets a 503 with
 * Retry-After and a reason for the third — the instance stays up and the first two keep answering —
 * and the cap on pinned versions holds the same way with memory to spare.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nativeIndexBytes } from '../../functions/snapshot/budget';
import { DEFAULT_CONFIG } from '../../infra/config';
import { clusteredVectors, jsonlRows } from '../../local/synthetic';
import { type TestStack, testStack } from '../support/local';

const DIMS = 8;
const N = 50;
const release = (i: number) => {
  const data = clusteredVectors(N, DIMS, 3, 100 + i);
  return {
    'items.jsonl': jsonlRows(
      Array.from({ length: N }, (_, j) => `v${i}-${j}`),
      data.vectors,
      DIMS,
    ),
  };
};
const releaseJson = { collections: { items: { file: 'items.jsonl', metric: 'cosine' } } };
/** v1…v5 published: v5 active, v4 previous; v1, v2, v3 are only reachable pinned. */
async function publishFive(s: TestStack): Promise<void> {
  for (let i = 1; i <= 5; i++) await s.publish('b', `r${i}`, release(i), releaseJson);
}
const similar = (version?: string) =>
  `/v1/spaces/b/collections/items/items/v${version?.slice(1) ?? '5'}-0/similar?k=3${version ? `&version=${version}` : ''}`;

describe('memory budget: three pinned versions alternating on a budget that fits two', () => {
  let s: TestStack;
  // One collection of 50 × 8 at M 16 is ~2.7 MB of native hnswlib memory (its label locks alone 2.6 MB).
  const budget = Math.floor(2.5 * nativeIndexBytes(N, DIMS, 16));

  beforeAll(async () => {
    s = await testStack({ memoryBudgetBytes: budget, maxPinnedVersions: 10 });
    await publishFive(s);
  });
  afterAll(async () => s?.dispose());

  // A release that fits a default deploy's /tmp fits `npm start`'s (Lambda's own default is 512 MB).
  it('gives the local query function the disk budget of a default deploy', () => {
    expect(s.deps.config.diskBudgetBytes).toBe(Math.floor(DEFAULT_CONFIG.query.ephemeralMb * 0.8) * 2 ** 20);
  });

  it('answers the third with 503, Retry-After and why; the first two keep answering; the instance lives', async () => {
    for (let round = 0; round < 3; round++) {
      const one = await s.get(similar('v1'));
      expect(one.status).toBe(200);
      expect(one.headers.get('vicinity-version')).toBe('v1');
      expect((await s.get(similar('v2'))).status).toBe(200);
      const third = await s.get(similar('v3'));
      expect(third.status).toBe(503);
      expect(third.headers.get('content-type')).toMatch(/application\/problem\+json/);
      expect(Number(third.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(third.body).toMatchObject({
        status: 503,
        reason: 'memory-budget',
        version: 'v3',
        detail: expect.stringMatching(/memory/),
      });
      expect(s.query.cache.memoryBytes()).toBeLessThanOrEqual(budget);
    }
    expect((await s.get('/v1/health')).status).toBe(200);
    // The active version outranks pins: it loads, evicting the least recently used pinned one.
    const active = await s.get(similar());
    expect(active.status).toBe(200);
    expect(active.body.version).toBe('v5');
    expect(s.query.cache.memoryBytes()).toBeLessThanOrEqual(budget);
  });
});

describe('pinned-version cap', () => {
  let s: TestStack;

  beforeAll(async () => {
    s = await testStack({ maxPinnedVersions: 2 });
    await publishFive(s);
  });
  afterAll(async () => s?.dispose());

  it('serves two pinned versions besides the active and previous ones, and answers a third with 503', async () => {
    expect((await s.get(similar('v1'))).status).toBe(200);
    expect((await s.get(similar('v2'))).status).toBe(200);
    // The active and previous versions never count against the cap.
    expect((await s.get(similar('v5'))).status).toBe(200);
    expect((await s.get(similar('v4'))).status).toBe(200);
    const third = await s.get(similar('v3'));
    expect(third.status).toBe(503);
    expect(Number(third.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(third.body).toMatchObject({ reason: 'pinned-versions', detail: expect.stringMatching(/pinned/) });
    expect((await s.get(similar('v1'))).status).toBe(200);
    expect((await s.get(similar())).body.version).toBe('v5');
  });
});
