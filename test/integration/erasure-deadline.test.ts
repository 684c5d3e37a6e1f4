/**
 * The purge in a Lambda's real life (each test its own space on one local stack, no background sweeper;
 * the sweeper handler is invoked with a Lambda context whose remaining time the test chooses):
 * - a sweep that has too little time left does not start a segment rebuild: the erasure stays ERASED,
 *   the version keeps its manifest (nothing half-switched); a later sweep with time purges it;
 * - a segment bigger than VICINITY_PURGE_SEGMENT_ITEMS is rebuilt as several pieces, and every
 *   remaining id is still found (its similar route, its own vector) while the erased one is gone;
 * - an erasure whose purge is cut short three sweeps in a row shows `purgeError` on GET …/erasures;
 *   attempts are counted before their work, so attempts killed at the deadline count too;
 * - a purge cut short between two segments resumes: the segment it rebuilt is not rebuilt again.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoRegistry } from '../../functions/adapters/dynamo-registry';
import { type BlobStore, silentLog } from '../../functions/core/ports';
import { type Manifest, manifestKey } from '../../functions/snapshot/manifest';
import { purgeSnapshot } from '../../functions/snapshot/purge';
import { createSweepHandler } from '../../functions/sweeper/handler';
import type { SweepReport } from '../../functions/sweeper/sweep';
import { BUILD_TIMEOUT_MS, fakeContext } from '../../local/http-adapter';
import { clusteredVectors, jsonlRows } from '../../local/synthetic';
import { type TestStack, testStack } from '../support/local';

const DIMS = 8;
const N = 400;
/** item-97 … item-100 share one vector: a duplicate group across the first piece boundary (row 99). */
const DUP = [97, 98, 99, 100];

function release() {
  const v = clusteredVectors(N, DIMS, 4, 7);
  for (const d of DUP.slice(1)) v.vectors.copyWithin(d * DIMS, DUP[0]! * DIMS, (DUP[0]! + 1) * DIMS);
  const ids = Array.from({ length: N }, (_, i) => `item-${i}`);
  return {
    vectors: v.vectors,
    files: { 'items.jsonl': jsonlRows(ids, v.vectors, DIMS, (i) => ({ n: i })) },
    json: { collections: { items: { file: 'items.jsonl', metric: 'cosine' } }, activate: true },
  };
}

interface ErasureView {
  id: string;
  status: string;
  purgeAttempts?: number;
  purgeError?: string;
}

describe('the purge within the sweeper’s deadline', () => {
  let s: TestStack;
  let registry: DynamoRegistry;
  const r = release();

  beforeAll(async () => {
    s = await testStack({}, undefined, { sweepMs: 0 });
    registry = new DynamoRegistry(s.deps.dynamo, s.info.table);
  }, 120_000);
  let workDir: string | undefined;
  afterAll(async () => {
    await s?.dispose();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  /** One sweeper invocation with `remainingMs` before Lambda would kill it. */
  const sweepWith = async (remainingMs: number, pieceItems?: number): Promise<SweepReport> => {
    const h = createSweepHandler({
      ...s.deps,
      config: { ...s.deps.config, ...(pieceItems ? { purgeSegmentItems: pieceItems } : {}) },
    });
    return h({}, fakeContext('vicinity-sweeper', `sweep-${Date.now()}`, remainingMs));
  };
  const erase = async (space: string, id: string) => {
    const res = await fetch(`${s.info.apiUrl}/v1/spaces/${space}/collections/items/items/${id}`, {
      method: 'DELETE',
    });
    expect(res.status).toBe(202);
  };
  const erasure = async (space: string, id: string) =>
    ((await s.get(`/v1/spaces/${space}/erasures`)).body.erasures as ErasureView[]).find((e) => e.id === id);
  const publish = async (space: string) => {
    const [v] = await s.publish(space, 'r1', r.files, r.json);
    expect(v?.status).toBe('READY');
  };

  it('does not start a rebuild that cannot end before the deadline; a later sweep with time purges', async () => {
    await publish('dl');
    await erase('dl', 'item-5');

    const short = await sweepWith(5_000);
    expect(short.erasure.deferred?.map((d) => d.space)).toEqual(['dl']);
    expect(short.erasure.deferred?.[0]?.reason).toMatch(/does not fit/);
    expect(short.erasure.rewritten).toEqual([]);
    expect((await erasure('dl', 'item-5'))?.status).toBe('ERASED');
    // Nothing half-switched: the record still names the built manifest; no purged manifest exists.
    const v1 = await registry.getVersion('dl', 'v1');
    expect(v1?.manifestGeneration ?? 0).toBe(0);
    expect((v1?.purgedThrough ?? 0) < (await registry.getSpaceState('dl')).erasureAdded).toBe(true);
    expect(
      (await s.store.list('snapshots/dl/v1/p1/')).filter((o) => o.key.endsWith('manifest.json')),
    ).toEqual([]);
    // Still hidden from every answer meanwhile.
    expect((await s.get('/v1/spaces/dl/collections/items/items/item-5?consistency=strong')).status).toBe(404);

    const full = await sweepWith(BUILD_TIMEOUT_MS);
    expect(full.erasure.deferred ?? []).toEqual([]);
    expect(full.erasure.rewritten.map((x) => x.space)).toEqual(['dl']);
    expect((await erasure('dl', 'item-5'))?.status).toBe('PURGED');
    expect((await registry.getVersion('dl', 'v1'))?.manifestGeneration).toBe(1);
  }, 180_000);

  it('rebuilds a segment bigger than VICINITY_PURGE_SEGMENT_ITEMS as pieces; every other id is still found', async () => {
    await publish('pc');
    await erase('pc', 'item-300');
    const report = await sweepWith(BUILD_TIMEOUT_MS, 100);
    expect(report.erasure.rewritten.map((x) => x.space)).toEqual(['pc']);
    expect((await erasure('pc', 'item-300'))?.status).toBe('PURGED');

    const v1 = await registry.getVersion('pc', 'v1');
    const manifest = JSON.parse((await s.store.getText(v1?.manifestKey as string)) as string) as Manifest;
    const segments = manifest.collections.items?.segments ?? [];
    expect(segments.map((x) => x.count)).toEqual([99, 100, 100, 100]);
    expect(manifest.collections.items?.count).toBe(N - 1);

    const kept = Array.from({ length: N }, (_, i) => i).filter((i) => i !== 300);
    const batch = async (queries: Record<string, unknown>[]) => {
      const b = await s.post('/v1/spaces/pc/batch', { consistency: 'strong', queries });
      expect(b.status, JSON.stringify(b.body)).toBe(200);
      return b.body.results as { status: number; results?: { id: string }[] }[];
    };
    for (let at = 0; at < kept.length; at += 100) {
      const chunk = kept.slice(at, at + 100);
      // Its similar route finds it (the item is in a piece) and never answers the erased id.
      const similar = await batch(chunk.map((i) => ({ collection: 'items', item: `item-${i}`, k: 5 })));
      for (const res of similar) {
        expect(res.status).toBe(200);
        expect(res.results?.map((x) => x.id)).not.toContain('item-300');
      }
      // Its own vector finds it first (a duplicate group: one of the group, at distance 0).
      const own = await batch(
        chunk.map((i) => ({
          collection: 'items',
          vector: Array.from(r.vectors.subarray(i * DIMS, (i + 1) * DIMS)),
          k: 1,
          ef: 100,
        })),
      );
      own.forEach((res, j) => {
        const i = chunk[j] as number;
        const first = res.results?.[0]?.id;
        if (DUP.includes(i)) expect(DUP.map((d) => `item-${d}`)).toContain(first);
        else expect(first).toBe(`item-${i}`);
      });
    }
    // The duplicate group split across two pieces still answers all its other members.
    const dup = await s.get('/v1/spaces/pc/collections/items/items/item-97/similar?k=5&consistency=strong');
    const dupIds = (dup.body.results as { id: string }[]).map((x) => x.id);
    expect(dupIds).toEqual(expect.arrayContaining(['item-98', 'item-99', 'item-100']));
    expect((await s.get('/v1/spaces/pc/collections/items/items/item-300?consistency=strong')).status).toBe(
      404,
    );
  }, 240_000);

  it('marks an erasure whose purge is cut short three sweeps in a row (purgeError), and clears it once purged', async () => {
    await publish('st');
    await erase('st', 'item-9');
    for (const n of [1, 2]) {
      const rep = await sweepWith(5_000);
      expect(rep.erasure.stalled ?? []).toEqual([]);
      const e = await erasure('st', 'item-9');
      expect(e).toMatchObject({ status: 'ERASED', purgeAttempts: n });
      expect(e?.purgeError).toBeUndefined();
    }
    const third = await sweepWith(5_000);
    expect(third.erasure.stalled).toEqual([{ space: 'st', attempts: 3, reason: expect.any(String) }]);
    const stalled = await erasure('st', 'item-9');
    expect(stalled).toMatchObject({ status: 'ERASED', purgeAttempts: 3 });
    expect(stalled?.purgeError).toMatch(/3 purge attempts in a row ended without progress.*does not fit/);

    const full = await sweepWith(BUILD_TIMEOUT_MS);
    expect(full.erasure.stalled ?? []).toEqual([]);
    const done = await erasure('st', 'item-9');
    expect(done?.status).toBe('PURGED');
    expect(done?.purgeError).toBeUndefined();
  }, 180_000);

  it('counts an attempt before its work, so attempts killed at the deadline add up to purgeError', async () => {
    await publish('kl');
    await erase('kl', 'item-3');
    // Three attempts that started (and counted) but never came back: killed at the deadline.
    await registry.updateErasure('kl', 'items', 'item-3', 'ERASED', { purgeAttempts: 3 });
    const fourth = await sweepWith(5_000);
    expect(fourth.erasure.stalled).toEqual([{ space: 'kl', attempts: 4, reason: expect.any(String) }]);
    expect(await erasure('kl', 'item-3')).toMatchObject({
      status: 'ERASED',
      purgeAttempts: 4,
      purgeError: expect.stringMatching(/^4 purge attempts in a row/),
    });
    // An attempt that gets through is no stall: purged, purgeError gone, nothing reported.
    const full = await sweepWith(BUILD_TIMEOUT_MS);
    expect(full.erasure.stalled ?? []).toEqual([]);
    const done = await erasure('kl', 'item-3');
    expect(done?.status).toBe('PURGED');
    expect(done?.purgeError).toBeUndefined();
  }, 180_000);

  it('resumes a purge cut short between segments: the segment it rebuilt is not rebuilt again', async () => {
    const [v] = await s.publish('rs', 'r1', r.files, {
      collections: { items: { file: 'items.jsonl', metric: 'cosine', segments: 2 } },
      activate: true,
    });
    expect(v?.status).toBe('READY');
    workDir = await mkdtemp(join(tmpdir(), 'vicinity-purge-resume-'));
    const manifest = JSON.parse((await s.store.getText(manifestKey('rs', 'v1'))) as string) as Manifest;
    const segs = manifest.collections.items?.segments ?? [];
    expect(segs).toHaveLength(2);
    // One erased id in each segment.
    const firstIds = await Promise.all(
      segs.map(async (x) => (JSON.parse((await s.store.getText(x.files.ids.key)) as string) as string[])[0]),
    );
    const erased = new Map([['items', new Set(firstIds as string[])]]);
    const uploads: string[] = [];
    const store = new Proxy(s.store, {
      get(target, key, receiver) {
        const value = Reflect.get(target, key, receiver);
        if (key === 'putFile')
          return (k: string, ...rest: unknown[]) => {
            uploads.push(k);
            return (value as (...a: unknown[]) => Promise<void>).call(target, k, ...rest);
          };
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as BlobStore;
    // The clock jumps to the deadline after the first segment's check: the second does not fit.
    let reads = 0;
    const cut = await purgeSnapshot({ store, log: silentLog, workDir }, manifest, erased, 1, {
      deadlineMs: 100_000,
      nowMs: () => (reads++ === 0 ? 0 : 100_000),
    });
    expect(cut).toMatchObject({ deferred: expect.stringMatching(/^items segment 1 /) });
    expect(uploads.filter((k) => k.includes('/seg-0/index.hnsw'))).toHaveLength(1);
    expect(uploads.filter((k) => k.includes('/seg-1/'))).toEqual([]);

    uploads.length = 0;
    const done = await purgeSnapshot({ store, log: silentLog, workDir }, manifest, erased, 1, {});
    expect(done).toMatchObject({ removed: { items: 2 }, rebuilt: 2 });
    expect(uploads.filter((k) => k.includes('/seg-0/'))).toEqual([]);
    expect(uploads.filter((k) => k.includes('/seg-1/index.hnsw'))).toHaveLength(1);
    const out = (done as { manifest: Manifest }).manifest.collections.items;
    expect(out?.count).toBe(N - 2);
    expect(out?.segments.map((x) => x.count)).toEqual(segs.map((x) => x.count - 1));
  }, 180_000);
});
