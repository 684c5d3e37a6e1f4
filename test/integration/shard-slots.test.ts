/**
 * Sharded collections served by scatter-gather: the query function (router) invokes shard-slot functions
 * — worker processes behind the local Lambda Invoke stand-in — one version per request, and merges.
 * Compared with the same data unsharded (small shards, high ef: HNSW is exact), so ids and scores match.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusteredVectors, jsonlRows } from '../../local/synthetic';
import { type TestStack, testStack } from '../support/local';
import { versionSettled } from '../support/settle';

const DIMS = 16;
const N = 600;
const SHARDS = 6;
const SLOTS = 4;
const ids = Array.from({ length: N }, (_, i) => `item-${i}`);
/** Each item has "seen" its nearest ids by number (excludeSeen). */
const meta = (i: number) => ({ g: i % 3, n: i, seen: [`item-${(i + 1) % N}`, `item-${(i + 3) % N}`] });

function dataset(seed: number) {
  const d = clusteredVectors(N, DIMS, 8, seed);
  return {
    jsonl: jsonlRows(ids, d.vectors, DIMS, meta),
    vec: (i: number) => Array.from(d.vectors.subarray(i * DIMS, (i + 1) * DIMS)),
  };
}

const release = {
  seenField: 'seen',
  collections: {
    items: { file: 'items.jsonl', metric: 'cosine', shards: SHARDS },
    flat: { file: 'items.jsonl', metric: 'cosine' },
  },
};

type Hit = { id: string; score: number; metadata?: unknown };
const hits = (body: Record<string, unknown>) =>
  ((body.results as Hit[]) ?? []).map((r) => ({ id: r.id, score: r.score }));

/**
 * Same ids in the same order; scores equal up to float32 rounding of the distance. Exclusions make the
 * planner pick per segment (an exact float64 scan or hnswlib's float32 distance), and a shard is a
 * different segment than the one unsharded segment — as for any multi-segment collection.
 */
function sameAnswer(a: Record<string, unknown>, b: Record<string, unknown>) {
  const x = hits(a);
  const y = hits(b);
  expect(x.map((h) => h.id)).toEqual(y.map((h) => h.id));
  for (const [i, h] of x.entries()) expect(h.score).toBeCloseTo((y[i] as Hit).score, 6);
}

// Space 'sh' holds v1 only (read by every test); the pinning test builds its own space. Any order.
describe('sharded collections by scatter-gather over shard slots (Lambda Invoke stand-in)', () => {
  let s: TestStack;
  let marker: string;
  const v1 = dataset(7);

  beforeAll(async () => {
    marker = join(await mkdtemp(join(tmpdir(), 'vicinity-slot-kill-')), 'kill');
    s = await testStack({ qualitySample: 40, retentionGraceMs: 0 }, undefined, {
      tasks: { concurrency: 2, retryDelayMs: 100 },
      slots: {
        shardSlots: SLOTS,
        hedgeMs: 400,
        memoryMb: 512,
        env: { VICINITY_TEST_KILL_SLOT: `${marker}:1` },
      },
    });
    await s.publish('sh', 'r1', { 'items.jsonl': v1.jsonl }, release);
    expect(await versionSettled(s, 'sh', 'v1')).toMatchObject({ status: 'READY' });
  }, 180_000);
  afterAll(async () => {
    await s?.dispose();
  });

  it('vector query and similar give the ids and scores of the same data unsharded; the router loads no shard', async () => {
    const base = '/v1/spaces/sh/collections';
    for (const q of [3, 250, 599]) {
      const a = await s.post(`${base}/items/query`, { vector: v1.vec(q), k: 10, ef: 600 });
      const b = await s.post(`${base}/flat/query`, { vector: v1.vec(q), k: 10, ef: 600 });
      expect(a.status, JSON.stringify(a.body)).toBe(200);
      expect(hits(a.body)).toHaveLength(10);
      expect(hits(a.body)).toEqual(hits(b.body));
      expect(a.body.version).toBe('v1');

      const sa = await s.get(`${base}/items/items/item-${q}/similar?k=10&ef=600`);
      const sb = await s.get(`${base}/flat/items/item-${q}/similar?k=10&ef=600`);
      expect(sa.status, JSON.stringify(sa.body)).toBe(200);
      sameAnswer(sa.body, sb.body);
      expect(sa.body).toMatchObject({ id: `item-${q}`, collection: 'items', target: 'items' });
    }
    // exclude and filters: each shard plans its own; still k results while k qualify.
    const body = { k: 12, ef: 600, exclude: ['item-1', 'item-2', 'item-4'], filter: { g: 1 } };
    const fa = await s.post(`${base}/items/items/item-10/similar`, body);
    const fb = await s.post(`${base}/flat/items/item-10/similar`, body);
    expect(fa.status, JSON.stringify(fa.body)).toBe(200);
    expect(hits(fa.body)).toHaveLength(12);
    sameAnswer(fa.body, fb.body);
    for (const r of fa.body.results as { metadata: { g: number } }[]) expect(r.metadata.g).toBe(1);
    // excludeSeen: the seen list comes from the item's slot, each id excluded in its own shard.
    const seenA = await s.get(`${base}/items/items/item-30/similar?k=10&ef=600&excludeSeen=true`);
    const seenB = await s.get(`${base}/flat/items/item-30/similar?k=10&ef=600&excludeSeen=true`);
    expect(seenA.status, JSON.stringify(seenA.body)).toBe(200);
    sameAnswer(seenA.body, seenB.body);
    for (const id of ['item-31', 'item-33']) expect(hits(seenA.body).map((h) => h.id)).not.toContain(id);
    // item lookup from the id's shard's slot
    const item = await s.get(`${base}/items/items/item-77?include=vector`);
    expect(item.body).toMatchObject({ id: 'item-77', metadata: { n: 77 }, version: 'v1', normalised: true });
    const flatItem = await s.get(`${base}/flat/items/item-77?include=vector`);
    expect(item.body.vector).toEqual(flatItem.body.vector);
    // The router instance loaded only the unsharded collection; the slots served the shards.
    expect(s.query.cache.loaded().some((k) => k.endsWith('/items'))).toBe(false);
    const slotCalls = new Set(
      s.lambda.invocations.filter((i) => i.type === 'RequestResponse').map((i) => i.functionName),
    );
    expect([...slotCalls].sort()).toEqual(
      Array.from({ length: SLOTS }, (_, i) => `vicinity-query-slot-${i}`),
    );
  }, 120_000);

  it('a batch across shards answers every entry as the unsharded collection does, one version', async () => {
    const queries = (c: string) => [
      { collection: c, item: 'item-5', k: 5, ef: 600 },
      { collection: c, vector: v1.vec(400), k: 7, ef: 600 },
      { collection: c, item: 'nope', k: 5 },
      { collection: c, item: 'item-9', k: 5, ef: 600, filter: { g: 2 } },
    ];
    const a = await s.post('/v1/spaces/sh/batch', { queries: queries('items') });
    const b = await s.post('/v1/spaces/sh/batch', { queries: queries('flat') });
    expect(a.status, JSON.stringify(a.body)).toBe(200);
    const ra = a.body.results as { status: number; results?: Hit[] }[];
    const rb = b.body.results as { status: number; results?: Hit[] }[];
    expect(ra.map((r) => r.status)).toEqual([200, 200, 404, 200]);
    for (const i of [0, 1, 3]) sameAnswer(ra[i] as Record<string, unknown>, rb[i] as Record<string, unknown>);
    expect(a.body.version).toBe('v1');
  }, 60_000);

  it('a pinned request answers only from its version, fanned out to every slot with it', async () => {
    await s.publish('pin', 'r1', { 'items.jsonl': v1.jsonl }, release);
    expect(await versionSettled(s, 'pin', 'v1')).toMatchObject({ status: 'READY' });
    const v2 = dataset(99);
    await s.publish('pin', 'r2', { 'items.jsonl': v2.jsonl }, release);
    expect(await versionSettled(s, 'pin', 'v2')).toMatchObject({ status: 'READY' });
    const base = '/v1/spaces/pin/collections';
    const before = await s.post(`${base}/flat/query`, { vector: v1.vec(42), k: 10, ef: 600, version: 'v1' });
    const pinned = await s.post(`${base}/items/query`, { vector: v1.vec(42), k: 10, ef: 600, version: 'v1' });
    expect(pinned.status, JSON.stringify(pinned.body)).toBe(200);
    expect(pinned.headers.get('vicinity-version')).toBe('v1');
    expect(hits(pinned.body)).toEqual(hits(before.body));
    const current = await s.post(`${base}/items/query`, {
      vector: v1.vec(42),
      k: 10,
      ef: 600,
      consistency: 'strong',
    });
    const currentFlat = await s.post(`${base}/flat/query`, {
      vector: v1.vec(42),
      k: 10,
      ef: 600,
      consistency: 'strong',
    });
    expect(current.body.version).toBe('v2');
    expect(hits(current.body)).toEqual(hits(currentFlat.body));
    // Warm-up after the pointer moved: sharded collections are warmed in their slots, not in the router.
    const { warmUp } = await import('../../functions/query/handler');
    const warmed = await warmUp(s.query, { vicinity: 'warm-up', slot: 0, space: 'pin', version: 'v2' });
    expect(warmed).toMatchObject({ warmed: ['flat', 'items'] });
    expect(s.query.cache.loaded().some((k) => k.endsWith('/items'))).toBe(false);
  }, 180_000);

  it('the VICINITY_DEMO=sharded space builds in 8 shards and answers through the slots', async () => {
    const { publishShardedDemo, SHARDED_DEMO_SPACE } = await import('../../local/sharded-demo');
    await publishShardedDemo(s.store, 3000, 16);
    await s.idle(120_000);
    const r = await s.get(`/v1/spaces/${SHARDED_DEMO_SPACE}/collections/points/items/p1/similar?k=5`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(hits(r.body)).toHaveLength(5);
    const v = await s.get(`/v1/spaces/${SHARDED_DEMO_SPACE}/versions/v1`);
    expect(v.body).toMatchObject({ status: 'READY', collections: { points: { shards: 8 } } });
  }, 180_000);

  it('the VICINITY_DEMO=sharded music space has its artists in 4 shards and their exact neighbours', async () => {
    const { DEMO_ARTIST, publishShardedMusicDemo, SHARDED_MUSIC_SPACE } = await import('../../local/demo');
    const { exactKnn, expectExactNeighbours, parseJsonl } = await import('../support/oracle');
    const work = await mkdtemp(join(tmpdir(), 'vicinity-music-sharded-'));
    try {
      // Few iterations: the factors' quality is the music demo's test; here only how they are served.
      await publishShardedMusicDemo(s.store, { workDir: work, options: { iterations: 2 } });
      expect(await versionSettled(s, SHARDED_MUSIC_SPACE, 'v1')).toMatchObject({ status: 'READY' });
      const v = await s.get(`/v1/spaces/${SHARDED_MUSIC_SPACE}/versions/v1`);
      const collections = v.body.collections as Record<string, { shards?: number }>;
      expect(collections.artists).toMatchObject({ shards: 4, count: 17632 });
      expect(collections.users?.shards).toBeUndefined();
      const r = await s.get(
        `/v1/spaces/${SHARDED_MUSIC_SPACE}/collections/artists/items/${DEMO_ARTIST}/similar?k=10&ef=800`,
      );
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      const artists = parseJsonl(await readFile(join(work, 'lastfm-als', 'artists.jsonl'), 'utf8'));
      const seed = artists.rows[artists.ids.indexOf(DEMO_ARTIST)] as number[];
      const ranked = exactKnn('ip', artists.rows, artists.ids, seed).filter((n) => n.id !== DEMO_ARTIST);
      expectExactNeighbours(
        hits(r.body).map((h) => h.id),
        ranked,
        10,
        1e-5,
      );
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }, 240_000);

  it('a killed slot worker gives 503 naming its shards, allowPartial answers naming them, then it recovers', async () => {
    const base = '/v1/spaces/sh/collections/items';
    const q = { vector: v1.vec(8), k: 10, ef: 600 };
    await writeFile(marker, 'x');
    try {
      const down = await s.post(`${base}/query`, q);
      expect(down.status, JSON.stringify(down.body)).toBe(503);
      expect(down.headers.get('content-type')).toMatch(/problem\+json/);
      expect(down.body.type).toMatch(/shards-unavailable/);
      // Slot 1 of 4 serves shards 1 and 5 of 6.
      expect(down.body.missingShards).toEqual([
        { collection: 'items', shard: 1, slot: 1 },
        { collection: 'items', shard: 5, slot: 1 },
      ]);
      expect(String(down.body.detail)).toMatch(/items shards 1, 5/);

      const partial = await s.post(`${base}/query`, { ...q, allowPartial: true });
      expect(partial.status, JSON.stringify(partial.body)).toBe(200);
      expect(partial.headers.get('vicinity-missing-shards')).toBe('items/1,items/5');
      expect(partial.body.missingShards).toHaveLength(2);
      expect(hits(partial.body)).toHaveLength(10);
    } finally {
      await rm(marker, { force: true });
    }
    const back = await s.post(`${base}/query`, q);
    expect(back.status, JSON.stringify(back.body)).toBe(200);
    expect(hits(back.body)).toHaveLength(10);
  }, 120_000);
});
