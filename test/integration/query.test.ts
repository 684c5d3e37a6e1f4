import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nativeIndexBytes } from '../../functions/snapshot/budget';
import { clusteredVectors, jsonlRows, mulberry32 } from '../../local/synthetic';
import { type TestStack, testStack } from '../support/local';
import { exactKnn, expectExactNeighbours, parseJsonl } from '../support/oracle';

const DIMS = 16;
const GENRES = ['rock', 'jazz', 'pop', 'folk', 'metal', 'soul'];
const N_TRACKS = 1200;
const N_USERS = 150;

type Result = { id: string; score: number; distance: number; metadata?: Record<string, unknown> | null };

function data() {
  const t = clusteredVectors(N_TRACKS, DIMS, 8, 21);
  const u = clusteredVectors(N_USERS, DIMS, 8, 22);
  const rand = mulberry32(23);
  const trackIds = Array.from({ length: N_TRACKS }, (_, i) => `t${i}`);
  const userIds = Array.from({ length: N_USERS }, (_, i) => `u${i}`);
  const trackMeta = trackIds.map((_, i) => ({
    // 1% of tracks are "polka": selective enough for the exact scan.
    genre: i % 100 === 7 ? 'polka' : (GENRES[(t.cluster[i] as number) % GENRES.length] as string),
    year: 1970 + Math.floor(rand() * 50),
    tags: i % 3 === 0 ? ['live', 'remaster'] : ['studio'],
  }));
  const seen = userIds.map(() =>
    Array.from({ length: 30 }, () => trackIds[Math.floor(rand() * N_TRACKS)] as string),
  );
  const raw = clusteredVectors(40, DIMS, 2, 24);
  const rawIds = Array.from({ length: 40 }, (_, i) => `r${i}`);
  const short = clusteredVectors(30, 8, 2, 25);
  return {
    t,
    u,
    trackIds,
    userIds,
    trackMeta,
    seen,
    raw,
    rawIds,
    files: {
      'tracks.jsonl': jsonlRows(trackIds, t.vectors, DIMS, (i) => trackMeta[i]),
      'users.jsonl': jsonlRows(userIds, u.vectors, DIMS, (i) => ({ seen: seen[i] })),
      // Scaled by 3 so an inner-product collection's vectors are visibly not unit length.
      'raw.jsonl': jsonlRows(
        rawIds,
        raw.vectors.map((x) => x * 3),
        DIMS,
      ),
      'short.jsonl': jsonlRows(
        Array.from({ length: 30 }, (_, i) => `s${i}`),
        short.vectors,
        8,
      ),
    },
    json: {
      collections: {
        tracks: { file: 'tracks.jsonl', metric: 'cosine', ef: 200 },
        users: { file: 'users.jsonl', metric: 'cosine' },
        raw: { file: 'raw.jsonl', metric: 'ip' },
        short: { file: 'short.jsonl', metric: 'cosine' },
      },
      seenField: 'seen',
    },
  };
}

describe('query API: items, similar, vector queries, filters, batch', () => {
  let s: TestStack;
  const d = data();
  // What the service was given: the published rows, read back from the files (the oracle normalises).
  const tracks = parseJsonl(d.files['tracks.jsonl']).rows;
  const users = parseJsonl(d.files['users.jsonl']).rows;
  const unit = (v: readonly number[]) => v.map((x) => x / Math.hypot(...v));
  /** The oracle's ranking of the allowed tracks for `q`. */
  const ranked = (q: ArrayLike<number>, allow?: (r: number) => boolean) =>
    exactKnn('cosine', tracks, d.trackIds, q, Number.POSITIVE_INFINITY, allow);
  const exact = (q: ArrayLike<number>, k: number, allow?: (r: number) => boolean) =>
    ranked(q, allow)
      .slice(0, k)
      .map((n) => n.id);
  /** `got` is the exact top k (float32 near-ties, within 1e-6, may swap). */
  const expectExact = (got: string[], q: ArrayLike<number>, k: number, allow?: (r: number) => boolean) =>
    expectExactNeighbours(got, ranked(q, allow), k, 1e-6);
  const userVector = (i: number) => users[i] as number[];
  const ids = (body: Record<string, unknown>) => (body.results as Result[]).map((r) => r.id);
  const base = '/v1/spaces/q/collections';

  beforeAll(async () => {
    s = await testStack({ corsOrigins: ['https://app.example'] });
    await s.publish('q', 'r1', d.files, d.json);
  });
  afterAll(async () => s?.dispose());

  it('returns an item with its metadata, and its vector on request', async () => {
    const plain = await s.get(`${base}/tracks/items/t5`);
    expect(plain.status).toBe(200);
    expect(plain.body).toEqual({
      space: 'q',
      version: 'v1',
      collection: 'tracks',
      id: 't5',
      metadata: d.trackMeta[5],
    });
    expect(plain.headers.get('vicinity-version')).toBe('v1');
    const withVector = await s.get(`${base}/tracks/items/t5?include=vector`);
    const v = withVector.body.vector as number[];
    expect(withVector.body.normalised).toBe(true);
    expect(v).toHaveLength(DIMS);
    expect(Math.hypot(...v)).toBeCloseTo(1, 5);
    // hnswlib normalised in float32: equal to ours within an ulp or two.
    for (const [i, x] of unit(tracks[5] as number[]).entries()) expect(v[i]).toBeCloseTo(x, 6);
  });

  it('returns an inner-product item vector exactly as published (not normalised, shortest float32 decimals)', async () => {
    const r = await s.get(`${base}/raw/items/r3?include=vector`);
    expect(r.body.normalised).toBe(false);
    const scaled = d.raw.vectors.map((x) => x * 3);
    const want = Array.from(scaled.subarray(3 * DIMS, 4 * DIMS), (x) => Number(x.toPrecision(6)));
    expect(r.body.vector).toEqual(want);
  });

  it('recommends with target, k, ef and excludeSeen exactly as brute force over the unseen tracks', async () => {
    const r = await s.get(`${base}/users/items/u4/similar?target=tracks&k=15&ef=500&excludeSeen=true`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ collection: 'users', target: 'tracks', id: 'u4', version: 'v1' });
    const seen = new Set(d.seen[4]);
    expectExact(ids(r.body), userVector(4), 15, (row) => !seen.has(`t${row}`));
  });

  it('leaves out ids given in a GET exclude list and still returns k results', async () => {
    const first = ids((await s.get(`${base}/tracks/items/t1/similar?k=10&ef=400`)).body);
    const r = await s.get(
      `${base}/tracks/items/t1/similar?k=10&ef=400&exclude=${first.slice(0, 5).join(',')}`,
    );
    const got = ids(r.body);
    expect(got).toHaveLength(10);
    expect(got.filter((id) => first.slice(0, 5).includes(id))).toEqual([]);
    expect(got.slice(0, 5)).toEqual(first.slice(5));
  });

  it('takes long exclude lists in a POST body and still returns k results', async () => {
    const q = tracks[9] as number[];
    const excluded = exact(q, 1000);
    const r = await s.post(`${base}/tracks/items/t9/similar`, {
      k: 10,
      exclude: excluded,
      includeMetadata: false,
    });
    expect(r.status).toBe(200);
    const set = new Set([...excluded, 't9']);
    expectExact(ids(r.body), q, 10, (row) => !set.has(`t${row}`));
    expect((r.body.results as Result[])[0]).not.toHaveProperty('metadata');
  });

  it('filters on metadata (GET, URL-encoded) with equality, in and ranges', async () => {
    const filter = { genre: { in: ['rock', 'jazz'] }, year: { gte: 1980, lte: 1999 } };
    const r = await s.get(
      `${base}/tracks/items/t2/similar?k=8&ef=400&filter=${encodeURIComponent(JSON.stringify(filter))}`,
    );
    expect(r.status).toBe(200);
    const results = r.body.results as Result[];
    expect(results).toHaveLength(8);
    for (const x of results) {
      expect(['rock', 'jazz']).toContain(x.metadata?.genre);
      expect(x.metadata?.year).toBeGreaterThanOrEqual(1980);
      expect(x.metadata?.year).toBeLessThanOrEqual(1999);
    }
    const tagged = await s.post(`${base}/tracks/items/t2/similar`, { k: 5, filter: { tags: 'live' } });
    // Non-empty first: `every` over no results is true. A third of the tracks are live: 5 qualify.
    const live = tagged.body.results as Result[];
    expect(live).toHaveLength(5);
    expect(live.filter((x) => !((x.metadata?.tags ?? []) as string[]).includes('live'))).toEqual([]);
  });

  it('answers a very selective filter with k results, the exact nearest among the allowed', async () => {
    const q = Array.from(d.t.vectors.subarray(50 * DIMS, 51 * DIMS), (x) => x * 7);
    const r = await s.post(`${base}/tracks/query`, { vector: q, k: 10, filter: { genre: 'polka' } });
    expect(r.status).toBe(200);
    expectExact(ids(r.body), q, 10, (row) => row % 100 === 7);
  });

  it('returns every item when k is more than the collection holds', async () => {
    const r = await s.post(`${base}/short/query`, { vector: Array(8).fill(0.3), k: 1000 });
    expect(r.status).toBe(200);
    expect(r.body.results).toHaveLength(30);
  });

  it('answers an unnormalised vector query as brute force over unit vectors does, best first, ties by id', async () => {
    const q = Array.from({ length: DIMS }, (_, i) => (i % 2 ? 5 : -2));
    const r = await s.post(`${base}/tracks/query`, { vector: q, k: 20, ef: 1000 });
    const results = r.body.results as Result[];
    expectExact(
      results.map((x) => x.id),
      q,
      20,
    );
    for (const x of results) expect(x.score).toBeCloseTo(1 - x.distance, 10);
  });

  it('refuses unknown filter fields and operators with a 400 that names them', async () => {
    const unknownField = await s.post(`${base}/tracks/query`, {
      vector: Array(DIMS).fill(1),
      filter: { mood: 'x' },
    });
    expect(unknownField.status).toBe(400);
    expect(unknownField.body.detail).toMatch(/unknown field "mood".*"genre"/);
    const unknownOp = await s.get(
      `${base}/tracks/items/t1/similar?filter=${encodeURIComponent('{"year":{"gt":1990}}')}`,
    );
    expect(unknownOp.status).toBe(400);
    expect(unknownOp.body.detail).toMatch(/filter\.year\.gt: unknown operator "gt"/);
  });

  it('answers a target of different dims with 422 and an unknown target with 404', async () => {
    const dims = await s.get(`${base}/users/items/u1/similar?target=short`);
    expect(dims.status).toBe(422);
    expect(dims.headers.get('content-type')).toBe('application/problem+json');
    const missing = await s.get(`${base}/users/items/u1/similar?target=albums`);
    expect(missing.status).toBe(404);
  });

  it('answers a batch of item and vector queries from one version, each with its own status', async () => {
    const r = await s.post('/v1/spaces/q/batch', {
      queries: [
        { collection: 'users', item: 'u4', target: 'tracks', k: 15, ef: 500, excludeSeen: true },
        { collection: 'tracks', vector: tracks[0], k: 3 },
        { collection: 'tracks', item: 'nope' },
        { collection: 'tracks', vector: [1, 2] },
        { collection: 'tracks', item: 't1', filter: { mood: 'x' } },
        { collection: 'tracks', item: 't1', bogus: true },
      ],
    });
    expect(r.status).toBe(200);
    expect(r.headers.get('vicinity-version')).toBe('v1');
    expect(r.body.version).toBe('v1');
    const results = r.body.results as Record<string, unknown>[];
    expect(results.map((x) => x.status)).toEqual([200, 200, 404, 400, 400, 400]);
    const seen = new Set(d.seen[4]);
    expectExact(ids(results[0] as Record<string, unknown>), userVector(4), 15, (row) => !seen.has(`t${row}`));
    expect(results[0]).toMatchObject({ collection: 'users', target: 'tracks', id: 'u4' });
    expect(ids(results[1] as Record<string, unknown>)[0]).toBe('t0');
    expect(results[2]).toMatchObject({ problem: { status: 404, title: 'Not found' } });
    expect(results[5]).toMatchObject({ problem: { detail: expect.stringMatching(/unknown field "bogus"/) } });
  });

  it('refuses a batch of more than 100 queries or 10,000 results in all', async () => {
    const q = { collection: 'tracks', item: 't1' };
    const many = await s.post('/v1/spaces/q/batch', { queries: Array(101).fill(q) });
    expect(many.status).toBe(400);
    expect(many.body.detail).toMatch(/at most 100 queries/);
    const big = await s.post('/v1/spaces/q/batch', { queries: Array(11).fill({ ...q, k: 1000 }) });
    expect(big.status).toBe(400);
    expect(big.body.detail).toMatch(/10000 results/);
    const pinned = await s.post('/v1/spaces/q/batch', { queries: [q], version: 'v9' });
    expect(pinned.status).toBe(404);
  });

  it('lists spaces with their active versions', async () => {
    const r = await s.get('/v1/spaces');
    expect(r.body.spaces).toEqual([{ space: 'q', active: { version: 'v1', generation: 1 } }]);
  });

  it('answers a CORS preflight for a configured origin and exposes the version headers', async () => {
    const res = await fetch(`${s.info.apiUrl}${base}/tracks/query`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type',
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(res.headers.get('access-control-allow-methods')).toMatch(/POST/);
    expect(res.headers.get('access-control-allow-headers')).toBe('content-type');
    const get = await fetch(`${s.info.apiUrl}${base}/tracks/items/t1`, {
      headers: { origin: 'https://app.example' },
    });
    expect(get.headers.get('access-control-expose-headers')).toMatch(/vicinity-version/);
    const other = await fetch(`${s.info.apiUrl}${base}/tracks/items/t1`, {
      headers: { origin: 'https://evil.example' },
    });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('reports the parts of a cold load in Server-Timing', async () => {
    await s.query.cache.forget('q', 'v1');
    const r = await s.get(`${base}/tracks/items/t1/similar?k=3`);
    const timing = r.headers.get('server-timing') ?? '';
    for (const part of ['load', 'download', 'verify', 'readIndex', 'parse', 'search', 'total'])
      expect(timing).toMatch(new RegExp(`(^|, )${part};dur=`));
    const warm = await s.get(`${base}/tracks/items/t1/similar?k=3`);
    expect(warm.headers.get('server-timing')).not.toMatch(/load;dur=/);
  });
});

describe('memory budget', () => {
  let s: TestStack;
  const d = data();

  beforeAll(async () => {
    // A budget that holds any one of these collections but no two: each load reserves its estimate
    // (hnswlib's native memory, parsed ids and metadata) and evicts whatever no request holds.
    s = await testStack({ memoryBudgetBytes: Math.floor(1.6 * nativeIndexBytes(N_TRACKS, DIMS, 16)) });
    await s.publish('m', 'r1', d.files, d.json);
  });
  afterAll(async () => s?.dispose());

  it('unloads the least recently used collection, but never one a request in flight holds', async () => {
    const cache = s.query.cache;
    expect((await s.get('/v1/spaces/m/collections/users/items/u1')).status).toBe(200);
    expect(cache.loaded()).toEqual(['m/v1/users']);
    expect((await s.get('/v1/spaces/m/collections/tracks/items/t1')).status).toBe(200);
    expect(cache.loaded()).toEqual(['m/v1/tracks']);
    // This request holds users while it needs tracks too: both cannot fit, and users is never evicted
    // under it — the request is refused (503, Retry-After, why) instead of the instance going past its budget.
    const r = await s.get('/v1/spaces/m/collections/users/items/u1/similar?target=tracks&k=5');
    expect(r.status).toBe(503);
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(r.body).toMatchObject({ reason: 'memory-budget', detail: expect.stringMatching(/memory/) });
    expect(cache.loaded()).toEqual(['m/v1/users']);
    expect(cache.memoryBytes()).toBeLessThanOrEqual(Math.floor(1.6 * nativeIndexBytes(N_TRACKS, DIMS, 16)));
    // Once no request holds them, the next load evicts the least recently used.
    expect((await s.get('/v1/spaces/m/collections/raw/items/r1')).status).toBe(200);
    expect(cache.loaded()).toEqual(['m/v1/raw']);
  });
});
