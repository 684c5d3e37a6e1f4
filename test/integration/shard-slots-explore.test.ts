/**
 * The explorer and diff routes on a sharded collection go through the shard slots, as every other route:
 * samples are spread over the shards (each slot samples its own, the router merges), and the router
 * (the query function) loads no shard. Compared with the same data unsharded where the answer is
 * defined (samples covering every item, small shards with a high ef: HNSW is exact). The slots'
 * response limit is configured small here, so large answers come back in several calls.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENV } from '../../functions/contract';
import { idHash } from '../../functions/query/explore/sampling';
import { clusteredVectors, jsonlRows } from '../../local/synthetic';
import { type TestStack, testStack } from '../support/local';
import { versionSettled } from '../support/settle';

const DIMS = 8;
const N = 200;
const SHARDS = 4;
const SLOTS = 3;
/** A slot's answer holds at most this many bytes (Lambda's is 6 MB): a batch answer is split by queries. */
const RESPONSE_LIMIT = 16_000;
const SPACE = 'ex';
const blurb = 'x'.repeat(120);

/** v1 holds item-0…item-199; v2 drops item-0…item-9 and adds item-200…item-209, with moved vectors. */
function dataset(from: number, to: number, seed: number) {
  const ids = Array.from({ length: to - from }, (_, i) => `item-${from + i}`);
  const d = clusteredVectors(ids.length, DIMS, 6, seed);
  const meta = (i: number) => ({ name: `Name ${from + i}`, g: (from + i) % 3, blurb });
  return {
    jsonl: jsonlRows(ids, d.vectors, DIMS, meta),
    vec: (i: number) => Array.from(d.vectors.subarray(i * DIMS, (i + 1) * DIMS)),
  };
}

const release = {
  collections: {
    items: { file: 'items.jsonl', metric: 'cosine', shards: SHARDS, ef: N },
    flat: { file: 'items.jsonl', metric: 'cosine', ef: N },
    mixed: { file: 'items.jsonl', metric: 'cosine', ef: N },
  },
};
/** v3 holds v2's data, sharded otherwise: items in 2 shards (4 in v1), mixed in 3 (unsharded in v1). */
const resharded = {
  collections: {
    items: { file: 'items.jsonl', metric: 'cosine', shards: 2, ef: N },
    flat: { file: 'items.jsonl', metric: 'cosine', ef: N },
    mixed: { file: 'items.jsonl', metric: 'cosine', shards: 3, ef: N },
  },
};

const slotCalls = (s: TestStack) => s.lambda.invocations.filter((i) => i.type === 'RequestResponse').length;
const routerLoadedNoShard = (s: TestStack) =>
  expect(s.query.cache.loaded().filter((k) => k.endsWith('/items') || k.endsWith('/v3/mixed'))).toEqual([]);

type Hit = { id: string; score: number };
const hits = (b: Record<string, unknown>) =>
  ((b.results as Hit[]) ?? []).map((h) => ({ id: h.id, score: h.score }));

/**
 * Same ids in the same order; scores equal up to float32 rounding (an item's search distance comes from
 * hnswlib's float32 or the planner's float64 per segment, and a shard is another segment).
 */
function sameAnswer(a: Record<string, unknown>, b: Record<string, unknown>) {
  const x = hits(a);
  const y = hits(b);
  expect(x.map((h) => h.id)).toEqual(y.map((h) => h.id));
  for (const [i, h] of x.entries()) expect(h.score).toBeCloseTo((y[i] as Hit).score, 6);
}

// One stack, two versions built once (beforeAll); each test reads them only, so any order works.
describe('explorer and diff routes on a sharded collection, through the shard slots', () => {
  let s: TestStack;
  const v1 = dataset(0, N, 5);

  beforeAll(async () => {
    s = await testStack({ qualitySample: 40 }, undefined, {
      tasks: { concurrency: 2, retryDelayMs: 100 },
      slots: {
        shardSlots: SLOTS,
        hedgeMs: 10_000,
        memoryMb: 512,
        env: { [ENV.slotMaxResponseBytes]: String(RESPONSE_LIMIT) },
      },
    });
    await s.publish(SPACE, 'r1', { 'items.jsonl': v1.jsonl }, release);
    expect(await versionSettled(s, SPACE, 'v1', { activates: false })).toMatchObject({ status: 'READY' });
    await s.publish(SPACE, 'r2', { 'items.jsonl': dataset(10, N + 10, 6).jsonl }, release);
    expect(await versionSettled(s, SPACE, 'v2', { activates: false })).toMatchObject({ status: 'READY' });
    await s.publish(SPACE, 'r3', { 'items.jsonl': dataset(10, N + 10, 6).jsonl }, resharded);
    expect(await versionSettled(s, SPACE, 'v3', { activates: false })).toMatchObject({ status: 'READY' });
  }, 300_000);
  afterAll(async () => {
    await s?.dispose();
  });

  it('a projection samples the same ids and fits the same map as the unsharded collection', async () => {
    const base = `/v1/spaces/${SPACE}/collections`;
    for (const sample of [150, 1000]) {
      const q = `sample=${sample}&version=v1&ids=item-7,item-199,nope`;
      const a = await s.get(`${base}/items/projection?${q}`);
      const b = await s.get(`${base}/flat/projection?${q}`);
      expect(a.status, JSON.stringify(a.body).slice(0, 500)).toBe(200);
      expect(a.body.sample).toBe(Math.min(sample, N));
      for (const k of ['sample', 'count', 'dims', 'metric', 'fields', 'metadataFields', 'missing', 'version'])
        expect(a.body[k], k).toEqual(b.body[k]);
      type P = { id: string; x: number; y: number; metadata?: unknown };
      // A sample of every item lists them in snapshot order unsharded, in hash order sharded: by id.
      const byId = (ps: P[]) => [...ps].sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
      const pa = byId(a.body.points as P[]);
      const pb = byId(b.body.points as P[]);
      expect(pa.map((p) => p.id)).toEqual(pb.map((p) => p.id));
      for (const [i, p] of pa.entries()) {
        expect(p.x).toBeCloseTo((pb[i] as P).x, 4);
        expect(p.y).toBeCloseTo((pb[i] as P).y, 4);
        expect(p.metadata).toEqual((pb[i] as P).metadata);
      }
      expect(a.body.extra).toEqual(b.body.extra);
      expect(a.body.missing).toEqual(['nope']);
    }
    routerLoadedNoShard(s);
  }, 60_000);

  it('a prefix search over a metadata field and over ids gives the unsharded answer', async () => {
    const base = `/v1/spaces/${SPACE}/collections`;
    for (const q of ['field=name&prefix=Name%201&limit=7', 'prefix=item-39&limit=5', 'prefix=zzz']) {
      const a = await s.get(`${base}/items/items?${q}&version=v1`);
      const b = await s.get(`${base}/flat/items?${q}&version=v1`);
      expect(a.status, JSON.stringify(a.body).slice(0, 500)).toBe(200);
      expect(a.body.results).toEqual(b.body.results);
      expect(a.body.more).toBe(b.body.more);
    }
    routerLoadedNoShard(s);
  }, 60_000);

  it('a diff between two versions gives the unsharded numbers, counts and most-changed items', async () => {
    const q = (c: string) => `/v1/spaces/${SPACE}/diff?from=v1&to=v2&collection=${c}&sample=1000&k=5&top=8`;
    const a = await s.get(q('items'));
    const b = await s.get(q('flat'));
    expect(a.status, JSON.stringify(a.body).slice(0, 500)).toBe(200);
    const [ca] = a.body.collections as Record<string, unknown>[];
    const [cb] = b.body.collections as Record<string, unknown>[];
    const { collection: _a, text: _ta, ...da } = ca as Record<string, unknown>;
    const { collection: _b, text: _tb, ...db } = cb as Record<string, unknown>;
    expect(da).toMatchObject({ inBoth: 190, onlyFrom: 10, onlyTo: 10, sampled: 190 });
    expect(da).toEqual(db);
    // A version against itself: every list unchanged.
    const self = await s.get(`/v1/spaces/${SPACE}/diff?from=v1&to=v1&collection=items&sample=50&k=5`);
    expect(self.status, JSON.stringify(self.body).slice(0, 500)).toBe(200);
    expect((self.body.collections as { unchanged: number; sampled: number }[])[0]).toMatchObject({
      unchanged: 1,
      sampled: 50,
    });
    routerLoadedNoShard(s);
  }, 120_000);

  it('a diff between versions sharded differently, or sharded in one only, gives the unsharded answer', async () => {
    const diff = async (c: string, from: string, to: string, sample: number) => {
      const r = await s.get(
        `/v1/spaces/${SPACE}/diff?from=${from}&to=${to}&collection=${c}&sample=${sample}&k=5&top=8`,
      );
      expect(r.status, JSON.stringify(r.body).slice(0, 500)).toBe(200);
      const {
        collection: _c,
        text: _t,
        ...rest
      } = (r.body.collections as Record<string, unknown>[])[0] ?? {};
      return rest;
    };
    // items: 4 shards in v1, 2 in v3; mixed: unsharded in v1, 3 shards in v3; flat: unsharded in both.
    const whole = await diff('flat', 'v1', 'v3', 1000);
    expect(whole).toMatchObject({ inBoth: 190, onlyFrom: 10, onlyTo: 10, sampled: 190 });
    expect(await diff('items', 'v1', 'v3', 1000)).toEqual(whole);
    expect(await diff('mixed', 'v1', 'v3', 1000)).toEqual(whole);
    // A sample of some: the ids in both with the smallest hashes, whichever way each version is sharded.
    // Some ids in one version only hash among the first 40 of that version, so intersecting each
    // version's 40 smallest would sample fewer, or other, items.
    const byHash = (ids: string[]) => [...ids].sort((a, b) => idHash(a) - idHash(b)).slice(0, 40);
    const ids = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `item-${from + i}`);
    const firstOf = [...byHash(ids(0, N)), ...byHash(ids(10, N + 10))];
    expect(firstOf.some((id) => /^item-(\d|20\d)$/.test(id))).toBe(true);
    const some = await diff('flat', 'v1', 'v3', 40);
    expect(some).toMatchObject({ inBoth: 190, sampled: 40 });
    expect(await diff('items', 'v1', 'v3', 40)).toEqual(some);
    expect(await diff('mixed', 'v1', 'v3', 40)).toEqual(some);
    // The same shard count in both (v1 → v2, the slots intersect) samples the same ids of the same data.
    expect(await diff('items', 'v1', 'v2', 40)).toEqual(some);
    // And the other way round: sharded in v3, unsharded in v1.
    expect(await diff('mixed', 'v3', 'v1', 40)).toEqual(await diff('flat', 'v3', 'v1', 40));
    routerLoadedNoShard(s);
  }, 120_000);

  it('a batch whose slot answers exceed the response limit is answered in several calls per slot, whole', async () => {
    // Vector queries only: one round of one call per slot when every answer fits.
    const queries = (c: string) =>
      Array.from({ length: 18 }, (_, i) => ({ collection: c, vector: v1.vec(i * 11 + 1), k: 10 }));
    const before = slotCalls(s);
    const a = await s.post(`/v1/spaces/${SPACE}/batch`, { queries: queries('items'), version: 'v1' });
    const calls = slotCalls(s) - before;
    const b = await s.post(`/v1/spaces/${SPACE}/batch`, { queries: queries('flat'), version: 'v1' });
    expect(a.status, JSON.stringify(a.body).slice(0, 500)).toBe(200);
    const ra = a.body.results as Record<string, unknown>[];
    const rb = b.body.results as Record<string, unknown>[];
    expect(ra.map((r) => r.status)).toEqual(rb.map((r) => r.status));
    expect(ra.every((r) => r.status === 200)).toBe(true);
    for (const [i, r] of ra.entries()) sameAnswer(r, rb[i] as Record<string, unknown>);
    // One call per slot would be 3: the answers (18 × 10 hits with metadata, ~36 KB a slot) do not fit
    // 16 KB, so each slot was asked again for the queries its first answer left out.
    expect(calls).toBeGreaterThanOrEqual(3 * SLOTS);
    routerLoadedNoShard(s);
  }, 60_000);

  it('one query whose answer alone exceeds the limit fails by itself (422), the rest of its batch answers', async () => {
    const a = await s.post(`/v1/spaces/${SPACE}/batch`, {
      version: 'v1',
      queries: [
        { collection: 'items', vector: v1.vec(3), k: 200 },
        { collection: 'items', vector: v1.vec(3), k: 5 },
      ],
    });
    expect(a.status, JSON.stringify(a.body).slice(0, 500)).toBe(200);
    const [big, small] = a.body.results as { status: number; problem?: { detail: string } }[];
    expect(big?.status).toBe(422);
    expect(big?.problem?.detail).toMatch(/over the 16000-byte limit/);
    expect(small?.status).toBe(200);
  }, 60_000);
});
