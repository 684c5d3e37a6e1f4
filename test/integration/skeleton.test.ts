import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bruteForce } from '../../functions/core/search';
import { warmUp } from '../../functions/query/handler';
import { clusteredVectors, jsonlRows } from '../../local/synthetic';
import { type TestStack, testStack } from '../support/local';

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

describe('walking skeleton: publish → build → activate → query', () => {
  let s: TestStack;
  const a = release('a-', 1);
  const b = release('b-', 2);

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
      const q = a.u.vectors.subarray(user * DIMS, (user + 1) * DIMS);
      const exact = bruteForce('cosine', DIMS, a.t.vectors, a.trackIds, q, 10).map((n) => n.id);
      expect(got).toEqual(exact);
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
  ])('answers %s with a problem+json %i', async (_what, path, status) => {
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
    await s.publish('music', 'r2', b.files, b.json);
    const users = await s.get(
      '/v1/spaces/music/collections/users/items/b-u3/similar?target=tracks&k=10&consistency=strong',
    );
    expect(users.status).toBe(200);
    expect(users.body.version).toBe('v2');
    expect((users.body.results as { id: string }[]).every((x) => x.id.startsWith('b-t'))).toBe(true);
    const gone = await s.get(
      '/v1/spaces/music/collections/users/items/a-u3/similar?target=tracks&consistency=strong',
    );
    expect(gone.status).toBe(404);
    const space = await s.get('/v1/spaces/music');
    expect(space.body.active).toMatchObject({ version: 'v2', generation: 2 });
    const history = await s.get('/v1/spaces/music/history');
    expect(
      (history.body.history as { to: string; from: string | null }[]).map((h) => [h.from, h.to]),
    ).toEqual([
      ['v1', 'v2'],
      [null, 'v1'],
    ]);
  });

  it('activates an older READY version on request and refuses a stale generation with 409', async () => {
    const ok = await s.post('/v1/spaces/music/activate', { version: 'v1', expectedGeneration: 2 });
    expect(ok.status).toBe(200);
    expect(ok.body.pointer).toMatchObject({ version: 'v1', generation: 3, previous: 'v2', changedBy: 'api' });
    const stale = await s.post('/v1/spaces/music/activate', { version: 'v2', expectedGeneration: 2 });
    expect(stale.status).toBe(409);
    expect(stale.headers.get('content-type')).toBe('application/problem+json');
    expect(stale.body.pointer).toMatchObject({ version: 'v1', generation: 3 });
    const missing = await s.post('/v1/spaces/music/activate', { version: 'v99', expectedGeneration: 3 });
    expect(missing.status).toBe(404);
    const r = await s.get('/v1/spaces/music/collections/tracks/items/a-t0/similar?consistency=strong');
    expect(r.body.version).toBe('v1');
  });
});
