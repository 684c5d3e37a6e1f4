import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pca2, project, symmetricEigen } from '../../functions/query/explore/pca';
import { foldText, PrefixIndex } from '../../functions/query/explore/prefix-index';
import { idHash, sampleByHash } from '../../functions/query/explore/sampling';
import { clusteredVectors, jsonlRows, mulberry32 } from '../../local/synthetic';
import { type TestStack, testStack } from '../support/local';

const NAMES = [
  'Radiohead',
  'Radio Birdman',
  'The Radio Dept.',
  'Sigur Rós',
  'Björk',
  'Portishead',
  'Massive Attack',
];

describe('explore routes: pure parts', () => {
  it('pca2 finds the axes of largest variance, as an exact eigen-decomposition does', () => {
    const rand = mulberry32(3);
    const n = 400;
    const d = 6;
    const rows = new Float64Array(n * d);
    // Variance 9 along (1,1,0,0,0,0)/√2, 4 along e3, small noise elsewhere.
    for (let r = 0; r < n; r++) {
      const a = (rand() - 0.5) * Math.sqrt(12) * 3;
      const b = (rand() - 0.5) * Math.sqrt(12) * 2;
      for (let k = 0; k < d; k++) rows[r * d + k] = (rand() - 0.5) * 0.1 + 5;
      rows[r * d + 0] = (rows[r * d + 0] as number) + a / Math.SQRT2;
      rows[r * d + 1] = (rows[r * d + 1] as number) + a / Math.SQRT2;
      rows[r * d + 2] = (rows[r * d + 2] as number) + b;
    }
    const p = pca2(rows, n, d);
    // Exact: covariance, then Jacobi.
    const cov = new Float64Array(d * d);
    for (let r = 0; r < n; r++)
      for (let i = 0; i < d; i++)
        for (let j = 0; j < d; j++)
          cov[i * d + j] =
            (cov[i * d + j] as number) +
            ((rows[r * d + i] as number) - (p.mean[i] as number)) *
              ((rows[r * d + j] as number) - (p.mean[j] as number));
    const exact = symmetricEigen(cov, d);
    for (const k of [0, 1]) {
      let dot = 0;
      for (let i = 0; i < d; i++) dot += (p.axes[k]![i] as number) * (exact.vectors[i * d + k] as number);
      expect(Math.abs(dot)).toBeGreaterThan(0.9999);
    }
    const total = exact.values.reduce((a, b) => a + b, 0);
    expect(p.explained[0]).toBeCloseTo((exact.values[0] as number) / total, 6);
    expect(p.explained[1]).toBeCloseTo((exact.values[1] as number) / total, 6);
    expect(Math.abs(p.axes[0][0] as number)).toBeCloseTo(Math.SQRT1_2, 2);
    // Projections of the sample are centred.
    let sx = 0;
    for (let r = 0; r < n; r++) sx += project(p, rows.subarray(r * d, (r + 1) * d))[0];
    expect(Math.abs(sx / n)).toBeLessThan(1e-9);
    // Deterministic, sign included.
    expect(Array.from(pca2(rows, n, d).axes[0])).toEqual(Array.from(p.axes[0]));
  });

  it('samples by id hash: the same ids whatever their order', () => {
    const ids = Array.from({ length: 1000 }, (_, i) => `id-${i}`);
    const a = sampleByHash(ids, 50).map((i) => ids[i]);
    const shuffled = [...ids].reverse();
    const b = sampleByHash(shuffled, 50).map((i) => shuffled[i]);
    expect(a).toHaveLength(50);
    expect(new Set(a)).toEqual(new Set(b));
    expect(sampleByHash(ids, 5000)).toHaveLength(1000);
    expect(idHash('a')).not.toBe(idHash('b'));
  });

  it('prefix index: whole-value matches first, then later words; accents and case folded', () => {
    const idx = new PrefixIndex([...NAMES, undefined, ['electronic', 'trip-hop']]);
    const names = (p: string) => idx.search(p, 10).hits.map((h) => h.value);
    expect(names('radio')).toEqual(['Radiohead', 'Radio Birdman', 'The Radio Dept.']);
    expect(names('RADIOH')).toEqual(['Radiohead']);
    expect(names('sigur ros')).toEqual(['Sigur Rós']);
    expect(names('bjo')).toEqual(['Björk']);
    expect(names('attack')).toEqual(['Massive Attack']);
    expect(names('trip')).toEqual(['trip-hop']);
    expect(names('hop')).toEqual(['trip-hop']);
    expect(names('zzz')).toEqual([]);
    expect(idx.search('', 2)).toMatchObject({ more: true });
    expect(foldText('Ｒós')).toBe('ros');
  });
});

describe('explore routes over HTTP', () => {
  let s: TestStack;
  const DIMS = 12;
  const N = 600;
  const data = clusteredVectors(N, DIMS, 4, 11);
  const ids = Array.from({ length: N }, (_, i) => `a${i}`);
  const name = (i: number) => (i < NAMES.length ? (NAMES[i] as string) : `Artist ${i}`);

  beforeAll(async () => {
    s = await testStack();
    const rows = jsonlRows(ids, data.vectors, DIMS, (i) => ({
      name: name(i),
      genre: `g${data.cluster[i]}`,
      plays: i,
      tags: ['x', 'y'],
    }));
    await s.publish(
      'music',
      'r1',
      { 'artists.jsonl': rows },
      { collections: { artists: { file: 'artists.jsonl', metric: 'cosine' } } },
    );
    // A second version where a0 is gone: the projection of v1 still knows it when pinned.
    await s.publish(
      'music',
      'r2',
      { 'artists.jsonl': rows.split('\n').slice(1).join('\n') },
      { collections: { artists: { file: 'artists.jsonl', metric: 'cosine' } }, activate: false },
    );
  });
  afterAll(async () => s?.dispose());

  it('projects a deterministic sample to 2-D with the chosen metadata', async () => {
    const r = await s.get('/v1/spaces/music/collections/artists/projection?sample=200&fields=name,genre');
    expect(r.status).toBe(200);
    expect(r.headers.get('vicinity-version')).toBe('v1');
    expect(r.headers.get('server-timing')).toMatch(/total;dur=/);
    expect(r.body).toMatchObject({
      space: 'music',
      version: 'v1',
      collection: 'artists',
      metric: 'cosine',
      dims: DIMS,
      count: N,
      sample: 200,
      method: 'pca',
      fields: ['name', 'genre'],
    });
    expect([...(r.body.metadataFields as string[])].sort()).toEqual(['genre', 'name', 'plays', 'tags']);
    const points = r.body.points as { id: string; x: number; y: number; metadata: Record<string, unknown> }[];
    expect(points).toHaveLength(200);
    expect(new Set(points.map((p) => p.id)).size).toBe(200);
    for (const p of points) {
      expect(Number.isFinite(p.x) && Number.isFinite(p.y)).toBe(true);
      expect(Object.keys(p.metadata).sort()).toEqual(['genre', 'name']);
    }
    const explained = r.body.explained as number[];
    expect(explained[0]).toBeGreaterThan(explained[1] as number);
    expect((explained[0] as number) + (explained[1] as number)).toBeLessThanOrEqual(1);
    // Clusters stay apart on the map: points of one cluster are closer to their centroid than to others'.
    const byGenre = new Map<string, { x: number; y: number }[]>();
    for (const p of points)
      byGenre.set(p.metadata.genre as string, [...(byGenre.get(p.metadata.genre as string) ?? []), p]);
    expect(byGenre.size).toBeGreaterThan(1);
    const centroid = new Map(
      [...byGenre].map(([g, ps]) => [
        g,
        { x: ps.reduce((a, p) => a + p.x, 0) / ps.length, y: ps.reduce((a, p) => a + p.y, 0) / ps.length },
      ]),
    );
    const dist = (p: { x: number; y: number }, c: { x: number; y: number }) =>
      Math.hypot(p.x - c.x, p.y - c.y);
    let own = 0;
    let others = 0;
    let nearestOwn = 0;
    for (const p of points) {
      const g = p.metadata.genre as string;
      const mine = dist(p, centroid.get(g)!);
      const rest = [...centroid].filter(([h]) => h !== g).map(([, c]) => dist(p, c));
      own += mine;
      others += rest.reduce((a, b) => a + b, 0) / rest.length;
      if (mine < Math.min(...rest)) nearestOwn++;
    }
    // Break seen: functions/query/explore/projection.ts placing points at pseudo-random (x, y) instead of
    // project(pca, row) — fails here.
    expect(own / others).toBeLessThan(0.3);
    expect(nearestOwn / points.length).toBeGreaterThanOrEqual(0.95);

    const again = await s.get('/v1/spaces/music/collections/artists/projection?sample=200&fields=name,genre');
    expect(again.body.points).toEqual(points);
  });

  it('defaults to the scalar metadata fields and samples the whole collection when it is small', async () => {
    const r = await s.get('/v1/spaces/music/collections/artists/projection');
    expect(r.status).toBe(200);
    expect(r.body.sample).toBe(N);
    expect([...(r.body.fields as string[])].sort()).toEqual(['genre', 'name', 'plays']);
  });

  it('projects named items on the same axes, listing ids it does not know', async () => {
    const full = await s.get('/v1/spaces/music/collections/artists/projection?sample=100&fields=name');
    const first = (full.body.points as { id: string; x: number; y: number }[])[0]!;
    const r = await s.get(
      `/v1/spaces/music/collections/artists/projection?sample=100&fields=name&points=false&ids=${first.id},a3,nope`,
    );
    expect(r.status).toBe(200);
    expect(r.body.points).toBeUndefined();
    const extra = r.body.extra as { id: string; x: number; y: number; metadata: { name: string } }[];
    expect(extra.map((e) => e.id)).toEqual([first.id, 'a3']);
    expect(extra[0]).toMatchObject({ x: first.x, y: first.y });
    expect(extra[1]!.metadata.name).toBe('Sigur Rós');
    expect(r.body.missing).toEqual(['nope']);
  });

  it('refuses bad projection parameters with 400 and unknown names with 404', async () => {
    for (const q of [
      'sample=0',
      'sample=10001',
      'sample=x',
      'fields=nope',
      'points=maybe',
      'colour=genre',
      'version=7',
    ]) {
      const r = await s.get(`/v1/spaces/music/collections/artists/projection?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.headers.get('content-type')).toContain('application/problem+json');
    }
    const many = Array.from({ length: 101 }, (_, i) => `a${i}`).join(',');
    expect((await s.get(`/v1/spaces/music/collections/artists/projection?ids=${many}`)).status).toBe(400);
    expect((await s.get('/v1/spaces/music/collections/nope/projection')).status).toBe(404);
    expect((await s.get('/v1/spaces/nope/collections/artists/projection')).status).toBe(404);
    expect((await s.get('/v1/spaces/music/collections/artists/projection?version=v9')).status).toBe(404);
  });

  it('searches a metadata field by prefix, whole-value matches first, accents folded', async () => {
    const r = await s.get('/v1/spaces/music/collections/artists/items?field=name&prefix=radio');
    expect(r.status).toBe(200);
    expect(r.headers.get('vicinity-version')).toBe('v1');
    expect(r.body).toMatchObject({
      space: 'music',
      version: 'v1',
      collection: 'artists',
      field: 'name',
      prefix: 'radio',
      more: false,
    });
    const results = r.body.results as { id: string; value: string; metadata: { name: string } }[];
    expect(results.map((x) => [x.id, x.value])).toEqual([
      ['a0', 'Radiohead'],
      ['a1', 'Radio Birdman'],
      ['a2', 'The Radio Dept.'],
    ]);
    expect(results[0]!.metadata).toMatchObject({ name: 'Radiohead', genre: expect.any(String) });
    const ros = await s.get(
      `/v1/spaces/music/collections/artists/items?field=name&prefix=${encodeURIComponent('SIGUR R')}`,
    );
    expect((ros.body.results as { id: string }[]).map((x) => x.id)).toEqual(['a3']);
  });

  it('searches ids by default, with a limit, and reads a pinned version', async () => {
    const r = await s.get('/v1/spaces/music/collections/artists/items?prefix=a1&limit=3');
    expect(r.status).toBe(200);
    expect(r.body.field).toBe('id');
    expect((r.body.results as { id: string }[]).map((x) => x.id)).toEqual(['a1', 'a10', 'a11']);
    expect(r.body.more).toBe(true);
    const v2 = await s.get(
      '/v1/spaces/music/collections/artists/items?field=name&prefix=radiohead&version=v2',
    );
    expect(v2.status).toBe(200);
    expect(v2.body.version).toBe('v2');
    expect(v2.body.results).toEqual([]);
  });

  it('refuses bad prefix searches with 400', async () => {
    for (const q of [
      '',
      'field=name',
      'prefix=a&field=nope',
      'prefix=a&limit=0',
      'prefix=a&limit=101',
      'prefix=a&k=3',
    ]) {
      const r = await s.get(`/v1/spaces/music/collections/artists/items?${q}`);
      expect(r.status, q).toBe(400);
    }
  });
});
