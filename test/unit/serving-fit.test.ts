/**
 * The build's view of the instances that serve a collection: `"shards": "auto"` shards what the query
 * function could not load whole, and what the serving side still could not load is refused.
 */
import { describe, expect, it } from 'vitest';
import type { ReleaseFiles } from '../../functions/adapters/readers/types';
import {
  fitSlotsTogether,
  fitWholeTogether,
  refuseUnservable,
  servableShards,
  servingProblem,
} from '../../functions/builder/serving-fit';
import { shardCounts } from '../../functions/builder/sharded/plan';
import { loadConfig } from '../../functions/common/config';
import { ENV } from '../../functions/contract';
import { ReleaseInvalidError } from '../../functions/core/errors';
import { parseRelease } from '../../functions/core/release';
import { planShards } from '../../functions/core/shard';
import { estimatePlannedBytes } from '../../functions/snapshot/budget';

// A default deploy: query function and slots 2048 MB (cache budget 1228 MB each), 8 slots.
const deployed = { queryMemoryMb: 2048, slotMemoryMb: 2048, shardSlots: 8 };
const tracks = (dims: number) => ({ name: 'tracks', dims, M: 16 });
const auto = (rows: number, dims: number) =>
  planShards({ requested: 'auto', rows, dims, M: 16, maxShardItems: 2_000_000, taskMemoryMb: 3008 });

describe('shard counts the serving side can load', () => {
  it('shards a 2M × 128 collection the build tasks would keep whole but the query function could not load', () => {
    expect(auto(2_000_000, 128)).toBe(1);
    expect(servingProblem(deployed, tracks(128), 2_000_000, 1)).toMatch(
      /collection tracks: about \d+ MB once loaded \(2000000 rows, 128 dims, M 16\) in one piece, over the query function's memory budget of 1228 MB/,
    );
    const n = servableShards(deployed, tracks(128), 2_000_000, 1);
    expect(n).toBe(2);
    expect(servingProblem(deployed, tracks(128), 2_000_000, n)).toBeUndefined();
  });

  it('shards 1M × 256 and 2M × 768 until each slot can load its shard', () => {
    expect(servableShards(deployed, tracks(256), 1_000_000, auto(1_000_000, 256))).toBe(2);
    const planned = auto(2_000_000, 768);
    const n = servableShards(deployed, tracks(768), 2_000_000, planned);
    expect(n).toBeGreaterThan(planned);
    expect(servingProblem(deployed, tracks(768), 2_000_000, n)).toBeUndefined();
    expect(servingProblem(deployed, tracks(768), 2_000_000, n - 1)).toMatch(
      /over a slot's memory budget of 1228 MB/,
    );
  });

  it('keeps one shard for what the query function can load whole', () => {
    expect(servableShards(deployed, tracks(128), 1_000_000, auto(1_000_000, 128))).toBe(1);
    expect(servableShards(deployed, tracks(64), 2_000_000, auto(2_000_000, 64))).toBe(1);
  });

  it('plans as the build tasks need when the functions’ memory is not known', () => {
    expect(servableShards({ shardSlots: 8 }, tracks(128), 2_000_000, 1)).toBe(1);
    expect(servingProblem({ shardSlots: 8 }, tracks(128), 2_000_000, 1)).toBeUndefined();
  });

  it('keeps the planned count when no count fits, for the refusal to name', () => {
    // 100M × 128 over 8 slots: ~9 GB per slot whatever the count.
    expect(servableShards(deployed, tracks(128), 100_000_000, 50)).toBe(50);
    expect(servingProblem(deployed, tracks(128), 100_000_000, 50)).toMatch(
      /use fewer, smaller shards per slot/,
    );
  });

  it('refuses a collection the serving side could not load, naming release.json and the numbers', () => {
    const err = (() => {
      try {
        refuseUnservable(deployed, tracks(128), 2_000_000, 1);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ReleaseInvalidError);
    expect((err as ReleaseInvalidError).problems).toEqual([
      { file: 'release.json', message: expect.stringMatching(/set "shards" to a count over 1/) },
    ]);
    expect(() => refuseUnservable(deployed, tracks(128), 1_000_000, 1)).not.toThrow();
  });
});

describe('the collections the query function holds together', () => {
  // 1.5M × 128 (~1.1 GB loaded) and 1M × 128 (~0.75 GB) each fit a 1228 MB budget alone, not together:
  // a `target` search from one to the other would hold both.
  const users = { shape: { name: 'users', dims: 128, M: 16 }, rows: 1_500_000, shards: 1, auto: true };
  const tracks = { shape: { name: 'tracks', dims: 128, M: 16 }, rows: 1_000_000, shards: 1, auto: true };
  const counts = (plan: ReturnType<typeof fitWholeTogether>) =>
    Object.fromEntries(plan.map((p) => [p.shape.name, p.shards]));

  it('shards the largest "auto" one until the rest fit together', () => {
    expect(servingProblem(deployed, users.shape, users.rows, 1)).toBeUndefined();
    expect(servingProblem(deployed, tracks.shape, tracks.rows, 1)).toBeUndefined();
    expect(counts(fitWholeTogether(deployed, [users, tracks]))).toEqual({ users: 2, tracks: 1 });
  });

  it('keeps explicit counts, sharding an "auto" one instead', () => {
    const fixed = { ...users, auto: false };
    expect(counts(fitWholeTogether(deployed, [fixed, tracks]))).toEqual({ users: 1, tracks: 2 });
    expect(counts(fitWholeTogether(deployed, [fixed, { ...tracks, auto: false }]))).toEqual({
      users: 1,
      tracks: 1,
    });
  });

  it('leaves what fits together alone', () => {
    const fewer = { ...users, rows: 1_200_000 };
    const small = { ...tracks, rows: 200_000 };
    expect(counts(fitWholeTogether(deployed, [fewer, small]))).toEqual({ users: 1, tracks: 1 });
  });

  it('shards nothing for an explicit one that alone outgrows the budget (it is refused once ingested)', () => {
    const big = { ...users, rows: 2_000_000, auto: false };
    expect(counts(fitWholeTogether(deployed, [big, tracks]))).toEqual({ users: 1, tracks: 1 });
  });
});

describe('the shards a slot holds together', () => {
  // Slot 0 holds shard 0 of every sharded collection. 2M × 256 needs 3 shards to fit a slot alone
  // (~864 MB each); two such collections put ~1.7 GB in slot 0, over its 1228 MB budget.
  const a = { shape: { name: 'tracks', dims: 256, M: 16 }, rows: 2_000_000, shards: 3, auto: true };
  const b = { ...a, shape: { ...a.shape, name: 'artists' } };
  const slot0 = (plan: ReturnType<typeof fitSlotsTogether>) =>
    plan.reduce(
      (sum, p) =>
        sum +
        (p.shards > 1
          ? Math.ceil(p.shards / 8) * estimatePlannedBytes(Math.ceil(p.rows / p.shards), 256, 16)
          : 0),
      0,
    );
  const budget = 1228 * 1024 * 1024;

  it('gives "auto" collections more shards until the busiest slot holds its share of them all', () => {
    expect(servableShards(deployed, a.shape, a.rows, 2)).toBe(3);
    expect(slot0([a, b])).toBeGreaterThan(budget);
    const plan = fitSlotsTogether(deployed, [a, b]);
    expect(slot0(plan)).toBeLessThanOrEqual(budget);
    for (const p of plan) expect(p.shards).toBeGreaterThan(3);
  });

  it('keeps explicit counts and what fits together', () => {
    expect(
      fitSlotsTogether(deployed, [
        { ...a, auto: false },
        { ...b, auto: false },
      ]).map((p) => p.shards),
    ).toEqual([3, 3]);
    expect(fitSlotsTogether(deployed, [a, { ...b, shards: 1 }]).map((p) => p.shards)).toEqual([3, 1]);
  });

  it('stops where more shards no longer shrink a slot’s share, and refuses nothing for it', () => {
    // Three 2M × 768 collections: ~6.4 GB in all over 8 slots is ~800 MB each, ×3 over any slot's budget.
    const big = (name: string) => ({
      shape: { name, dims: 768, M: 16 },
      rows: 2_000_000,
      shards: 6,
      auto: true,
    });
    expect(fitSlotsTogether(deployed, [big('a'), big('b'), big('c')]).map((p) => p.shards)).toEqual([
      8, 8, 8,
    ]);
  });

  it('leaves the plan alone when the slots’ memory is not known', () => {
    expect(fitSlotsTogether({ shardSlots: 8 }, [a, b]).map((p) => p.shards)).toEqual([3, 3]);
  });
});

describe('the build plan (shardCounts) with the functions’ memory from the environment', () => {
  /** Raw float32 inputs of the given rows: the plan counts them exactly from the file sizes. */
  const filesOf = (rows: Record<string, number>, dims: number): ReleaseFiles => ({
    size: async (f) => (rows[f] ?? 0) * 4 * dims,
    stream: async () => {
      throw new Error('the plan reads no rows');
    },
    range: async () => {
      throw new Error('the plan reads no rows');
    },
  });
  const release = (shards?: number) =>
    parseRelease(
      JSON.stringify({
        collections: {
          tracks: { vectors: 'tracks.f32', ids: 'tracks.ids', dims: 128, metric: 'cosine', shards },
          artists: { vectors: 'artists.f32', ids: 'artists.ids', dims: 128, metric: 'cosine' },
        },
      }),
    );
  const config = loadConfig({
    VICINITY_BUCKET: 'b',
    VICINITY_TABLE: 't',
    [ENV.queryMemoryMb]: '2048',
    [ENV.slotMemoryMb]: '2048',
  });
  const files = filesOf({ 'tracks.f32': 2_000_000, 'artists.f32': 50_000 }, 128);

  it('shards, under "auto", the collection the query function could not load whole, and only it', async () => {
    const counts = await shardCounts({ config }, await release(), files);
    expect(counts && Object.fromEntries(counts)).toEqual({ tracks: 2, artists: 1 });
  });

  it('shards one of two collections the query function could not hold together', async () => {
    const both = filesOf({ 'tracks.f32': 1_500_000, 'artists.f32': 1_000_000 }, 128);
    const counts = await shardCounts({ config }, await release(), both);
    expect(counts && Object.fromEntries(counts)).toEqual({ tracks: 2, artists: 1 });
  });

  it('keeps an explicit count (a collection built whole is checked once ingested)', async () => {
    expect(await shardCounts({ config }, await release(1), files)).toBeUndefined();
  });
});
