/**
 * Erasure on the Last.fm demo itself (issue 15's Done-when): the demo as `npm start` trains and uploads
 * it (local/demo.ts), user 2 erased from `users` and Radiohead (154) from `artists` through the admin
 * route. Every route of the active and of a retained, pinned older version leaves them out (k results
 * still come back); the sweeper's purge leaves neither the ids nor their float32 vectors nor their rows
 * in any stored object; a release uploaded afterwards builds without them, a restore brings them back in
 * the next one; and a space deletion cut short by a crash is finished by the sweeper after a restart.
 *
 * ALS is trained once (beforeAll); every test publishes that folder into a space of its own. The tests
 * that sweep run on a stack of their own, since a sweep goes over every space of its stack.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoRegistry } from '../../functions/adapters/dynamo-registry';
import { S3Store } from '../../functions/adapters/s3-store';
import type { Manifest } from '../../functions/snapshot/manifest';
import { DEMO_ARTIST, DEMO_USER, trainMusicDemo, uploadMusicDemo } from '../../local/demo';
import { mulberry32 } from '../../local/synthetic';
import { type TestStack, testStack } from '../support/local';
import { sweepNow } from '../support/sweep';

interface Row {
  id: string;
  vector: number[];
  metadata: Record<string, unknown>;
}
type Body = Record<string, unknown>;

const RELEASE = 'lastfm-als';
/** The same factors nudged (±15% per component), as a retrain would move them: a second version that differs. */
const RETRAINED = 'lastfm-als-retrained';
const HIDDEN: Record<'users' | 'artists', string> = { users: DEMO_USER, artists: DEMO_ARTIST };
const K = 20;

const parseRows = (text: string): Row[] =>
  text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Row);
const f32 = (v: readonly number[]) => Buffer.from(Float32Array.from(v).buffer);
const ids = (body: Body) => ((body.results ?? []) as { id: string }[]).map((r) => r.id);

const eraseBoth = async (s: TestStack, space: string) => {
  const user = await s.call('DELETE', `/v1/spaces/${space}/collections/users/items/${DEMO_USER}`, {
    reason: 'GDPR art. 17',
    by: 'dpo',
  });
  const artist = await s.call('DELETE', `/v1/spaces/${space}/collections/artists/items/${DEMO_ARTIST}`, {
    reason: 'takedown',
    by: 'dpo',
  });
  expect(user.status).toBe(202);
  expect(artist.status).toBe(202);
  expect(user.body.erasure).toMatchObject({ id: DEMO_USER, status: 'ERASED', by: 'dpo' });
  expect(artist.body.erasure).toMatchObject({ id: DEMO_ARTIST, status: 'ERASED', by: 'dpo' });
};

/** Every object under `prefix`, downloaded whole. */
const download = async (store: S3Store, prefix: string) => {
  const out = new Map<string, Buffer>();
  for (const o of await store.list(prefix)) {
    const stream = await store.getStream(o.key);
    const chunks: Buffer[] = [];
    for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
    out.set(o.key, Buffer.concat(chunks));
  }
  return out;
};

describe('erasure on the Last.fm demo: user 2 and Radiohead leave every answer, then every stored byte', () => {
  let s: TestStack;
  let work: string;
  let dir: string;
  let users: Row[];
  let artists: Row[];
  /** The nudged second release: its files, and its vectors of the two erased ids. */
  let retrained: { files: Record<string, Buffer>; json: Body; user: number[]; artist: number[] };
  let demoUser: Row;
  let radiohead: Row;

  beforeAll(async () => {
    [s, work] = await Promise.all([
      testStack({}, undefined, { sweepMs: 0 }),
      mkdtemp(join(tmpdir(), 'vicinity-erase-demo-')),
    ]);
    ({ dir } = await trainMusicDemo({ workDir: work, release: RELEASE }));
    const [u, a, r] = await Promise.all(
      ['users.jsonl', 'artists.jsonl', 'release.json'].map((f) => readFile(join(dir, f), 'utf8')),
    );
    users = parseRows(u as string);
    artists = parseRows(a as string);
    demoUser = users.find((x) => x.id === DEMO_USER) as Row;
    radiohead = artists.find((x) => x.id === DEMO_ARTIST) as Row;
    const rand = mulberry32(2026);
    const nudge = (rows: Row[]) =>
      rows.map((x) => ({
        ...x,
        vector: x.vector.map((c) => Number((c * (1 + 0.3 * (rand() - 0.5))).toPrecision(6))),
      }));
    const [nu, na] = [nudge(users), nudge(artists)];
    const lines = (rows: Row[]) => Buffer.from(rows.map((x) => `${JSON.stringify(x)}\n`).join(''));
    retrained = {
      files: { 'users.jsonl': lines(nu), 'artists.jsonl': lines(na) },
      json: JSON.parse(r as string) as Body,
      user: (nu.find((x) => x.id === DEMO_USER) as Row).vector,
      artist: (na.find((x) => x.id === DEMO_ARTIST) as Row).vector,
    };
  }, 300_000);
  afterAll(async () => {
    await s?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** The demo's trained folder uploaded as `npm start` does; resolves once its build settled READY. */
  const publishDemo = async (t: TestStack, space: string, release: string, version: string) => {
    await uploadMusicDemo(t.store, { dir, space, release });
    await t.idle(240_000);
    const v = await t.get(`/v1/spaces/${space}/versions/${version}`);
    expect(v.body).toMatchObject({ status: 'READY', release });
    return v.body as { collections: Record<string, { count: number; erasedDropped?: number }> };
  };
  /** v1: the demo as trained; v2: the retrained one, active, so v1 is the retained previous version. */
  const twoVersions = async (t: TestStack, space: string) => {
    await publishDemo(t, space, RELEASE, 'v1');
    await t.publish(space, RETRAINED, retrained.files, retrained.json, { timeoutMs: 240_000 });
    expect((await t.get(`/v1/spaces/${space}`)).body.active).toMatchObject({ version: 'v2' });
  };

  it('every route of the active and of the pinned older version leaves them out, k results still come back', async () => {
    const space = 'routes';
    await twoVersions(s, space);
    const base = `/v1/spaces/${space}/collections`;
    // Users who have not played Radiohead (so excludeSeen keeps it) and users nearest to user 2.
    const unseen = users.filter((x) => !(x.metadata.seen as string[]).includes(DEMO_ARTIST)).slice(0, 60);
    const fansBy = async (version: string) => {
      const b = await s.post(`/v1/spaces/${space}/batch`, {
        consistency: 'strong',
        version,
        queries: unseen.map((x) => ({ collection: 'users', item: x.id, target: 'artists', k: K })),
      });
      const lists = (b.body.results as { results: { id: string }[] }[]).map((r) =>
        r.results.map((x) => x.id),
      );
      return unseen.filter((_, i) => lists[i]?.includes(DEMO_ARTIST)).map((x) => x.id);
    };
    const [f1, f2] = [await fansBy('v1'), await fansBy('v2')];
    const fans = f1.filter((id) => f2.includes(id)).slice(0, 4);
    expect(fans.length).toBeGreaterThanOrEqual(2);
    const other = (users.find((x) => x.id !== DEMO_USER) as Row).id;
    const near = ids((await s.get(`${base}/users/items/${DEMO_USER}/similar?k=8&version=v1`)).body);
    // Users who played Radiohead: their seen lists show it until it is erased.
    const played = users.filter((x) => (x.metadata.seen as string[]).includes(DEMO_ARTIST)).slice(0, 3);
    expect(played).toHaveLength(3);

    /** Every answer a route gives about them, per version: statuses, and id lists tagged with their collection. */
    const observe = async (version?: string) => {
      const q = `consistency=strong${version ? `&version=${version}` : ''}`;
      const pin = { consistency: 'strong', ...(version ? { version } : {}) };
      const status: Record<string, number> = {};
      const lists: { name: string; collection: 'users' | 'artists'; ids: string[]; k?: number }[] = [];
      const list = (name: string, collection: 'users' | 'artists', got: string[], k?: number) =>
        lists.push({ name, collection, ids: got, ...(k ? { k } : {}) });
      for (const [c, id] of [
        ['users', DEMO_USER],
        ['artists', DEMO_ARTIST],
      ]) {
        status[`${c} item`] = (await s.get(`${base}/${c}/items/${id}?${q}`)).status;
        status[`${c} similar`] = (await s.get(`${base}/${c}/items/${id}/similar?${q}`)).status;
      }
      status['users → artists of the user'] = (
        await s.get(`${base}/users/items/${DEMO_USER}/similar?target=artists&${q}`)
      ).status;
      // Query by vector: each erased item's own vector.
      for (const [c, v] of [
        ['users', demoUser.vector],
        ['artists', radiohead.vector],
      ] as const) {
        const r = await s.post(`${base}/${c}/query`, { vector: v, k: 10, ...pin });
        expect(r.status).toBe(200);
        list(`${c} query by the erased vector`, c, ids(r.body), 10);
      }
      // Recommendations from another collection, with and without excludeSeen.
      for (const f of fans) {
        for (const extra of ['', '&excludeSeen=true']) {
          const r = await s.get(`${base}/users/items/${f}/similar?target=artists&k=${K}&${q}${extra}`);
          list(`users/${f} → artists${extra}`, 'artists', ids(r.body), K);
        }
      }
      // Users near user 2, with their metadata (seen lists).
      const seenShown: string[] = [];
      for (const u of near) {
        const r = await s.get(`${base}/users/items/${u}/similar?k=${K}&includeMetadata=true&${q}`);
        list(`users/${u} similar`, 'users', ids(r.body), K);
        for (const x of r.body.results as { metadata?: { seen?: string[] } }[])
          seenShown.push(...(x.metadata?.seen ?? []));
      }
      for (const p of played) {
        const r = await s.get(`${base}/users/items/${p.id}?${q}`);
        seenShown.push(...((r.body.metadata as { seen: string[] }).seen ?? []));
      }
      list('seen lists shown in metadata', 'artists', seenShown);
      // Batch: the erased items as query items, and searches that would meet them.
      const b = await s.post(`/v1/spaces/${space}/batch`, {
        ...pin,
        queries: [
          { collection: 'users', item: DEMO_USER },
          { collection: 'artists', item: DEMO_ARTIST, k: 5 },
          { collection: 'users', item: DEMO_USER, target: 'artists' },
          ...fans.map((f) => ({ collection: 'users', item: f, target: 'artists', k: K })),
          { collection: 'artists', vector: radiohead.vector, k: 10 },
          { collection: 'users', vector: demoUser.vector, k: 10 },
        ],
      });
      expect(b.status).toBe(200);
      const br = b.body.results as { status: number; results?: { id: string }[] }[];
      status['batch: user item'] = br[0]?.status as number;
      status['batch: artist item'] = br[1]?.status as number;
      status['batch: user → artists'] = br[2]?.status as number;
      fans.forEach((f, i) => {
        list(
          `batch users/${f} → artists`,
          'artists',
          (br[3 + i]?.results ?? []).map((x) => x.id),
          K,
        );
      });
      list(
        'batch artists by vector',
        'artists',
        (br[3 + fans.length]?.results ?? []).map((x) => x.id),
        10,
      );
      list(
        'batch users by vector',
        'users',
        (br[4 + fans.length]?.results ?? []).map((x) => x.id),
        10,
      );
      // Explorer: prefix search by name and by id, projections.
      const byName = await s.get(`${base}/artists/items?prefix=radiohead&field=name&${q}`);
      expect(byName.status).toBe(200);
      list('artists named radiohead…', 'artists', ids(byName.body));
      const byId = await s.get(`${base}/artists/items?prefix=154&${q}`);
      list('artists with ids 154…', 'artists', ids(byId.body));
      const userIds = await s.get(`${base}/users/items?prefix=${DEMO_USER}&limit=100&${q}`);
      list('users with ids 2…', 'users', ids(userIds.body));
      const pu = await s.get(`${base}/users/projection?sample=3000&ids=${DEMO_USER},${other}&${q}`);
      expect(pu.status).toBe(200);
      list(
        'users projection points',
        'users',
        (pu.body.points as { id: string }[]).map((x) => x.id),
      );
      list(
        'users projection extra',
        'users',
        (pu.body.extra as { id: string }[]).map((x) => x.id),
      );
      const pa = await s.get(`${base}/artists/projection?points=false&ids=${DEMO_ARTIST},289&${q}`);
      expect(pa.status).toBe(200);
      list(
        'artists projection extra',
        'artists',
        (pa.body.extra as { id: string }[]).map((x) => x.id),
      );
      return {
        status,
        lists,
        missing: { users: pu.body.missing as string[], artists: pa.body.missing as string[] },
      };
    };
    const diffs = async () => {
      const out: Record<string, { inBoth: number; mostChanged: string }> = {};
      for (const [c, extra] of [
        ['users', ''],
        ['users', '&target=artists'],
      ]) {
        const d = await s.get(
          `/v1/spaces/${space}/diff?from=v1&to=v2&sample=400&top=100&collection=${c}${extra}`,
        );
        expect(d.status, JSON.stringify(d.body)).toBe(200);
        const col = (d.body.collections as { inBoth: number; mostChanged: unknown }[])[0];
        out[`${c}${extra}`] = {
          inBoth: col?.inBoth as number,
          mostChanged: JSON.stringify(col?.mostChanged),
        };
      }
      return out;
    };

    // Before: the same calls do meet them (so each check below can fail).
    for (const version of [undefined, 'v1']) {
      const o = await observe(version);
      expect(Object.values(o.status).filter((x) => x !== 200)).toEqual([]);
      for (const l of o.lists) {
        if (
          l.name.startsWith('users with ids') ||
          l.name.startsWith('artists with ids') ||
          l.name.includes('named')
        )
          expect(l.ids[0], l.name).toBe(HIDDEN[l.collection]);
        else if (l.name.includes('→ artists') || l.name.includes('vector') || l.name.includes('seen lists'))
          expect(l.ids, `${version ?? 'active'}: ${l.name}`).toContain(HIDDEN[l.collection]);
      }
      expect(
        o.lists.filter((l) => l.name.endsWith('similar') && l.ids.includes(DEMO_USER)).length,
      ).toBeGreaterThan(0);
      expect(o.lists.find((l) => l.name === 'users projection points')?.ids).toHaveLength(users.length);
      expect(o.missing).toEqual({ users: [], artists: [] });
    }
    const d0 = await diffs();
    expect(d0.users?.inBoth).toBe(users.length);
    expect(d0.users?.mostChanged).toContain(`"id":"${DEMO_USER}"`);
    expect(d0['users&target=artists']?.mostChanged).toContain(`"id":"${DEMO_ARTIST}"`);

    await eraseBoth(s, space);

    for (const version of [undefined, 'v1']) {
      const o = await observe(version);
      const where = version ?? 'active';
      expect(o.status, where).toEqual({
        'users item': 404,
        'users similar': 404,
        'artists item': 404,
        'artists similar': 404,
        'users → artists of the user': 404,
        'batch: user item': 404,
        'batch: artist item': 404,
        'batch: user → artists': 404,
      });
      for (const l of o.lists) {
        expect(l.ids, `${where}: ${l.name}`).not.toContain(HIDDEN[l.collection]);
        if (l.k) expect(l.ids, `${where}: ${l.name}`).toHaveLength(l.k);
      }
      const get = (name: string) => o.lists.find((l) => l.name === name)?.ids ?? [];
      expect(get('artists named radiohead…')).toEqual([]);
      expect(get('artists with ids 154…').length).toBeGreaterThan(0);
      expect(get('users with ids 2…').length).toBeGreaterThan(0);
      expect(get('users projection points')).toHaveLength(users.length - 1);
      expect(get('seen lists shown in metadata').length).toBeGreaterThan(0);
      expect(o.missing).toEqual({ users: [DEMO_USER], artists: [DEMO_ARTIST] });
    }
    const d1 = await diffs();
    expect(d1.users?.inBoth).toBe(users.length - 1);
    expect(d1.users?.mostChanged).not.toContain(`"id":"${DEMO_USER}"`);
    expect(d1['users&target=artists']?.mostChanged).not.toContain(`"id":"${DEMO_ARTIST}"`);
  }, 300_000);

  it('after the purge no stored object holds their ids, their float32 vectors or their rows', async () => {
    const t = await testStack({}, undefined, { sweepMs: 0 });
    const workDir = await mkdtemp(join(tmpdir(), 'vicinity-erase-demo-purge-'));
    try {
      const space = 'purge';
      await twoVersions(t, space);
      await eraseBoth(t, space);
      const registry = new DynamoRegistry(t.deps.dynamo, t.info.table);
      const prefix = `snapshots/${space}/`;

      // What would betray them, each checked to be there before the purge (so each check can fail).
      const vectors = [demoUser.vector, radiohead.vector, retrained.user, retrained.artist].map(f32);
      // Their ids as JSON strings, where no other id or seen list has them: users' ids files list user
      // "154" and seen lists name artist "2", so "2" is looked for in users' ids files, "154" elsewhere.
      const usersIds = (key: string) => /\/users\/.*ids\.json$/.test(key);
      const strings: { needle: Buffer; in: (key: string) => boolean }[] = [
        { needle: Buffer.from(`"${DEMO_USER}"`), in: usersIds },
        { needle: Buffer.from(`"${DEMO_ARTIST}"`), in: (key) => !usersIds(key) },
        { needle: Buffer.from('"Radiohead"'), in: () => true },
        // The user's own row: its seen list, as the metadata file holds it.
        { needle: Buffer.from(JSON.stringify(demoUser.metadata.seen)), in: () => true },
      ];
      const before = await download(t.store, prefix);
      const all = Buffer.concat([...before.values()]);
      for (const n of vectors) expect(all.includes(n)).toBe(true);
      for (const n of strings)
        expect(
          [...before].some(([key, bytes]) => n.in(key) && bytes.includes(n.needle)),
          n.needle.toString(),
        ).toBe(true);

      const report = await sweepNow(t.store, registry, { workDir });
      expect(report.errors).toEqual([]);
      expect(report.erasure.rewritten.map((r) => `${r.version} ${JSON.stringify(r.removed)}`).sort()).toEqual(
        ['v1 {"users":1,"artists":1}', 'v2 {"users":1,"artists":1}'],
      );
      const erasures = (await t.get(`/v1/spaces/${space}/erasures`)).body.erasures as { status: string }[];
      expect(erasures.map((e) => e.status)).toEqual(['PURGED', 'PURGED']);

      const after = await download(t.store, prefix);
      // Only the rewritten snapshots remain: the two purged manifests and exactly the files they name.
      const manifests = [...after.keys()].filter((k) => k.endsWith('/manifest.json')).sort();
      expect(manifests).toEqual([`${prefix}v1/p1/manifest.json`, `${prefix}v2/p1/manifest.json`]);
      const named = new Set(manifests);
      for (const key of manifests) {
        const m = JSON.parse((after.get(key) as Buffer).toString('utf8')) as Manifest;
        for (const [name, c] of Object.entries(m.collections)) {
          const erased = HIDDEN[name as 'users' | 'artists'];
          let count = 0;
          for (const seg of c.segments) {
            for (const f of Object.values(seg.files)) named.add(f.key);
            // The ids and metadata files, parsed per the snapshot format: label → id, label → metadata.
            const segIds = JSON.parse((after.get(seg.files.ids.key) as Buffer).toString('utf8')) as string[];
            expect(segIds, seg.files.ids.key).not.toContain(erased);
            count += segIds.length;
            if (!seg.files.meta) continue;
            const meta = JSON.parse((after.get(seg.files.meta.key) as Buffer).toString('utf8')) as ({
              seen?: string[];
              name?: string;
            } | null)[];
            expect(meta).toHaveLength(segIds.length);
            for (const x of meta) {
              expect(x?.seen ?? []).not.toContain(DEMO_ARTIST);
              expect(x?.name).not.toBe('Radiohead');
            }
          }
          expect(c.count, `${key} ${name}`).toBe((name === 'users' ? users : artists).length - 1);
          expect(count).toBe(c.count);
        }
      }
      expect([...after.keys()].sort()).toEqual([...named].sort());
      for (const [key, bytes] of after) {
        for (const n of vectors) expect(bytes.includes(n), `${key} holds an erased vector`).toBe(false);
        for (const n of strings)
          if (n.in(key)) expect(bytes.includes(n.needle), `${key} holds ${n.needle}`).toBe(false);
      }
      // Served from the rewritten snapshots, on both versions.
      const other = (users.find((x) => x.id !== DEMO_USER) as Row).id;
      for (const v of ['', '&version=v1']) {
        const r = await t.get(
          `/v1/spaces/${space}/collections/users/items/${other}/similar?target=artists&k=${K}&consistency=strong${v}`,
        );
        expect(r.status).toBe(200);
        expect(ids(r.body)).toHaveLength(K);
        expect(ids(r.body)).not.toContain(DEMO_ARTIST);
      }
    } finally {
      await t.dispose();
      await rm(workDir, { recursive: true, force: true });
    }
  }, 300_000);

  it('a release uploaded afterwards builds without them; a restore brings them back in the next one', async () => {
    const space = 'later';
    await publishDemo(s, space, RELEASE, 'v1');
    await eraseBoth(s, space);
    // The demo again, still holding both ids: READY without them, counted in its build report.
    const v2 = await publishDemo(s, space, `${RELEASE}-again`, 'v2');
    expect(v2.collections.users).toMatchObject({ count: users.length - 1, erasedDropped: 1 });
    expect(v2.collections.artists).toMatchObject({ count: artists.length - 1, erasedDropped: 1 });
    expect((await s.get(`/v1/spaces/${space}`)).body.active).toMatchObject({ version: 'v2' });
    const item = (c: string, id: string) =>
      s.get(`/v1/spaces/${space}/collections/${c}/items/${id}?consistency=strong`);
    expect((await item('users', DEMO_USER)).status).toBe(404);
    expect((await item('artists', DEMO_ARTIST)).status).toBe(404);
    const fan = users.find((x) => (x.metadata.seen as string[]).includes(DEMO_ARTIST)) as Row;
    expect(((await item('users', fan.id)).body.metadata as { seen: string[] }).seen).not.toContain(
      DEMO_ARTIST,
    );

    for (const [c, id] of [
      ['users', DEMO_USER],
      ['artists', DEMO_ARTIST],
    ]) {
      const r = await s.call('POST', `/v1/spaces/${space}/collections/${c}/items/${id}/restore`, {
        by: 'dpo',
        reason: 're-consent',
      });
      expect(r.status).toBe(200);
      expect(r.body.erasure).toMatchObject({ id, status: 'RESTORED', restoredBy: 'dpo' });
    }
    // v2 was built without them and stays so; the next release serves them again.
    expect((await item('artists', DEMO_ARTIST)).status).toBe(404);
    const v3 = await publishDemo(s, space, `${RELEASE}-restored`, 'v3');
    expect(v3.collections.users?.count).toBe(users.length);
    expect(v3.collections.artists?.count).toBe(artists.length);
    expect(v3.collections.artists?.erasedDropped ?? 0).toBe(0);
    const back = await item('artists', DEMO_ARTIST);
    expect(back.status).toBe(200);
    expect(back.body).toMatchObject({ version: 'v3', metadata: { name: 'Radiohead' } });
    expect((await item('users', DEMO_USER)).status).toBe(200);
    expect(((await item('users', fan.id)).body.metadata as { seen: string[] }).seen).toContain(DEMO_ARTIST);
    const recs = await s.get(
      `/v1/spaces/${space}/collections/users/items/${DEMO_USER}/similar?target=artists&k=10&consistency=strong`,
    );
    expect(recs.status).toBe(200);
    expect(ids(recs.body)).toHaveLength(10);
  }, 300_000);

  it('a deletion of the demo space cut short by a crash is finished by the sweeper after a restart', async () => {
    const home = await mkdtemp(join(tmpdir(), 'vicinity-erase-demo-home-'));
    let t: TestStack | undefined = await testStack({}, undefined, { sweepMs: 0, home });
    try {
      const space = 'gone';
      await publishDemo(t, space, RELEASE, 'v1');
      await eraseBoth(t, space);
      const generation = ((await t.get(`/v1/spaces/${space}`)).body.pointer as { generation: number })
        .generation;
      const del = await t.call('DELETE', `/v1/spaces/${space}`, {
        expectedGeneration: generation,
        includeInputs: true,
      });
      expect(del.status).toBe(202);
      expect((await t.get(`/v1/spaces/${space}`)).status).toBe(404);
      expect(
        (await t.get(`/v1/spaces/${space}/collections/artists/items/289/similar?consistency=strong`)).status,
      ).toBe(404);

      // The sweeper dies half-way through the snapshot objects: the manifests and half the rest are gone.
      class Crash extends Error {}
      let deletes = 0;
      const dying = new S3Store(t.deps.s3, t.info.bucket);
      const real = dying.deleteKeys.bind(dying);
      dying.deleteKeys = async (keys: string[]) => {
        if (++deletes === 1) return real(keys);
        await real(keys.slice(0, Math.floor(keys.length / 2)));
        throw new Crash('killed mid-deletion');
      };
      const objects = (await t.store.list(`snapshots/${space}/`)).length;
      const registry = new DynamoRegistry(t.deps.dynamo, t.info.table);
      const crashed = await sweepNow(dying, registry);
      expect(crashed.errors.map((e) => e.space)).toEqual([space]);
      expect(crashed.spacesDeleted).toEqual([]);
      const left = (await t.store.list(`snapshots/${space}/`)).length;
      expect(left).toBeGreaterThan(0);
      expect(left).toBeLessThan(objects);
      await t.stop();
      t = undefined;

      // Restart on the same home: the mark survived, the space is still a 404, and a sweep finishes it.
      t = await testStack({}, undefined, { sweepMs: 0, home });
      const again = new DynamoRegistry(t.deps.dynamo, t.info.table);
      expect(await again.listSpaces()).toContain(space);
      expect((await again.listErasures(space)).length).toBe(2);
      expect((await t.get(`/v1/spaces/${space}`)).status).toBe(404);
      const report = await sweepNow(t.store, again);
      expect(report.errors).toEqual([]);
      expect(report.spacesDeleted).toEqual([space]);
      expect(await t.store.list(`snapshots/${space}/`)).toEqual([]);
      expect(await t.store.list(`incoming/${space}/`)).toEqual([]);
      expect((await again.listVersions(space, 10)).versions).toEqual([]);
      expect(await again.listErasures(space)).toEqual([]);
      expect(await again.listSpaces()).not.toContain(space);
      expect((await t.get(`/v1/spaces/${space}`)).status).toBe(404);
      expect((await sweepNow(t.store, again)).spacesDeleted).toEqual([]);
    } finally {
      await t?.stop();
      await rm(home, { recursive: true, force: true });
    }
  }, 300_000);
});
