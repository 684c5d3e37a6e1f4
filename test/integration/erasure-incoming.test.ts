/**
 * Erasure and the team's uploads (each test on its own space of one local stack, any order):
 * - the purge step fills each erasure's `incomingReleases` with the releases under incoming/ whose
 *   inputs still hold the id (Vicinity never edits them);
 * - `deleteInputsAfterBuild: true` in release.json deletes the release's inputs once its build ends,
 *   READY or FAILED; without it the inputs stay.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoRegistry } from '../../functions/adapters/dynamo-registry';
import { silentLog } from '../../functions/core/ports';
import { type PurgeReport, purgeSpace } from '../../functions/sweeper/purge';
import { clusteredVectors, jsonlRows } from '../../local/synthetic';
import { type TestStack, testStack } from '../support/local';

const DIMS = 8;

function release(ids: string[], extra: Record<string, unknown> = {}) {
  const v = clusteredVectors(ids.length, DIMS, 3, ids.length);
  return {
    files: { 'items.jsonl': jsonlRows(ids, v.vectors, DIMS) },
    json: { collections: { items: { file: 'items.jsonl', metric: 'cosine' } }, activate: true, ...extra },
  };
}
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `i${from + i}`);

describe('erasure and incoming releases', () => {
  let s: TestStack;
  let registry: DynamoRegistry;
  let workDir: string;

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

  it('records in each erasure the incoming releases that still hold the id', async () => {
    const a = release(range(0, 60));
    const b = release(range(30, 90));
    await s.publish('inc', 'r-a', a.files, a.json);
    await s.publish('inc', 'r-b', b.files, b.json);
    const erase = await fetch(`${s.info.apiUrl}/v1/spaces/inc/collections/items/items/i10`, {
      method: 'DELETE',
      body: JSON.stringify({ ids: ['i40', 'i80', 'i999'] }),
      headers: { 'content-type': 'application/json' },
    });
    expect(erase.status).toBe(202);
    // Not known before the purge step checked.
    const before = (await s.get('/v1/spaces/inc/erasures')).body.erasures as {
      incomingReleases?: string[];
    }[];
    expect(before.every((e) => e.incomingReleases === undefined)).toBe(true);

    const report: PurgeReport = { rewritten: [], purged: 0, deletedObjects: 0 };
    await purgeSpace(
      { store: s.store, registry, log: silentLog, workDir, graceMs: 0 },
      'inc',
      await registry.getSpaceState('inc'),
      report,
    );
    const list = (await s.get('/v1/spaces/inc/erasures')).body.erasures as {
      id: string;
      status: string;
      incomingReleases?: string[];
    }[];
    const by = Object.fromEntries(list.map((e) => [e.id, e.incomingReleases]));
    expect(by).toEqual({ i10: ['r-a'], i40: ['r-a', 'r-b'], i80: ['r-b'], i999: [] });
    expect(list.every((e) => e.status === 'PURGED')).toBe(true);
    // The uploads themselves are untouched.
    expect(await s.store.getText('incoming/inc/r-a/items.jsonl')).toContain('"i10"');
  }, 120_000);

  it('deletes a release inputs after its build when release.json asks, READY or FAILED', async () => {
    const keep = release(range(0, 40));
    const ready = release(range(0, 40), { deleteInputsAfterBuild: true });
    const refused = release(range(0, 40), { deleteInputsAfterBuild: true });
    refused.files['items.jsonl'] += '{"id":"bad","vector":[1,2]}\n';

    const [k] = await s.publish('del', 'r-keep', keep.files, keep.json);
    expect(k?.status).toBe('READY');
    expect((await s.store.list('incoming/del/r-keep/')).map((o) => o.key).sort()).toEqual([
      'incoming/del/r-keep/items.jsonl',
      'incoming/del/r-keep/release.json',
    ]);

    const [r] = await s.publish('del', 'r-ready', ready.files, ready.json);
    expect(r?.status).toBe('READY');
    expect(await s.store.list('incoming/del/r-ready/')).toEqual([]);

    const [f] = await s.publish('del', 'r-refused', refused.files, refused.json);
    expect(f?.status).toBe('FAILED');
    expect(await s.store.list('incoming/del/r-refused/')).toEqual([]);
    // The version it built serves on from its snapshot.
    const item = await s.get('/v1/spaces/del/collections/items/items/i3?consistency=strong');
    expect(item.status).toBe(200);
  }, 120_000);
});
