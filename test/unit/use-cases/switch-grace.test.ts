import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hnswEngine } from '../../../functions/adapters/hnsw-index';
import type { BlobStore } from '../../../functions/core/ports';
import type { SearchParams } from '../../../functions/core/query';
import { requestContext } from '../../../functions/query/context';
import { QueryService, type SearchAnswer } from '../../../functions/query/service';
import { SnapshotCache } from '../../../functions/snapshot/cache';
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

/** A store whose reads of a version's snapshot files (not its manifest) wait until `open()`. */
function slowStore(inner: BlobStore) {
  let gate: { version: string; promise: Promise<void>; open: () => void } | undefined;
  const waits = async (key: string) => {
    const g = gate;
    if (g && key.startsWith(snapshotPrefix(SPACE, g.version)) && !key.endsWith('manifest.json'))
      await g.promise;
  };
  const store: BlobStore = {
    bucket: inner.bucket,
    head: (key) => inner.head(key),
    getText: async (key, o) => {
      await waits(key);
      return inner.getText(key, o);
    },
    getStream: async (key, ...rest) => {
      await waits(key);
      return inner.getStream(key, ...rest);
    },
    putText: (k, t, c) => inner.putText(k, t, c),
    putFile: (k, p, c) => inner.putFile(k, p, c),
    list: (p) => inner.list(p),
    deleteKeys: (k) => inner.deleteKeys(k),
  };
  return {
    store,
    close(version: string) {
      let open = () => {};
      const promise = new Promise<void>((resolve) => {
        open = resolve;
      });
      gate = { version, promise, open };
    },
    open() {
      gate?.open();
      gate = undefined;
    },
  };
}

/** Whether the promise settles within `ms` (without consuming it). */
async function settlesWithin<T>(p: Promise<T>, ms: number): Promise<boolean> {
  const marker = Symbol('pending');
  const r = await Promise.race([p.then(() => 1), new Promise((res) => setTimeout(() => res(marker), ms))]);
  return r !== marker;
}

describe('switch grace on the in-memory ports', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness();
  });
  afterEach(async () => h.dispose());

  const publishAndBuild = async (release: string, prefix: string, seed: number) =>
    h.build(await h.publish(SPACE, release, { 'tracks.jsonl': jsonl(prefix, 40, seed) }, tracksOnly));

  function service(switchGraceMs: number, diskBudgetBytes?: number) {
    const slow = slowStore(h.store);
    const cache = new SnapshotCache(slow.store, hnswEngine, {
      cacheDir: join(h.cacheDir, `grace-${switchGraceMs}-${Math.random()}`),
      memoryBudgetBytes: 1 << 30,
      log: recordingLog(),
      ...(diskBudgetBytes === undefined ? {} : { diskBudgetBytes }),
    });
    const clock = manualClock();
    const query = new QueryService({
      registry: h.registry,
      cache,
      pointerTtlMs: 0,
      log: recordingLog(),
      switchGraceMs,
      now: clock.now,
    });
    const ask = (p: Partial<SearchParams> = {}) =>
      query.query(SPACE, 'tracks', vector, { ...params, ...p }, requestContext());
    return { slow, cache, query, ask, clock };
  }

  const from = (a: SearchAnswer, prefix: string) => a.results.every((r) => r.id.startsWith(prefix));

  it('keeps answering from the loaded version while the new one loads, then from the new one; no request waits', async () => {
    await publishAndBuild('r1', 'a', 1);
    const { slow, cache, ask } = service(30_000);
    expect((await ask()).version).toBe('v1');

    await publishAndBuild('r2', 'b', 2);
    slow.close('v2');
    // The pointer says v2; its files are slow to come. Every request is answered at once, from v1.
    const during: SearchAnswer[] = [];
    for (let i = 0; i < 5; i++) {
      const p = ask();
      expect(await settlesWithin(p, 1000)).toBe(true);
      during.push(await p);
    }
    for (const a of during) {
      expect(a.version).toBe('v1');
      expect(from(a, 'a')).toBe(true);
    }
    expect(cache.loadedNames(SPACE, 'v2')).toEqual([]);

    // A strong read and a pinned read get exactly what they ask for: they wait for v2's load.
    const strong = ask({ consistency: 'strong' });
    const pinned = ask({ version: 'v2' });
    expect(await settlesWithin(strong, 200)).toBe(false);
    expect(await settlesWithin(pinned, 10)).toBe(false);
    expect((await ask()).version).toBe('v1');

    slow.open();
    for (const a of [await strong, await pinned]) {
      expect(a.version).toBe('v2');
      expect(from(a, 'b')).toBe(true);
    }
    // The background load lands: from then on, v2 (each answer whole, from one version).
    for (let i = 0; i < 100 && cache.loadedNames(SPACE, 'v2').length === 0; i++)
      await new Promise((r) => setTimeout(r, 10));
    const after = await ask();
    expect(after.version).toBe('v2');
    expect(from(after, 'b')).toBe(true);
    // v1's memory goes once v2 serves.
    expect(cache.loadedNames(SPACE, 'v1')).toEqual([]);
  });

  it('with switchGraceMs 0, requests after a switch wait for the new version (today’s behaviour)', async () => {
    await publishAndBuild('r1', 'a', 1);
    const { slow, ask } = service(0);
    expect((await ask()).version).toBe('v1');
    await publishAndBuild('r2', 'b', 2);
    slow.close('v2');
    const p = ask();
    expect(await settlesWithin(p, 200)).toBe(false);
    slow.open();
    expect((await p).version).toBe('v2');
  });

  it('on a disk budget that holds one version, the new one takes the old one’s room: requests wait for it, none fails', async () => {
    await publishAndBuild('r1', 'a', 1);
    const manifest = JSON.parse((await h.store.getText(manifestKey(SPACE, 'v1'))) as string) as Manifest;
    // v2 is the same size (40 rows of the same shape): the budget holds one of them, not both.
    const budget = Math.floor(allFiles(manifest).reduce((a, f) => a + f.bytes, 0) * 1.5);
    const { slow, cache, ask } = service(30_000, budget);
    expect((await ask()).version).toBe('v1');
    await publishAndBuild('r2', 'b', 2);
    slow.close('v2');
    // The first request after the switch still finds v1 loaded; v2's download then takes v1's room,
    // so later requests wait for v2 (as without grace) instead of failing on a full disk.
    const asked = [ask(), ask(), ask()];
    for (let i = 0; i < 500 && cache.loadedNames(SPACE, 'v1').length > 0; i++)
      await new Promise((r) => setTimeout(r, 10));
    expect(cache.loadedNames(SPACE, 'v1')).toEqual([]);
    const later = ask();
    expect(await settlesWithin(later, 100)).toBe(false);
    slow.open();
    const answers = await Promise.all([...asked, later]);
    for (const a of answers) expect(from(a, a.version === 'v1' ? 'a' : 'b')).toBe(true);
    expect((await later).version).toBe('v2');
    expect(cache.diskBytes()).toBeLessThanOrEqual(budget);
  });

  it('stops serving the old version once the grace has run out', async () => {
    await publishAndBuild('r1', 'a', 1);
    const { slow, ask, clock } = service(150);
    expect((await ask()).version).toBe('v1');
    await publishAndBuild('r2', 'b', 2);
    slow.close('v2');
    expect((await ask()).version).toBe('v1');
    clock.advance(149);
    expect((await ask()).version).toBe('v1');
    clock.advance(1);
    const p = ask();
    expect(await settlesWithin(p, 100)).toBe(false);
    slow.open();
    expect((await p).version).toBe('v2');
  });
});
