/**
 * The query instance's budgets on the in-memory ports: memory (an honest estimate reserved before a
 * load), the cap on pinned versions, the disk budget with LRU eviction of files, and running out of
 * disk — each a 503 with Retry-After and a reason, never a dead process or a version cached as broken.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hnswEngine } from '../../../functions/adapters/hnsw-index';
import { loadConfig } from '../../../functions/common/config';
import { problemResponse } from '../../../functions/common/problem';
import { ENV } from '../../../functions/contract';
import type { BlobStore } from '../../../functions/core/ports';
import type { SearchParams } from '../../../functions/core/query';
import { requestContext } from '../../../functions/query/context';
import { QueryService } from '../../../functions/query/service';
import { estimateCollectionBytes, nativeIndexBytes } from '../../../functions/snapshot/budget';
import { CapacityError, SnapshotCache, type SnapshotCacheOptions } from '../../../functions/snapshot/cache';
import { allFiles, type Manifest, manifestKey, snapshotPrefix } from '../../../functions/snapshot/manifest';
import { manualClock } from '../../support/clock';
import { DIMS, type Harness, harness, jsonl, recordingLog } from '../../support/memory/harness';

const SPACE = 'music';
const tracksOnly = { collections: { tracks: { file: 'tracks.jsonl', metric: 'cosine' } } };
const params: SearchParams = {
  k: 3,
  exclude: [],
  excludeSeen: false,
  includeMetadata: false,
  consistency: 'eventual',
};
const vector = Array.from({ length: DIMS }, (_, i) => (i === 0 ? 1 : 0));
const pin = (version: string): SearchParams => ({ ...params, version });

describe('instance budgets on the in-memory ports', () => {
  let h: Harness;
  /** v1…v5 built; v5 active, v4 previous: v1, v2, v3 are only ever pinned. */
  beforeAll(async () => {
    h = await harness();
    for (let i = 1; i <= 5; i++) {
      await h.build(await h.publish(SPACE, `r${i}`, { 'tracks.jsonl': jsonl(`v${i}-`, 40, i) }, tracksOnly));
    }
  });
  afterAll(async () => h.dispose());

  const manifest = async (version: string) =>
    JSON.parse((await h.store.getText(manifestKey(SPACE, version))) as string) as Manifest;

  function setup(opts: Partial<SnapshotCacheOptions>, store: BlobStore = h.store) {
    const dir = join(h.cacheDir, `q-${Math.random().toString(36).slice(2)}`);
    const log = recordingLog();
    const clock = manualClock();
    const cache = new SnapshotCache(store, hnswEngine, {
      cacheDir: dir,
      memoryBudgetBytes: 1 << 30,
      log,
      now: clock.now,
      ...opts,
    });
    const query = new QueryService({ registry: h.registry, cache, pointerTtlMs: 1000, log, now: clock.now });
    const ask = (p: SearchParams) => query.query(SPACE, 'tracks', vector, p, requestContext());
    const versionDir = (v: string) => join(dir, ...snapshotPrefix(SPACE, v).split('/'));
    return { cache, query, ask, dir, log, versionDir, clock };
  }

  it('estimates native hnswlib memory from the index parameters, not from file bytes', async () => {
    const cm = (await manifest('v1')).collections.tracks;
    if (!cm) throw new Error('no tracks');
    const files = allFiles(await manifest('v1')).reduce((a, f) => a + f.bytes, 0);
    // 65,536 label-operation mutexes alone are 2.6 MB per index, whatever its size.
    expect(nativeIndexBytes(40, DIMS, cm.M)).toBeGreaterThan(2_600_000);
    expect(estimateCollectionBytes(cm)).toBeGreaterThan(100 * files);
    // A million 128-d items at M 16: ~650 bytes an element, plus locks, lookup and upper levels.
    const big = nativeIndexBytes(1_000_000, 128, 16);
    expect(big / 1e6).toBeGreaterThan(750);
    expect(big / 1e6).toBeLessThan(800);
  });

  it('refuses a third pinned version that cannot fit beside two (503, Retry-After, reason); the first two keep answering', async () => {
    const cm = (await manifest('v1')).collections.tracks;
    if (!cm) throw new Error('no tracks');
    const budget = Math.floor(estimateCollectionBytes(cm) * 2.4);
    const { cache, ask } = setup({ memoryBudgetBytes: budget, maxPinnedVersions: 10 });
    expect((await ask(pin('v1'))).version).toBe('v1');
    expect((await ask(pin('v2'))).version).toBe('v2');
    for (let round = 0; round < 3; round++) {
      const third = ask(pin('v3'));
      await expect(third).rejects.toBeInstanceOf(CapacityError);
      const err = (await third.catch((e) => e)) as CapacityError;
      expect(err.reason).toBe('memory-budget');
      const res = problemResponse(err);
      expect(res.statusCode).toBe(503);
      expect(Number(res.headers?.['retry-after'])).toBeGreaterThan(0);
      expect(JSON.parse(res.body as string)).toMatchObject({ reason: 'memory-budget', detail: /memory/ });
      expect((await ask(pin('v1'))).version).toBe('v1');
      expect((await ask(pin('v2'))).version).toBe('v2');
      expect(cache.memoryBytes()).toBeLessThanOrEqual(budget);
    }
    expect(cache.loaded().sort()).toEqual([`${SPACE}/v1/tracks`, `${SPACE}/v2/tracks`]);
    // Not a fault of v3: once the pins age out it loads (here: the active version may evict pins).
    expect((await ask(params)).version).toBe('v5');
  });

  it('caps distinct pinned versions per instance, besides the active and previous ones', async () => {
    const { ask, cache, clock } = setup({ maxPinnedVersions: 2, pinWindowMs: 300 });
    expect((await ask(pin('v1'))).version).toBe('v1');
    expect((await ask(pin('v2'))).version).toBe('v2');
    // Pins of the active and previous versions do not count.
    expect((await ask(pin('v5'))).version).toBe('v5');
    expect((await ask(pin('v4'))).version).toBe('v4');
    const third = await ask(pin('v3')).catch((e) => e);
    expect(third).toBeInstanceOf(CapacityError);
    expect(third).toMatchObject({ reason: 'pinned-versions', kind: 'unavailable' });
    expect(Number(problemResponse(third).headers?.['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(cache.pinnedVersions().sort()).toEqual([`${SPACE}/v1`, `${SPACE}/v2`]);
    expect((await ask(pin('v1'))).version).toBe('v1');
    expect((await ask(params)).version).toBe('v5');
    // Just inside the window v3 is still refused; once the pins age out it loads.
    clock.advance(299);
    expect(await ask(pin('v3')).catch((e) => e)).toBeInstanceOf(CapacityError);
    clock.advance(2);
    expect((await ask(pin('v3'))).version).toBe('v3');
  });

  it('evicts and releases the native index of an unheld collection it makes room for', async () => {
    const cm = (await manifest('v1')).collections.tracks;
    if (!cm) throw new Error('no tracks');
    const { cache } = setup({ memoryBudgetBytes: Math.floor(estimateCollectionBytes(cm) * 1.5) });
    const first = await cache.collection(SPACE, 'v1', 'tracks');
    const index = first.collection.segments[0]?.index;
    first.release();
    (await cache.collection(SPACE, 'v2', 'tracks')).release();
    expect(cache.loaded()).toEqual([`${SPACE}/v2/tracks`]);
    // hnswlib-node has no free(): initIndex(1) dropped the loaded index; the wrapper refuses to search.
    expect(() => index?.search(vector, 3, 10)).toThrow(/evicted/);
  });

  it('never evicts a loaded collection a request took without waiting (collectionNow) until it lets go', async () => {
    const cm = (await manifest('v1')).collections.tracks;
    if (!cm) throw new Error('no tracks');
    const { cache } = setup({ memoryBudgetBytes: Math.floor(estimateCollectionBytes(cm) * 1.5) });
    expect(cache.collectionNow(SPACE, 'v1', 'tracks')).toBeUndefined(); // not loaded: the caller must wait
    (await cache.collection(SPACE, 'v1', 'tracks')).release();
    const held = cache.collectionNow(SPACE, 'v1', 'tracks');
    expect(held?.report.cached).toBe(true);
    // v2 cannot fit beside the held v1: refused (503), v1 stays and still searches.
    await expect(cache.collection(SPACE, 'v2', 'tracks')).rejects.toBeInstanceOf(CapacityError);
    expect(cache.loaded()).toEqual([`${SPACE}/v1/tracks`]);
    expect(held?.collection.segments[0]?.index.search(vector, 3, 10)).toHaveLength(3);
    held?.release();
    held?.release(); // a second release changes nothing
    (await cache.collection(SPACE, 'v2', 'tracks')).release();
    expect(cache.loaded()).toEqual([`${SPACE}/v2/tracks`]);
  });

  it('keeps /tmp within its disk budget: least recently used versions’ files go, held and pinned ones stay', async () => {
    const versionBytes = allFiles(await manifest('v1')).reduce((a, f) => a + f.bytes, 0);
    const budget = Math.floor(versionBytes * 2.5);
    const { cache, ask, versionDir } = setup({
      diskBudgetBytes: budget,
      maxPinnedVersions: 10,
      pinWindowMs: 0,
    });
    expect((await ask(pin('v1'))).version).toBe('v1');
    expect((await ask(pin('v2'))).version).toBe('v2');
    expect(existsSync(versionDir('v1'))).toBe(true);
    expect((await ask(pin('v3'))).version).toBe('v3');
    // v1 was the least recently used: its files (and its memory) are gone; v2 and v3 stay.
    expect(existsSync(versionDir('v1'))).toBe(false);
    expect(existsSync(versionDir('v2'))).toBe(true);
    expect(cache.diskBytes()).toBeLessThanOrEqual(budget);
    expect(cache.loaded().sort()).toEqual([`${SPACE}/v2/tracks`, `${SPACE}/v3/tracks`]);
    // The version is fine: asked again, it downloads again.
    expect((await ask(pin('v1'))).version).toBe('v1');
    expect(cache.diskBytes()).toBeLessThanOrEqual(budget);
  });

  it('refuses a download the disk budget cannot take while every version there is protected', async () => {
    const versionBytes = allFiles(await manifest('v1')).reduce((a, f) => a + f.bytes, 0);
    const { ask, versionDir } = setup({
      diskBudgetBytes: Math.floor(versionBytes * 1.5),
      maxPinnedVersions: 10,
      pinWindowMs: 60_000,
    });
    expect((await ask(pin('v1'))).version).toBe('v1');
    const err = await ask(pin('v2')).catch((e) => e);
    expect(err).toMatchObject({ reason: 'disk-budget', kind: 'unavailable' });
    expect(existsSync(versionDir('v1'))).toBe(true);
    expect(existsSync(versionDir('v2'))).toBe(false);
  });

  describe('a switch on a disk budget that holds one version', () => {
    const bytes = async (v: string) => allFiles(await manifest(v)).reduce((a, f) => a + f.bytes, 0);
    const budget = async () => Math.floor(Math.max(await bytes('v4'), await bytes('v5')) * 1.5);
    const load = async (cache: SnapshotCache, version: string) => {
      await cache.manifest(SPACE, version);
      return cache.collection(SPACE, version, 'tracks');
    };

    it("lets the new active version's download take the previous version's room", async () => {
      const diskBudgetBytes = await budget();
      const { cache, versionDir } = setup({ diskBudgetBytes });
      cache.setRoles(SPACE, 'v4', 'v3');
      (await load(cache, 'v4')).release();
      // The pointer moves: v4 is the previous version now, and the two do not fit together.
      cache.setRoles(SPACE, 'v5', 'v4');
      const held = await load(cache, 'v5');
      expect(held.collection.segments.length).toBeGreaterThan(0);
      held.release();
      expect(existsSync(versionDir('v4'))).toBe(false);
      expect(existsSync(versionDir('v5'))).toBe(true);
      expect(cache.diskBytes()).toBeLessThanOrEqual(diskBudgetBytes);
      expect(cache.loaded()).toEqual([`${SPACE}/v5/tracks`]);
    });

    it("never lets the previous version's download take the active version's room", async () => {
      const { cache, versionDir } = setup({ diskBudgetBytes: await budget() });
      cache.setRoles(SPACE, 'v5', 'v4');
      (await load(cache, 'v5')).release();
      const err = await load(cache, 'v4').catch((e) => e);
      expect(err).toMatchObject({ reason: 'disk-budget', kind: 'unavailable' });
      expect(existsSync(versionDir('v5'))).toBe(true);
    });

    it('keeps the previous version while a request uses it, and takes its room once it lets go', async () => {
      const { cache, versionDir } = setup({ diskBudgetBytes: await budget() });
      cache.setRoles(SPACE, 'v4', 'v3');
      const inUse = await load(cache, 'v4');
      cache.setRoles(SPACE, 'v5', 'v4');
      const err = await load(cache, 'v5').catch((e) => e);
      expect(err).toMatchObject({ reason: 'disk-budget', kind: 'unavailable' });
      expect(existsSync(versionDir('v4'))).toBe(true);
      inUse.release();
      (await load(cache, 'v5')).release();
      expect(existsSync(versionDir('v4'))).toBe(false);
    });
  });

  describe('a version whose collections together outgrow the disk budget', () => {
    const duo = {
      collections: {
        users: { file: 'users.jsonl', metric: 'cosine' },
        tracks: { file: 'tracks.jsonl', metric: 'cosine' },
      },
    };
    let budget = 0;
    beforeAll(async () => {
      const files = { 'users.jsonl': jsonl('u', 40, 7), 'tracks.jsonl': jsonl('t', 40, 8) };
      await h.build(await h.publish('duo', 'r1', files, duo));
      const m = JSON.parse((await h.store.getText(manifestKey('duo', 'v1'))) as string) as Manifest;
      const bytes = Object.keys(m.collections).map((name) =>
        allFiles(m, name).reduce((a, f) => a + f.bytes, 0),
      );
      // Room for either collection, not for both.
      budget = Math.floor(Math.max(...bytes) * 1.5);
    });
    const load = async (cache: SnapshotCache, name: string) => {
      await cache.manifest('duo', 'v1');
      return cache.collection('duo', 'v1', name);
    };

    it('serves each collection in turn, the other one’s files making room', async () => {
      const { cache, log } = setup({ diskBudgetBytes: budget });
      cache.setRoles('duo', 'v1', undefined);
      (await load(cache, 'users')).release();
      (await load(cache, 'tracks')).release();
      expect(cache.loaded()).toEqual(['duo/v1/tracks']);
      expect(cache.diskBytes()).toBeLessThanOrEqual(budget);
      expect(log.lines.filter((l) => l.message === 'collection files evicted')).toHaveLength(1);
      (await load(cache, 'users')).release();
      expect(cache.loaded()).toEqual(['duo/v1/users']);
      expect(cache.diskBytes()).toBeLessThanOrEqual(budget);
    });

    it('never takes the room of a collection a request holds', async () => {
      const { cache } = setup({ diskBudgetBytes: budget });
      cache.setRoles('duo', 'v1', undefined);
      const users = await load(cache, 'users');
      const err = await load(cache, 'tracks').catch((e) => e);
      expect(err).toMatchObject({ reason: 'disk-budget', kind: 'unavailable' });
      expect(cache.loaded()).toEqual(['duo/v1/users']);
      users.release();
      (await load(cache, 'tracks')).release();
      expect(cache.loaded()).toEqual(['duo/v1/tracks']);
    });
  });

  it('checks free space before a download: too little is a 503 for that request, not a broken version', async () => {
    let free = 0;
    const { ask, log } = setup({ freeBytes: async () => free });
    const err = await ask(pin('v1')).catch((e) => e);
    expect(err).toBeInstanceOf(CapacityError);
    expect(err).toMatchObject({ reason: 'disk-full' });
    expect(log.lines.filter((l) => l.message === 'snapshot load failed')).toEqual([]);
    free = 1 << 30;
    // Not held for 15 s as a broken snapshot: the next request loads it.
    expect((await ask(pin('v1'))).version).toBe('v1');
  });

  it('answers ENOSPC during a download with a 503, and the version loads on the next request', async () => {
    let fail = true;
    const store: BlobStore = Object.create(h.store);
    store.getStream = async (key, range) => {
      if (fail && key.endsWith('.hnsw')) {
        fail = false;
        return Readable.from(
          (async function* () {
            yield Buffer.alloc(0);
            throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
          })(),
        );
      }
      return h.store.getStream(key, range);
    };
    const { ask, log } = setup({}, store);
    const err = await ask(params).catch((e) => e);
    expect(err).toMatchObject({ reason: 'disk-full', kind: 'unavailable' });
    expect(log.lines.filter((l) => l.message === 'snapshot load failed')).toEqual([]);
    expect((await ask(params)).version).toBe('v5');
  });
});

describe('budget configuration', () => {
  const base = { VICINITY_BUCKET: 'b', VICINITY_TABLE: 't' };
  it('defaults the disk budget to 80% of the ephemeral storage (512 MB unless infra says more), and two pins', () => {
    const c = loadConfig(base);
    expect(c.diskBudgetBytes).toBe(Math.floor(512 * 0.8) * 1024 * 1024);
    expect(c.maxPinnedVersions).toBe(2);
    expect(c.pinWindowMs).toBe(300_000);
    expect(loadConfig({ ...base, [ENV.ephemeralStorageMb]: '2048' }).diskBudgetBytes).toBe(
      1638 * 1024 * 1024,
    );
    const set = loadConfig({
      ...base,
      [ENV.diskBudgetMb]: '100',
      [ENV.maxPinnedVersions]: '0',
      [ENV.pinWindowMs]: '1000',
    });
    expect(set).toMatchObject({
      diskBudgetBytes: 100 * 1024 * 1024,
      maxPinnedVersions: 0,
      pinWindowMs: 1000,
    });
  });
});
