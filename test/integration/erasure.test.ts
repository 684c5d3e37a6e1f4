/**
 * Erasure end to end on the local stack (invariant 9): a user and an artist erased from a two-version
 * space never appear in any route's answers, are purged from every stored snapshot by the sweeper (new
 * objects, new hashes; neither the id nor the vector's float32 bytes remain), are left out of a later
 * release, come back after a restore; and a space deleted mid-way by a crash is finished by the sweeper.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoRegistry } from '../../functions/adapters/dynamo-registry';
import { normalise } from '../../functions/core/search';
import { clusteredVectors, jsonlRows } from '../../local/synthetic';
import { type TestStack, testStack } from '../support/local';
import { sweepNow } from '../support/sweep';

const DIMS = 16;
const USERS = 150;
const ARTISTS = 300;
const ERASED_USER = 'u5';
const ERASED_ARTIST = 't7';
/** t20, t21, t22 share one vector (a duplicate group, indexed once); t21 is erased. */
const DUP = ['t20', 't21', 't22'];

function release(seed: number, extraArtist = true) {
  const u = clusteredVectors(USERS, DIMS, 5, seed);
  const t = clusteredVectors(ARTISTS, DIMS, 5, seed + 50);
  for (const d of DUP.slice(1)) {
    const i = Number(d.slice(1));
    t.vectors.copyWithin(i * DIMS, 20 * DIMS, 21 * DIMS);
  }
  const userIds = Array.from({ length: USERS }, (_, i) => `u${i}`);
  let artistIds = Array.from({ length: ARTISTS }, (_, i) => `t${i}`);
  if (!extraArtist) artistIds = artistIds.filter((id) => id !== ERASED_ARTIST);
  const keep = artistIds.map((id) => Number(id.slice(1)));
  const tv = new Float32Array(keep.length * DIMS);
  keep.forEach((row, j) => {
    tv.set(t.vectors.subarray(row * DIMS, (row + 1) * DIMS), j * DIMS);
  });
  return {
    u: u.vectors,
    t: t.vectors,
    files: {
      'users.jsonl': jsonlRows(userIds, u.vectors, DIMS, (i) => ({
        seen: [`t${i % 50}`, ERASED_ARTIST, `t${(i * 7) % ARTISTS}`],
      })),
      'artists.jsonl': jsonlRows(artistIds, tv, DIMS, (j) => ({ name: `Artist ${artistIds[j]}` })),
    },
    json: {
      collections: {
        users: { file: 'users.jsonl', metric: 'cosine' },
        artists: { file: 'artists.jsonl', metric: 'cosine', ef: 200 },
      },
      activate: true,
      seenField: 'seen',
    },
  };
}

// One stack; each test its own space, so each runs alone and in any order.
describe('erasure: one call removes an item from every answer, the sweeper from every snapshot', () => {
  let s: TestStack;
  let registry: DynamoRegistry;
  let workDir: string;
  const r1 = release(1);
  const r2 = release(2);
  const call = async (method: string, path: string, body?: unknown) => {
    const { status, body: answer } = await s.call(method, path, body);
    return { status, body: answer };
  };
  const runSweep = () => sweepNow(s.store, registry, { workDir });
  const ids = (body: Record<string, unknown>) => ((body.results ?? []) as { id: string }[]).map((r) => r.id);
  const hidden = [ERASED_USER, ERASED_ARTIST, 't21'];

  /** A space with v1 (release 1) and, unless `only1`, v2 (release 2, active). */
  const twoVersions = async (space: string, only1 = false) => {
    await s.publish(space, 'r1', r1.files, r1.json);
    if (!only1) await s.publish(space, 'r2', r2.files, r2.json);
  };
  /** Erases the user and the two artists (one of a duplicate group); answers the two calls. */
  const eraseAll = async (space: string) => {
    const user = await call('DELETE', `/v1/spaces/${space}/collections/users/items/${ERASED_USER}`, {
      reason: 'GDPR art. 17',
      by: 'dpo',
    });
    const artists = await call('DELETE', `/v1/spaces/${space}/collections/artists/items/${ERASED_ARTIST}`, {
      ids: ['t21'],
    });
    return [user, artists] as const;
  };

  beforeAll(async () => {
    // The tests sweep themselves: no timer sweep (every 60 s by default) may race them.
    s = await testStack({}, undefined, { sweepMs: 0 });
    registry = new DynamoRegistry(s.deps.dynamo, s.info.table);
    workDir = await mkdtemp(join(tmpdir(), 'vicinity-purge-'));
  }, 120_000);
  afterAll(async () => s?.dispose());

  it('answers 202 with the records, and every route of every version leaves the ids out at once', async () => {
    await twoVersions('music');
    const before = await s.get(`/v1/spaces/music/collections/artists/items/${ERASED_ARTIST}`);
    expect(before.status).toBe(200);
    const [e1, e2] = await eraseAll('music');
    expect(e1.status).toBe(202);
    expect(e1.body.erasure).toMatchObject({
      id: ERASED_USER,
      status: 'ERASED',
      by: 'dpo',
      reason: 'GDPR art. 17',
    });
    expect(e2.status).toBe(202);
    expect((e2.body.erasures as unknown[]).length).toBe(2);

    for (const v of ['', '&version=v1']) {
      const q = `consistency=strong${v}`;
      for (const [c, id] of [
        ['users', ERASED_USER],
        ['artists', ERASED_ARTIST],
        ['artists', 't21'],
      ]) {
        expect((await s.get(`/v1/spaces/music/collections/${c}/items/${id}?${q}`)).status).toBe(404);
        expect((await s.get(`/v1/spaces/music/collections/${c}/items/${id}/similar?${q}`)).status).toBe(404);
      }
      // users → artists recommendations, with and without excludeSeen; k still met.
      for (const u of ['u1', 'u2', 'u7', 'u49']) {
        for (const extra of ['', '&excludeSeen=true']) {
          const r = await s.get(
            `/v1/spaces/music/collections/users/items/${u}/similar?target=artists&k=30&${q}${extra}`,
          );
          expect(r.status).toBe(200);
          expect(ids(r.body)).toHaveLength(30);
          for (const h of hidden) expect(ids(r.body)).not.toContain(h);
        }
        const uu = await s.get(`/v1/spaces/music/collections/users/items/${u}/similar?k=149&${q}`);
        expect(ids(uu.body)).not.toContain(ERASED_USER);
        expect(new Set(ids(uu.body)).size, JSON.stringify(ids(uu.body))).toBe(148);
        expect(ids(uu.body)).toHaveLength(148);
      }
      // The duplicate group's other members still come back; the erased one never.
      const dup = await s.get(`/v1/spaces/music/collections/artists/items/t20/similar?k=5&${q}`);
      expect(ids(dup.body)).toContain('t22');
      expect(ids(dup.body)).not.toContain('t21');
      // A vector query with the erased artist's own vector.
      const vec = Array.from(r2.t.subarray(7 * DIMS, 8 * DIMS));
      const vq = await s.post(`/v1/spaces/music/collections/artists/query`, {
        vector: vec,
        k: 10,
        consistency: 'strong',
        ...(v ? { version: 'v1' } : {}),
      });
      expect(ids(vq.body)).toHaveLength(10);
      expect(ids(vq.body)).not.toContain(ERASED_ARTIST);
      // Batch.
      const b = await s.post('/v1/spaces/music/batch', {
        consistency: 'strong',
        ...(v ? { version: 'v1' } : {}),
        queries: [
          { collection: 'users', item: ERASED_USER },
          { collection: 'users', item: 'u3', target: 'artists', k: 50 },
          { collection: 'artists', vector: vec, k: 5 },
        ],
      });
      const results = b.body.results as { status: number; results?: { id: string }[] }[];
      expect(results[0]?.status).toBe(404);
      for (const r of results.slice(1))
        for (const h of hidden) expect(r.results?.map((x) => x.id)).not.toContain(h);
      // Explorer: prefix search and projection.
      const p = await s.get(`/v1/spaces/music/collections/artists/items?prefix=t7&${q}`);
      expect(p.status).toBe(200);
      expect((p.body.results as { id: string }[]).map((x) => x.id)).not.toContain(ERASED_ARTIST);
      expect((p.body.results as unknown[]).length).toBeGreaterThan(0);
      const proj = await s.get(
        `/v1/spaces/music/collections/artists/projection?ids=${ERASED_ARTIST},t8&${q}`,
      );
      expect(proj.status).toBe(200);
      expect(proj.body.missing).toEqual([ERASED_ARTIST]);
      const points = (proj.body.points as { id: string }[]).map((x) => x.id);
      for (const h of hidden) expect(points).not.toContain(h);
    }
    // Diff of the two versions.
    const d = await s.get('/v1/spaces/music/diff?to=v1&sample=5000&top=100&collection=users&target=artists');
    expect(d.status).toBe(200);
    const text = JSON.stringify((d.body.collections as { mostChanged: unknown }[])[0]?.mostChanged);
    for (const h of hidden) expect(text).not.toContain(`"${h}"`);
    const list = await s.get('/v1/spaces/music/erasures');
    expect((list.body.erasures as { status: string }[]).map((e) => e.status)).toEqual([
      'ERASED',
      'ERASED',
      'ERASED',
    ]);
  }, 120_000);

  it('the sweeper rewrites every retained snapshot: neither the ids nor the vectors remain in any object', async () => {
    await twoVersions('purge');
    await eraseAll('purge');
    const beforeKeys = new Set((await s.store.list('snapshots/purge/')).map((o) => o.key));
    const report = await runSweep();
    expect(report.errors).toEqual([]);
    const ours = (r: typeof report) => r.erasure.rewritten.filter((w) => w.space === 'purge');
    expect(
      ours(report)
        .map((r) => r.version)
        .sort(),
    ).toEqual(['v1', 'v2']);
    const list = await s.get('/v1/spaces/purge/erasures');
    const erasures = list.body.erasures as { status: string; purgedAt?: string }[];
    expect(erasures).toHaveLength(3);
    expect(erasures.every((e) => e.status === 'PURGED' && e.purgedAt)).toBe(true);

    const objects = await s.store.list('snapshots/purge/');
    expect(objects.some((o) => beforeKeys.has(o.key) && o.key.endsWith('manifest.json'))).toBe(false);
    const needles = [
      ...hidden.map((h) => Buffer.from(`"${h}"`)),
      // The erased user's and artist's vectors as the index holds them (cosine: unit length), in both releases.
      ...[r1, r2].flatMap((r) => [
        Buffer.from(normalise(r.u.subarray(5 * DIMS, 6 * DIMS)).buffer),
        Buffer.from(normalise(r.t.subarray(7 * DIMS, 8 * DIMS)).buffer),
        Buffer.from(r.u.slice(5 * DIMS, 6 * DIMS).buffer),
        Buffer.from(r.t.slice(7 * DIMS, 8 * DIMS).buffer),
      ]),
    ];
    for (const o of objects) {
      const stream = await s.store.getStream(o.key);
      const chunks: Buffer[] = [];
      for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
      const bytes = Buffer.concat(chunks);
      for (const n of needles)
        expect(bytes.includes(n), `${o.key} still holds an erased id or vector`).toBe(false);
    }
    const v2 = (await s.get('/v1/spaces/purge/versions/v2')).body;
    expect(v2.manifestGeneration).toBe(1);
    // Serving goes on from the rewritten snapshots, with k results and the group intact.
    for (const v of ['', '&version=v1']) {
      const r = await s.get(
        `/v1/spaces/purge/collections/users/items/u1/similar?target=artists&k=30&consistency=strong${v}`,
      );
      expect(r.status).toBe(200);
      expect(ids(r.body)).toHaveLength(30);
      const dup = await s.get(
        `/v1/spaces/purge/collections/artists/items/t20/similar?k=5&consistency=strong${v}`,
      );
      expect(ids(dup.body)).toContain('t22');
      expect(
        (await s.get(`/v1/spaces/purge/collections/artists/items/t21?consistency=strong${v}`)).status,
      ).toBe(404);
    }
    // A second sweep has nothing left to do.
    const again = await runSweep();
    expect(ours(again)).toEqual([]);
  }, 180_000);

  it('a later release holding the id builds without it; a restore brings it back in the next one', async () => {
    await twoVersions('later', true);
    await eraseAll('later');
    const r3 = release(3);
    await s.publish('later', 'r3', r3.files, r3.json);
    const built = (await s.get('/v1/spaces/later/versions/v2')).body as {
      status: string;
      collections: Record<string, { erasedDropped?: number; count: number }>;
    };
    expect(built.status).toBe('READY');
    expect(built.collections.artists?.erasedDropped).toBe(2);
    expect(built.collections.users?.erasedDropped).toBe(1);
    expect(built.collections.artists?.count).toBe(ARTISTS - 2);
    expect(
      (await s.get(`/v1/spaces/later/collections/artists/items/${ERASED_ARTIST}?consistency=strong`)).status,
    ).toBe(404);

    const restored = await call(
      'POST',
      `/v1/spaces/later/collections/artists/items/${ERASED_ARTIST}/restore`,
      {
        by: 'dpo',
        reason: 're-consent',
      },
    );
    expect(restored.status).toBe(200);
    expect(restored.body.erasure).toMatchObject({ status: 'RESTORED', restoredBy: 'dpo' });
    // Still absent from v2 (built without it); present again in the next release.
    expect(
      (await s.get(`/v1/spaces/later/collections/artists/items/${ERASED_ARTIST}?consistency=strong`)).status,
    ).toBe(404);
    const r4 = release(4);
    await s.publish('later', 'r4', r4.files, r4.json);
    const item = await s.get(
      `/v1/spaces/later/collections/artists/items/${ERASED_ARTIST}?consistency=strong`,
    );
    expect(item.status).toBe(200);
    expect(item.body.version).toBe('v3');
  }, 180_000);

  it('deleting a space: 404 at once; a deletion cut short by a crash is finished by the sweeper', async () => {
    await twoVersions('gone');
    const space = (await s.get('/v1/spaces/gone')).body as { pointer: { generation: number } };
    const conflict = await call('DELETE', '/v1/spaces/gone', {
      expectedGeneration: space.pointer.generation + 5,
    });
    expect(conflict.status).toBe(409);
    const del = await call('DELETE', '/v1/spaces/gone', {
      expectedGeneration: space.pointer.generation,
      includeInputs: true,
    });
    expect(del.status).toBe(202);
    expect(
      (await s.get('/v1/spaces/gone/collections/users/items/u1/similar?consistency=strong')).status,
    ).toBe(404);
    // A crash mid-way: half the objects gone, the records and the mark still there.
    const objects = await s.store.list('snapshots/gone/');
    await s.store.deleteKeys(objects.slice(0, Math.floor(objects.length / 2)).map((o) => o.key));
    const report = await runSweep();
    expect(report.spacesDeleted).toEqual(['gone']);
    expect(await s.store.list('snapshots/gone/')).toEqual([]);
    expect(await s.store.list('incoming/gone/')).toEqual([]);
    expect((await registry.listVersions('gone', 10)).versions).toEqual([]);
    expect(await registry.listErasures('gone')).toEqual([]);
    expect(await registry.listSpaces()).not.toContain('gone');
    expect((await s.get('/v1/spaces/gone')).status).toBe(404);
    // Idempotent: another sweep (and another DELETE) changes nothing.
    expect((await runSweep()).spacesDeleted).toEqual([]);
  }, 120_000);
});
