/**
 * Erasure, the gaps of the first pass (each test on its own space of one local stack, any order):
 * - an erased id listed in another item's seen field is left out of every answer's metadata at once
 *   (items, includeMetadata results, batch, prefix search), and the purge rewrites those metadata files;
 * - a space is a 404 on every read route (space, versions, version, history, erasures) from the moment
 *   its deletion is accepted, before the sweeper finishes it;
 * - after a purge switched a version to a new manifest (and the old objects were deleted), the next
 *   build measures overlap against it and a warm-up loads it (both read the record's manifestKey).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoRegistry } from '../../functions/adapters/dynamo-registry';
import { silentLog } from '../../functions/core/ports';
import { warmUp } from '../../functions/query/handler';
import { type PurgeReport, purgeSpace } from '../../functions/sweeper/purge';
import { clusteredVectors, jsonlRows } from '../../local/synthetic';
import { type TestStack, testStack } from '../support/local';

const DIMS = 8;
const USERS = 60;
const ARTISTS = 80;
const ERASED = 'a3';

function release(seed: number, quality?: Record<string, unknown>) {
  const u = clusteredVectors(USERS, DIMS, 4, seed);
  const t = clusteredVectors(ARTISTS, DIMS, 4, seed + 50);
  const userIds = Array.from({ length: USERS }, (_, i) => `u${i}`);
  const artistIds = Array.from({ length: ARTISTS }, (_, i) => `a${i}`);
  return {
    files: {
      'users.jsonl': jsonlRows(userIds, u.vectors, DIMS, (i) => ({
        name: `user ${i}`,
        seen: [`a${(i % 10) + 10}`, ERASED, `a${(i * 7) % ARTISTS}`],
      })),
      'artists.jsonl': jsonlRows(artistIds, t.vectors, DIMS, (j) => ({ name: `Artist ${j}` })),
    },
    json: {
      collections: {
        users: { file: 'users.jsonl', metric: 'cosine' },
        artists: { file: 'artists.jsonl', metric: 'cosine' },
      },
      activate: true,
      seenField: 'seen',
      ...(quality ? { quality } : {}),
    },
  };
}

describe('erasure: seen lists, deleted spaces, purged manifests', () => {
  let s: TestStack;
  let registry: DynamoRegistry;
  let workDir: string;
  const call = async (method: string, path: string, body?: unknown) => {
    const { status, body: answer } = await s.call(method, path, body);
    return { status, body: answer };
  };
  const purge = async (space: string) => {
    const report: PurgeReport = { rewritten: [], purged: 0, deletedObjects: 0 };
    await purgeSpace(
      { store: s.store, registry, log: silentLog, workDir, graceMs: 0 },
      space,
      await registry.getSpaceState(space),
      report,
    );
    return report;
  };
  const seenLists = (text: string) => {
    const out: unknown[] = [];
    JSON.parse(text, (k, v) => {
      if (k === 'seen') out.push(v);
      return v;
    });
    return out as string[][];
  };

  beforeAll(async () => {
    // The tests sweep themselves: no timer sweep (every 60 s by default) may race them.
    s = await testStack({}, undefined, { sweepMs: 0 });
    registry = new DynamoRegistry(s.deps.dynamo, s.info.table);
    workDir = await mkdtemp(join(tmpdir(), 'vicinity-purge-'));
  }, 60_000);
  afterAll(async () => {
    await s?.dispose();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it('leaves an erased id out of every seen list an answer shows, before and after the purge', async () => {
    const r = release(1);
    await s.publish('seen', 'r1', r.files, r.json);
    const q = 'consistency=strong';
    const before = await s.get(`/v1/spaces/seen/collections/users/items/u1?${q}`);
    expect((before.body.metadata as { seen: string[] }).seen).toContain(ERASED);

    expect((await call('DELETE', `/v1/spaces/seen/collections/artists/items/${ERASED}`)).status).toBe(202);
    const answers = async () => {
      const texts: string[] = [];
      const item = await s.get(`/v1/spaces/seen/collections/users/items/u1?${q}`);
      expect(item.status).toBe(200);
      expect((item.body.metadata as { seen: string[]; name: string }).name).toBe('user 1');
      texts.push(JSON.stringify(item.body));
      const similar = await s.get(`/v1/spaces/seen/collections/users/items/u2/similar?k=20&${q}`);
      expect(similar.status).toBe(200);
      texts.push(JSON.stringify(similar.body));
      const vector = await s.post('/v1/spaces/seen/collections/users/query', {
        vector: Array.from({ length: DIMS }, (_, i) => i + 1),
        k: 10,
        consistency: 'strong',
      });
      texts.push(JSON.stringify(vector.body));
      const batch = await s.post('/v1/spaces/seen/batch', {
        consistency: 'strong',
        queries: [{ collection: 'users', item: 'u3', k: 10 }],
      });
      texts.push(JSON.stringify(batch.body));
      const prefix = await s.get(`/v1/spaces/seen/collections/users/items?prefix=u&limit=50&${q}`);
      expect(prefix.status).toBe(200);
      texts.push(JSON.stringify(prefix.body));
      let lists = 0;
      for (const t of texts)
        for (const seen of seenLists(t)) {
          lists++;
          expect(seen).not.toContain(ERASED);
          expect(seen).toHaveLength(2);
        }
      expect(lists).toBeGreaterThan(90);
    };
    await answers();

    const report = await purge('seen');
    expect(report.rewritten.map((x) => x.version)).toEqual(['v1']);
    // The metadata files at rest no longer list it either (and the old ones are gone: grace 0).
    const metas = (await s.store.list('snapshots/seen/')).filter((o) => o.key.endsWith('meta.json'));
    expect(metas.length).toBeGreaterThan(0);
    for (const o of metas) {
      const text = await s.store.getText(o.key);
      expect(text, o.key).not.toContain(`"${ERASED}"`);
    }
    await answers();
  }, 120_000);

  it('answers 404 on every read route of a space as soon as its deletion is accepted', async () => {
    const r = release(2);
    await s.publish('gone', 'r1', r.files, r.json);
    await call('DELETE', '/v1/spaces/gone/collections/artists/items/a1');
    const routes = [
      '/v1/spaces/gone',
      '/v1/spaces/gone/versions',
      '/v1/spaces/gone/versions/v1',
      '/v1/spaces/gone/history',
      '/v1/spaces/gone/erasures',
      '/v1/spaces/gone/collections/users/items/u1?consistency=strong',
      '/v1/spaces/gone/collections/users/items/u1/similar?consistency=strong',
      '/v1/spaces/gone/collections/users/items?prefix=u&consistency=strong',
      '/v1/spaces/gone/diff?to=v1',
    ];
    // Registry reads (space, versions, history, erasures) are consistent: 404 at once whatever the
    // consistency; data routes at once with consistency=strong, within the pointer TTL otherwise.
    for (const path of routes) expect((await s.get(path)).status, path).toBe(200);
    const space = (await s.get('/v1/spaces/gone')).body as { pointer: { generation: number } };
    const del = await call('DELETE', '/v1/spaces/gone', { expectedGeneration: space.pointer.generation });
    expect(del.status).toBe(202);
    for (const path of routes) {
      const got = await s.get(path);
      expect(got.status, path).toBe(404);
      expect(got.headers.get('content-type'), path).toContain('application/problem+json');
    }
    expect((await call('POST', '/v1/spaces/gone/collections/artists/items/a1/restore')).status).toBe(404);
    // Nothing was deleted yet: the mark alone makes it a 404 (the sweeper finishes the rest).
    expect((await s.store.list('snapshots/gone/')).length).toBeGreaterThan(0);
  }, 120_000);

  it('after a purge, the next build compares with the purged manifest and a warm-up loads it', async () => {
    const r1 = release(3);
    await s.publish('next', 'r1', r1.files, r1.json);
    await call('DELETE', '/v1/spaces/next/collections/artists/items/a5');
    const report = await purge('next');
    expect(report.rewritten.map((x) => x.version)).toEqual(['v1']);
    expect(report.deletedObjects).toBeGreaterThan(0);
    // The default manifest key is gone: only the record's manifestKey names v1's snapshot now.
    expect(await s.store.getText('snapshots/next/v1/manifest.json')).toBeUndefined();
    const v1 = (await s.get('/v1/spaces/next/versions/v1')).body as { manifestKey: string };
    expect(v1.manifestKey).toMatch(/\/p1\/manifest\.json$/);

    const warmed = await warmUp(s.query, { vicinity: 'warm-up', slot: 0, space: 'next', version: 'v1' });
    expect(warmed).toMatchObject({ warmed: ['users', 'artists'] });
    expect(warmed).not.toHaveProperty('error');

    const r2 = release(3, { minOverlap: 0.5 });
    await s.publish('next', 'r2', r2.files, r2.json);
    const v2 = (await s.get('/v1/spaces/next/versions/v2')).body as {
      status: string;
      collections: Record<string, { overlapWith?: string; overlapAt10?: number; overlapSkipped?: string }>;
    };
    expect(v2.status).toBe('READY');
    for (const c of ['users', 'artists']) {
      expect(v2.collections[c]?.overlapSkipped, c).toBeUndefined();
      expect(v2.collections[c]?.overlapWith, c).toBe('v1');
      expect(v2.collections[c]?.overlapAt10, c).toBeGreaterThan(0.5);
    }
  }, 120_000);
});
