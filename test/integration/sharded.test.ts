/**
 * Sharded collections end to end on the stand-ins: the build plans, partition and shard tasks run as
 * asynchronous Lambda invokes on the local Lambda Invoke stand-in (worker processes), the last shard
 * finalizes, and the pointer switches once.
 */
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shardOf } from '../../functions/core/shard';
import type { Manifest } from '../../functions/snapshot/manifest';
import { clusteredVectors, jsonlRows } from '../../local/synthetic';
import { type TestStack, testStack } from '../support/local';
import { versionSettled } from '../support/settle';

const DIMS = 16;
const N = 1800;
const PARTS = 6;
const SHARDS = 12;
const data = clusteredVectors(N, DIMS, 10, 5);
const ids = Array.from({ length: N }, (_, i) => `item-${i}`);
const vec = (i: number) => Array.from(data.vectors.subarray(i * DIMS, (i + 1) * DIMS));

/** A Spark-style part file (LIST of FLOAT) with rows [from, to) and a metadata column. */
function part(from: number, to: number, bad?: number): Buffer {
  const rows = ids.slice(from, to);
  const ab = parquetWriteBuffer({
    schema: [
      { name: 'root', num_children: 3 },
      { name: 'id', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' },
      { name: 'vector', repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
      { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
      { name: 'element', type: 'FLOAT', repetition_type: 'OPTIONAL' },
      { name: 'n', type: 'INT32', repetition_type: 'OPTIONAL' },
    ],
    columnData: [
      { name: 'id', data: rows },
      {
        name: 'vector',
        data: rows.map((_, i) => (from + i === bad ? vec(from + i).slice(0, 3) : vec(from + i))),
      },
      { name: 'n', data: rows.map((_, i) => from + i) },
    ],
    codec: 'SNAPPY',
  });
  return Buffer.from(ab);
}

function partFiles(bad?: number): Record<string, Buffer> {
  const files: Record<string, Buffer> = {};
  const per = N / PARTS;
  for (let p = 0; p < PARTS; p++) {
    files[`items/part-0000${p}-abc.snappy.parquet`] = part(p * per, (p + 1) * per, bad);
  }
  files['items/_SUCCESS'] = Buffer.from('');
  return files;
}

const partNames = Object.keys(partFiles()).filter((f) => f.endsWith('.parquet'));
const small = 200;
const smallJsonl = jsonlRows(ids.slice(0, small), data.vectors.subarray(0, small * DIMS), DIMS);

function release(shards: number | 'auto', extra: Record<string, unknown> = {}) {
  return {
    collections: {
      items: { files: [...partNames, 'items/_SUCCESS'], metric: 'cosine', shards, ...extra },
      tags: { file: 'tags.jsonl', metric: 'cosine' },
    },
  };
}

const topIds = (body: Record<string, unknown>) => ((body.results as { id: string }[]) ?? []).map((r) => r.id);

// Space 'shop' v1 is built once (with a killed shard task) and only read after; each test runs alone.
describe('sharded collections (build tasks on the Lambda Invoke stand-in)', () => {
  let s: TestStack;
  let marker: string;
  let v: Record<string, unknown>;
  let failedAfterV1: unknown[];

  beforeAll(async () => {
    marker = join(await mkdtemp(join(tmpdir(), 'vicinity-kill-')), 'killed');
    s = await testStack({ qualitySample: 40, retentionGraceMs: 0 }, undefined, {
      tasks: { concurrency: 2, retryDelayMs: 100, env: { VICINITY_TEST_KILL_SHARD: `${marker}:items:5` } },
    });
    await s.publish('shop', 'r1', { ...partFiles(), 'tags.jsonl': smallJsonl }, release(SHARDS));
    v = await versionSettled(s, 'shop', 'v1');
    failedAfterV1 = [...s.lambda.failed];
  }, 240_000);
  afterAll(async () => {
    await s?.dispose();
  });

  it('builds a 12-shard collection from 6 Parquet parts beside an unsharded one, live in one switch; a SIGKILLed shard task is retried', async () => {
    expect(v).toMatchObject({ status: 'READY' });
    // The kill hook fired once (shard 5's first attempt), the retry built it, the version went READY once.
    expect(existsSync(marker)).toBe(true);
    expect(failedAfterV1).toEqual([]);
    const tasks = v.tasks as Record<string, number>;
    expect(tasks).toMatchObject({
      partitions: PARTS,
      partitionsDone: PARTS,
      shards: SHARDS,
      shardsDone: SHARDS,
      rows: N,
    });
    expect((v.tasks as { attempts: Record<string, number> }).attempts['s:items:5']).toBe(2);
    const collections = v.collections as Record<
      string,
      { count: number; shards?: number; recallAt10: number }
    >;
    expect(collections.items).toMatchObject({ count: N, shards: SHARDS });
    expect(collections.items?.recallAt10).toBeGreaterThanOrEqual(0.95);
    expect(collections.tags).toMatchObject({ count: small });
    expect(collections.tags?.shards).toBeUndefined();

    // One switch: the pointer names v1 at generation 1.
    const space = await s.get('/v1/spaces/shop');
    expect(space.body).toMatchObject({ active: { version: 'v1', generation: 1 } });
    const history = await s.get('/v1/spaces/shop/history');
    expect((history.body.history as unknown[]).length).toBe(1);

    // The manifest: every shard, each a list of segments, ids where the hash says.
    const manifest = JSON.parse(
      (await s.store.getText('snapshots/shop/v1/manifest.json')) as string,
    ) as Manifest;
    const items = manifest.collections.items;
    expect(items?.sharding).toMatchObject({ hash: 'fnv1a64-utf8-mod', shards: SHARDS });
    expect(items?.sharding?.layout).toHaveLength(SHARDS);
    expect(items?.sharding?.layout.reduce((n, l) => n + l.count, 0)).toBe(N);
    for (const l of items?.sharding?.layout ?? []) {
      for (const segIndex of l.segments) {
        const seg = items?.segments[segIndex];
        const segIds = JSON.parse(
          (await s.store.getText(seg?.files.ids.key as string)) as string,
        ) as string[];
        for (const id of segIds) expect(shardOf(id, SHARDS)).toBe(l.shard);
      }
    }
    expect(manifest.collections.tags?.sharding).toBeUndefined();
    // Staging is gone once READY.
    expect(await s.store.list('staging/shop/v1/')).toEqual([]);

    // Lookups and similarity work across shards; metadata came through.
    const item = await s.get('/v1/spaces/shop/collections/items/items/item-77');
    expect(item.status).toBe(200);
    expect(item.body).toMatchObject({ id: 'item-77', metadata: { n: 77 } });

    // Same top-10 as the same data unsharded, at high ef.
    await s.publish('plain', 'r1', { ...partFiles(), 'tags.jsonl': smallJsonl }, release(1));
    expect(await versionSettled(s, 'plain', 'v1')).toMatchObject({ status: 'READY' });
    for (const q of [3, 500, 1234]) {
      const a = await s.get(`/v1/spaces/shop/collections/items/items/item-${q}/similar?k=10&ef=500`);
      const b = await s.get(`/v1/spaces/plain/collections/items/items/item-${q}/similar?k=10&ef=500`);
      expect(a.status).toBe(200);
      expect(topIds(a.body)).toEqual(topIds(b.body));
      expect(topIds(a.body)).toHaveLength(10);
      const byVector = await s.post('/v1/spaces/shop/collections/items/query', {
        vector: vec(q),
        k: 10,
        ef: 500,
      });
      expect(topIds(byVector.body)[0]).toBe(`item-${q}`);
    }
  }, 240_000);

  it('a bad row in one part FAILS the version with file and line; the pointer stays', async () => {
    await s.publish('shop', 'r2', { ...partFiles(1000), 'tags.jsonl': smallJsonl }, release(SHARDS));
    const v2 = await versionSettled(s, 'shop', 'v2');
    expect(v2.status).toBe('FAILED');
    expect(String(v2.reason)).toMatch(/items\/part-00003-abc\.snappy\.parquet/);
    expect(JSON.stringify(v2.problems)).toMatch(/"line":\s*101/);
    expect((await s.get('/v1/spaces/shop')).body).toMatchObject({ active: { version: 'v1', generation: 1 } });
    // Partition tasks still writing when the version FAILED delete their own chunks as they finish.
    await s.idle();
    expect(await s.store.list('staging/shop/v2/')).toEqual([]);
  }, 120_000);

  it('a redelivered release.json event builds nothing twice', async () => {
    const before = s.lambda.invocations.length;
    const names = async () =>
      ((await s.get('/v1/spaces/shop/versions')).body.versions as { version: string }[]).map(
        (x) => x.version,
      );
    const versionsBefore = await names();
    // The same object key and content again: s3rver sends a new event (new sequencer) → a new version,
    // as in AWS; redelivery of the *same* event is what must not build twice — replay the first one.
    const replay = await s.get('/v1/spaces/shop/versions/v1');
    expect(replay.body.status).toBe('READY');
    const { createBuildHandler } = await import('../../functions/builder/handler');
    const { fakeContext } = await import('../../local/http-adapter');
    const v1 = replay.body as { releaseKey: string; sequencer: string };
    const event = {
      Records: [
        { eventName: 'ObjectCreated:Put', s3: { object: { key: v1.releaseKey, sequencer: v1.sequencer } } },
      ],
    };
    const build = createBuildHandler(s.deps);
    const [again] = await build(event as never, fakeContext('build', 'replay'));
    expect(again).toMatchObject({ status: 'READY', version: 'v1', built: false });
    await s.idle();
    expect(s.lambda.invocations.length).toBe(before);
    expect(await names()).toEqual(versionsBefore);
  }, 60_000);
});
