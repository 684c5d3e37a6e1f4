/**
 * A purged sharded collection served through shard slots: after an erasure and the sweeper's purge the
 * version record names a new manifest (`manifestKey`), and the router sends it with every slot call, so
 * the slots read that manifest — never the version's default one. Proven by restoring the erasure after
 * the purge: the purged version stays without the id (contract), which only the new manifest says.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoRegistry } from '../../functions/adapters/dynamo-registry';
import { silentLog } from '../../functions/core/ports';
import { type Manifest, manifestKey } from '../../functions/snapshot/manifest';
import { type PurgeReport, purgeSpace } from '../../functions/sweeper/purge';
import { clusteredVectors, jsonlRows } from '../../local/synthetic';
import { type TestStack, testStack } from '../support/local';
import { versionSettled } from '../support/settle';

const DIMS = 8;
const N = 200;
const ids = Array.from({ length: N }, (_, i) => `item-${i}`);
const data = clusteredVectors(N, DIMS, 4, 11);
const vec = (i: number) => Array.from(data.vectors.subarray(i * DIMS, (i + 1) * DIMS));
const ERASED = 42;

describe('a purged sharded collection through shard slots', () => {
  let s: TestStack;
  let registry: DynamoRegistry;
  let workDir: string;

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'vicinity-slot-purge-'));
    s = await testStack({ qualitySample: 20, retentionGraceMs: 0 }, undefined, {
      tasks: { concurrency: 2, retryDelayMs: 100 },
      slots: { shardSlots: 2, hedgeMs: 400, memoryMb: 256 },
      // The test runs the purge itself; the stack's timer sweep could purge between its steps.
      sweepMs: 0,
    });
    registry = new DynamoRegistry(s.deps.dynamo, s.info.table);
  }, 120_000);
  afterAll(async () => {
    await s?.dispose();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it('serves the purged manifest from the slots: the erased id absent, k results', async () => {
    await s.publish(
      'sp',
      'r1',
      { 'items.jsonl': jsonlRows(ids, data.vectors, DIMS, (i) => ({ n: i })) },
      { collections: { items: { file: 'items.jsonl', metric: 'cosine', shards: 3 } }, activate: true },
    );
    expect(await versionSettled(s, 'sp', 'v1')).toMatchObject({ status: 'READY' });
    const base = '/v1/spaces/sp/collections/items';
    const query = () =>
      s.post(`${base}/query`, { vector: vec(ERASED), k: 10, ef: 400, consistency: 'strong' });
    const idsOf = (b: Record<string, unknown>) => ((b.results ?? []) as { id: string }[]).map((r) => r.id);
    // Before: the id is its own nearest neighbour (and the slots have loaded the default manifest).
    const before = await query();
    expect(before.status, JSON.stringify(before.body)).toBe(200);
    expect(idsOf(before.body)[0]).toBe(`item-${ERASED}`);

    const erase = await fetch(`${s.info.apiUrl}/v1/spaces/sp/collections/items/items/item-${ERASED}`, {
      method: 'DELETE',
    });
    expect(erase.status).toBe(202);
    const report: PurgeReport = { rewritten: [], purged: 0, deletedObjects: 0 };
    await purgeSpace(
      { store: s.store, registry, log: silentLog, workDir, graceMs: 0 },
      'sp',
      await registry.getSpaceState('sp'),
      report,
    );
    const v1 = await registry.getVersion('sp', 'v1');
    expect(v1?.manifestGeneration).toBeGreaterThan(0);
    expect(v1?.manifestKey).not.toBe(manifestKey('sp', 'v1'));
    expect(v1?.collections?.items).toBeDefined();

    // Restored after the purge: the erasure list no longer hides the id, the purged manifest still does.
    const restore = await fetch(
      `${s.info.apiUrl}/v1/spaces/sp/collections/items/items/item-${ERASED}/restore`,
      { method: 'POST' },
    );
    expect(restore.status).toBe(200);

    const after = await query();
    expect(after.status, JSON.stringify(after.body)).toBe(200);
    expect(after.body.version).toBe('v1');
    expect(idsOf(after.body)).toHaveLength(10);
    expect(idsOf(after.body)).not.toContain(`item-${ERASED}`);
    // The others keep their order: the purge dropped one item, nothing else.
    expect(idsOf(after.body).slice(0, 9)).toEqual(idsOf(before.body).slice(1, 10));
    // The item lookup goes to its shard's slot: not in the manifest it serves.
    const item = await s.get(`${base}/items/item-${ERASED}?consistency=strong`);
    expect(item.status).toBe(404);
    const other = await s.get(`${base}/items/item-7?consistency=strong`);
    expect(other.status).toBe(200);
  }, 180_000);

  it('a shard whose segment was rebuilt as pieces owns them all in its layout; the slots search them all', async () => {
    await s.publish(
      'spp',
      'r1',
      { 'items.jsonl': jsonlRows(ids, data.vectors, DIMS, (i) => ({ n: i })) },
      { collections: { items: { file: 'items.jsonl', metric: 'cosine', shards: 3 } }, activate: true },
    );
    expect(await versionSettled(s, 'spp', 'v1')).toMatchObject({ status: 'READY' });
    const erase = await fetch(`${s.info.apiUrl}/v1/spaces/spp/collections/items/items/item-${ERASED}`, {
      method: 'DELETE',
    });
    expect(erase.status).toBe(202);
    const report: PurgeReport = { rewritten: [], purged: 0, deletedObjects: 0 };
    await purgeSpace(
      { store: s.store, registry, log: silentLog, workDir, graceMs: 0, pieceItems: 30 },
      'spp',
      await registry.getSpaceState('spp'),
      report,
    );
    expect(report.purged).toBe(1);
    const v1 = await registry.getVersion('spp', 'v1');
    const m = JSON.parse((await s.store.getText(v1?.manifestKey as string)) as string) as Manifest;
    const c = m.collections.items;
    const layout = c?.sharding?.layout ?? [];
    // Every segment belongs to exactly one shard; the erased id's shard now owns several pieces.
    expect(layout.flatMap((l) => l.segments).sort((a, b) => a - b)).toEqual(c?.segments.map((_, i) => i));
    expect(Math.max(...layout.map((l) => l.segments.length))).toBeGreaterThan(1);
    for (const l of layout)
      expect(l.count).toBe(l.segments.reduce((a, i) => a + (c?.segments[i]?.count ?? 0), 0));
    expect(layout.reduce((a, l) => a + l.count, 0)).toBe(N - 1);
    expect(Math.max(...(c?.segments.map((x) => x.count) ?? []))).toBeLessThanOrEqual(30 + 40);

    // Through the slots: every remaining id is found by its own vector; the erased one is gone.
    for (let at = 0; at < N; at += 100) {
      const chunk = Array.from({ length: 100 }, (_, j) => at + j);
      const b = await s.post('/v1/spaces/spp/batch', {
        consistency: 'strong',
        queries: chunk.map((i) => ({ collection: 'items', vector: vec(i), k: 1, ef: 100 })),
      });
      expect(b.status, JSON.stringify(b.body)).toBe(200);
      const results = b.body.results as { status: number; results?: { id: string }[] }[];
      results.forEach((r, j) => {
        const i = chunk[j] as number;
        expect(r.status).toBe(200);
        if (i === ERASED) expect(r.results?.[0]?.id).not.toBe(`item-${ERASED}`);
        else expect(r.results?.[0]?.id).toBe(`item-${i}`);
      });
    }
  }, 180_000);
});
