import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { warmUp } from '../../functions/query/handler';
import { clusteredVectors, jsonlRows } from '../../local/synthetic';
import { type TestStack, testStack } from '../support/local';
import { exactKnn, expectExactNeighbours, parseJsonl } from '../support/oracle';

const DIMS = 16;

function release(prefix: string, seed: number, users = 300, tracks = 800) {
  const u = clusteredVectors(users, DIMS, 6, seed);
  const t = clusteredVectors(tracks, DIMS, 6, seed + 100);
  const userIds = Array.from({ length: users }, (_, i) => `${prefix}u${i}`);
  const trackIds = Array.from({ length: tracks }, (_, i) => `${prefix}t${i}`);
  return {
    u,
    t,
    userIds,
    trackIds,
    files: {
      'users.jsonl': jsonlRows(userIds, u.vectors, DIMS),
      'tracks.jsonl': jsonlRows(trackIds, t.vectors, DIMS, (i) => ({ n: i })),
    },
    json: {
      collections: {
        users: { file: 'users.jsonl', metric: 'cosine' },
        tracks: { file: 'tracks.jsonl', metric: 'cosine', ef: 400 },
      },
      activate: true,
    },
  };
}

/**
 * One stack for the file; `music` holds release a (v1) and no test changes it. A test that moves a
 * pointer publishes into a space of its own, so each test runs alone and in any order.
 */
describe('walking skeleton: publish → build → activate → query', () => {
  let s: TestStack;
  const a = release('a-', 1);
  const b = release('b-', 2);
  const aTracks = parseJsonl(a.files['tracks.jsonl']);
  const aUsers = parseJsonl(a.files['users.jsonl']);
  let spaces = 0;
  /** A new space holding release a as v1 (active) and, with `second`, release b as v2 (active). */
  const twoReleases = async (name: string, second = b) => {
    const space = `${name}-${++spaces}`;
    await s.publish(space, 'r1', a.files, a.json);
    await s.publish(space, 'r2', second.files, second.json);
    return space;
  };

  beforeAll(async () => {
    s = await testStack();
    await s.publish('music', 'r1', a.files, a.json);
  });
  afterAll(async () => s?.dispose());

  it('turns an uploaded two-collection release into answers with the version that served them', async () => {
    const r = await s.get('/v1/spaces/music/collections/tracks/items/a-t0/similar?k=5');
    expect(r.status).toBe(200);
    expect(r.headers.get('vicinity-version')).toBe('v1');
    expect(r.headers.get('server-timing')).toMatch(/total;dur=/);
    expect(r.body).toMatchObject({
      space: 'music',
      version: 'v1',
      collection: 'tracks',
      target: 'tracks',
      id: 'a-t0',
    });
    const results = r.body.results as { id: string; score: number; distance: number; metadata: unknown }[];
    expect(results).toHaveLength(5);
    expect(results.map((x) => x.id)).not.toContain('a-t0');
    for (let i = 1; i < results.length; i++)
      expect(results[i - 1]!.score).toBeGreaterThanOrEqual(results[i]!.score);
    expect(results[0]!.score).toBeCloseTo(1 - results[0]!.distance, 6);
    expect(results[0]!.metadata).toEqual({ n: Number(results[0]!.id.slice(3)) });
  });

  it('recommends tracks for a user exactly as brute-force search over the same release does', async () => {
    for (const user of [0, 17, 123]) {
      const r = await s.get(
        `/v1/spaces/music/collections/users/items/a-u${user}/similar?target=tracks&k=10&ef=400`,
      );
      expect(r.status).toBe(200);
      const got = (r.body.results as { id: string }[]).map((x) => x.id);
      expect(got).toHaveLength(10);
      // The oracle reads the published file, in float64; the index holds float32: near-ties may swap.
      const exact = exactKnn('cosine', aTracks.rows, aTracks.ids, aUsers.rows[user] as number[]);
      expectExactNeighbours(got, exact, 10, 1e-5);
    }
  });

  it('answers a vector query from the active version', async () => {
    const vector = Array.from(a.t.vectors.subarray(5 * DIMS, 6 * DIMS));
    const r = await s.post('/v1/spaces/music/collections/tracks/query', { vector, k: 3 });
    expect(r.status).toBe(200);
    expect((r.body.results as { id: string }[])[0]!.id).toBe('a-t5');
    expect(r.body.version).toBe('v1');
  });

  it('loads every collection of a version when EventBridge sends a warm-up', async () => {
    const r = await warmUp(s.query, { vicinity: 'warm-up', slot: 0, space: 'music', version: 'v1' });
    expect(r).toMatchObject({ warmed: ['users', 'tracks'] });
    const broken = await warmUp(s.query, { vicinity: 'warm-up', slot: 1, space: 'music', version: 'v9' });
    expect(broken.warmed).toEqual([]);
  });

  it('lists the space with its active version and versions', async () => {
    const r = await s.get('/v1/spaces/music');
    expect(r.status).toBe(200);
    expect(r.body.active).toMatchObject({ version: 'v1', generation: 1 });
    expect((r.body.versions as { status: string }[])[0]).toMatchObject({ version: 'v1', status: 'READY' });
  });

  it.each([
    ['an unknown space', '/v1/spaces/nope/collections/tracks/items/x/similar', 404],
    ['an invalid space name', '/v1/spaces/No_Way!/collections/tracks/items/x/similar', 400],
    ['an unknown collection', '/v1/spaces/music/collections/albums/items/a-t0/similar', 404],
    ['an unknown item', '/v1/spaces/music/collections/tracks/items/zzz/similar', 404],
    ['k=0', '/v1/spaces/music/collections/tracks/items/a-t0/similar?k=0', 400],
    ['k=1001', '/v1/spaces/music/collections/tracks/items/a-t0/similar?k=1001', 400],
    ['k=ten', '/v1/spaces/music/collections/tracks/items/a-t0/similar?k=ten', 400],
    ['an unknown route', '/v1/nothing-here', 404],
  ])('answers %s (%s) with a problem+json %i', async (_what, path, status) => {
    const r = await s.get(path);
    expect(r.status).toBe(status);
    expect(r.headers.get('content-type')).toBe('application/problem+json');
    expect(r.body).toMatchObject({ status, title: expect.any(String), detail: expect.any(String) });
  });

  it.each([
    ['a body that is not JSON', '{"vector": [1,2', 400],
    ['an empty body', '', 400],
    ['a vector of the wrong length', { vector: [1, 2, 3] }, 400],
    ['strings in the vector', { vector: Array(DIMS).fill('x') }, 400],
    ['an infinite value', `{"vector":[${Array(DIMS).fill('1e999').join(',')}]}`, 400],
    ['no vector', { k: 3 }, 400],
  ])('refuses a query with %s as a 400', async (_what, body, status) => {
    const r = await s.post('/v1/spaces/music/collections/tracks/query', body);
    expect(r.status).toBe(status);
    expect(r.headers.get('content-type')).toBe('application/problem+json');
  });

  it('switches both collections at once when a second release lands', async () => {
    const sp = await twoReleases('switch');
    const users = await s.get(
      `/v1/spaces/${sp}/collections/users/items/b-u3/similar?target=tracks&k=10&consistency=strong`,
    );
    expect(users.status).toBe(200);
    expect(users.body.version).toBe('v2');
    const results = users.body.results as { id: string }[];
    expect(results).toHaveLength(10);
    expect(results.filter((x) => !x.id.startsWith('b-t'))).toEqual([]);
    const gone = await s.get(
      `/v1/spaces/${sp}/collections/users/items/a-u3/similar?target=tracks&consistency=strong`,
    );
    expect(gone.status).toBe(404);
    const space = await s.get(`/v1/spaces/${sp}`);
    expect(space.body.active).toMatchObject({ version: 'v2', generation: 2 });
    const history = await s.get(`/v1/spaces/${sp}/history`);
    expect(
      (history.body.history as { to: string; from: string | null }[]).map((h) => [h.from, h.to]),
    ).toEqual([
      ['v1', 'v2'],
      [null, 'v1'],
    ]);
  });

  it('activates an older READY version on request and refuses a stale generation with 409', async () => {
    const sp = await twoReleases('older');
    const ok = await s.post(`/v1/spaces/${sp}/activate`, { version: 'v1', expectedGeneration: 2 });
    expect(ok.status).toBe(200);
    expect(ok.body.pointer).toMatchObject({ version: 'v1', generation: 3, previous: 'v2', changedBy: 'api' });
    const stale = await s.post(`/v1/spaces/${sp}/activate`, { version: 'v2', expectedGeneration: 2 });
    expect(stale.status).toBe(409);
    expect(stale.headers.get('content-type')).toBe('application/problem+json');
    expect(stale.body.pointer).toMatchObject({ version: 'v1', generation: 3 });
    const missing = await s.post(`/v1/spaces/${sp}/activate`, { version: 'v99', expectedGeneration: 3 });
    expect(missing.status).toBe(404);
    const r = await s.get(`/v1/spaces/${sp}/collections/tracks/items/a-t0/similar?consistency=strong`);
    expect(r.body.version).toBe('v1');
  });

  it('answers similar (GET and POST), a vector query and a batch from a pinned older version, with its data', async () => {
    // Same ids, other vectors: a pin that is ignored answers 200 from v2, and only the data tells.
    // Break seen: functions/query/versions.ts `if (params.version)` → `if (false && params.version)`
    // (every route serves the active v2) — fails here.
    const same = release('a-', 5);
    const sp = await twoReleases('pinned', same);
    expect((await s.get(`/v1/spaces/${sp}`)).body.active).toMatchObject({ version: 'v2' });
    /** v1's tracks ranked for `q` (without the queried item itself). */
    const oracle = (q: number[], skip?: string) =>
      exactKnn('cosine', aTracks.rows, aTracks.ids, q).filter((n) => n.id !== skip);
    const tracks = (body: Record<string, unknown>) => (body.results as { id: string }[]).map((x) => x.id);
    const base = `/v1/spaces/${sp}/collections`;
    const item = 'a-t3';
    const itemVector = aTracks.rows[3] as number[];

    const get = await s.get(`${base}/tracks/items/${item}/similar?k=8&ef=400&version=v1`);
    expect(get.status).toBe(200);
    expect(get.body.version).toBe('v1');
    expect(get.headers.get('vicinity-version')).toBe('v1');
    expectExactNeighbours(tracks(get.body), oracle(itemVector, item), 8, 1e-5);

    const post = await s.post(`${base}/users/items/a-u7/similar`, {
      target: 'tracks',
      k: 8,
      ef: 400,
      version: 'v1',
    });
    expect(post.status).toBe(200);
    expect(post.body.version).toBe('v1');
    expectExactNeighbours(tracks(post.body), oracle(aUsers.rows[7] as number[]), 8, 1e-5);

    const q = aUsers.rows[11] as number[];
    const vector = await s.post(`${base}/tracks/query`, { vector: q, k: 8, ef: 400, version: 'v1' });
    expect(vector.status).toBe(200);
    expect(vector.body.version).toBe('v1');
    expectExactNeighbours(tracks(vector.body), oracle(q), 8, 1e-5);

    const batch = await s.post(`/v1/spaces/${sp}/batch`, {
      version: 'v1',
      queries: [
        { collection: 'tracks', item, k: 8, ef: 400 },
        { collection: 'tracks', vector: q, k: 8, ef: 400 },
      ],
    });
    expect(batch.status).toBe(200);
    expect(batch.body.version).toBe('v1');
    const [byItem, byVector] = batch.body.results as Record<string, unknown>[];
    expectExactNeighbours(tracks(byItem!), oracle(itemVector, item), 8, 1e-5);
    expectExactNeighbours(tracks(byVector!), oracle(q), 8, 1e-5);

    // v2 holds other vectors under the same ids: unpinned, the answer differs.
    const active = await s.get(`${base}/tracks/items/${item}/similar?k=8&ef=400&consistency=strong`);
    expect(active.body.version).toBe('v2');
    expect(tracks(active.body)).not.toEqual(tracks(get.body));
  });
});

/** Release a with every collection in 8 dims instead of 16: a change of shape clients would notice. */
function reshaped(seed: number) {
  const dims = 8;
  const u = clusteredVectors(100, dims, 4, seed);
  const t = clusteredVectors(200, dims, 4, seed + 1);
  return {
    files: {
      'users.jsonl': jsonlRows(
        Array.from({ length: 100 }, (_, i) => `a-u${i}`),
        u.vectors,
        dims,
      ),
      'tracks.jsonl': jsonlRows(
        Array.from({ length: 200 }, (_, i) => `a-t${i}`),
        t.vectors,
        dims,
      ),
    },
    json: (activate: boolean) => ({
      collections: {
        users: { file: 'users.jsonl', metric: 'cosine' },
        tracks: { file: 'tracks.jsonl', metric: 'cosine' },
      },
      activate,
    }),
  };
}

describe('a release whose dims changed', () => {
  let s: TestStack;
  const a = release('a-', 1);
  const c = reshaped(31);
  let spaces = 0;
  /** A new space: release a active as v1, the 8-dim release as v2. */
  const space = async (name: string, activate: boolean) => {
    const sp = `${name}-${++spaces}`;
    await s.publish(sp, 'r1', a.files, a.json);
    await s.publish(sp, 'r2', c.files, c.json(activate));
    return sp;
  };

  beforeAll(async () => {
    s = await testStack();
  });
  afterAll(async () => s?.dispose());

  it('is refused activation with a 422 naming the difference, and activated with force', async () => {
    // Break seen: functions/core/pointer.ts assertActivatable `if (!active || force || …)` → `if (true)`
    // (no compatibility check) — the 422 expectation fails.
    const sp = await space('dims', false);
    expect((await s.get(`/v1/spaces/${sp}/versions/v2`)).body.status).toBe('READY');
    const refused = await s.post(`/v1/spaces/${sp}/activate`, { version: 'v2', expectedGeneration: 1 });
    expect(refused.status).toBe(422);
    expect(refused.headers.get('content-type')).toBe('application/problem+json');
    expect(refused.body.detail).toMatch(/collection (users|tracks) has 8 dims, active has 16/);
    expect(refused.body.detail).toMatch(/"force": true/);
    expect((await s.get(`/v1/spaces/${sp}`)).body.active).toMatchObject({ version: 'v1', generation: 1 });
    const forced = await s.post(`/v1/spaces/${sp}/activate`, {
      version: 'v2',
      expectedGeneration: 1,
      force: true,
    });
    expect(forced.status).toBe(200);
    expect(forced.body.pointer).toMatchObject({ version: 'v2', generation: 2, previous: 'v1' });
    const r = await s.post(`/v1/spaces/${sp}/collections/tracks/query`, {
      vector: Array(8).fill(0.5),
      k: 3,
      consistency: 'strong',
    });
    expect(r.status).toBe(200);
    expect(r.body.version).toBe('v2');
  });
});

/**
 * New behaviour (issue 12 item 6, being implemented elsewhere): an automatic activation checks the
 * shape like an explicit one. Against a builder that still activates blindly this fails: v2 goes live.
 */
describe('auto-activation checks shape (issue 12 item 6)', () => {
  let s: TestStack;
  const a = release('a-', 1);
  const c = reshaped(41);

  beforeAll(async () => {
    s = await testStack();
  });
  afterAll(async () => s?.dispose());

  it('leaves a release whose dims changed READY but not active, with the reason in its record', async () => {
    const sp = 'auto-dims';
    await s.publish(sp, 'r1', a.files, a.json);
    await s.publish(sp, 'r2', c.files, c.json(true));
    const v2 = await s.get(`/v1/spaces/${sp}/versions/v2`);
    expect(v2.body.status).toBe('READY');
    expect(v2.body.notActivatedReason).toMatch(/dims/);
    expect((await s.get(`/v1/spaces/${sp}`)).body.active).toMatchObject({ version: 'v1', generation: 1 });
    const r = await s.get(`/v1/spaces/${sp}/collections/tracks/items/a-t0/similar?consistency=strong`);
    expect(r.body.version).toBe('v1');
  });
});
