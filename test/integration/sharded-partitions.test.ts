/**
 * Partitions of one big input file on the stand-ins: a JSONL file above VICINITY_PARTITION_BYTES is
 * read by one partition task per byte range (Lambda Invoke stand-in, worker processes), and what it
 * builds — and what it refuses — is what one task reading the whole file would: the same ids, and
 * problems at the file's own line numbers, also when the line lies in a later range. A raw input
 * (vectors + ids) above it is read by one task per range of rows, each row still paired with its id.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../functions/snapshot/manifest';
import { clusteredVectors, jsonlRows } from '../../local/synthetic';
import { type TestStack, testStack } from '../support/local';
import { versionSettled } from '../support/settle';

const DIMS = 8;
const N = 500;
const PARTITION_BYTES = 16_000;
const data = clusteredVectors(N, DIMS, 6, 11);
const ids = Array.from({ length: N }, (_, i) => `item-${i}`);
const lines = jsonlRows(ids, data.vectors, DIMS).split('\n').slice(0, N);

/** The byte ranges the planner cuts a file of `size` bytes into (plan.ts partitionsOf). */
function ranges(size: number): { start: number; end: number }[] {
  const n = Math.ceil(size / PARTITION_BYTES);
  return Array.from({ length: n }, (_, i) => ({
    start: Math.floor((i * size) / n),
    end: Math.floor(((i + 1) * size) / n),
  }));
}

/** The index of the first line that starts inside range `r` (past its first few lines) of `text`. */
function lineInRange(ls: string[], r: number, skip = 3): number {
  const text = `${ls.join('\n')}\n`;
  const range = ranges(Buffer.byteLength(text))[r] as { start: number };
  let offset = 0;
  let seen = 0;
  for (let i = 0; i < ls.length; i++) {
    if (offset >= range.start && seen++ >= skip) return i;
    offset += Buffer.byteLength(ls[i] as string) + 1;
  }
  throw new Error('no such line');
}

const release = { collections: { items: { file: 'items.jsonl', metric: 'cosine', shards: 3 } } };

// Raw input: 2000 rows × 8 dims = 64 000 vector bytes, four row ranges; ids of uneven lengths.
const RAW_N = 2000;
const RAW_PARTS = Math.ceil((RAW_N * DIMS * 4) / PARTITION_BYTES);
const rawData = clusteredVectors(RAW_N, DIMS, 6, 12);
const rawIds = Array.from({ length: RAW_N }, (_, i) => `r${'-'.repeat(i % 13)}${i}`);
const rawRelease = {
  collections: { items: { vectors: 'items.f32', ids: 'items.ids', dims: DIMS, metric: 'l2', shards: 3 } },
};

describe('partitions of a big JSONL file (byte ranges, on the Lambda Invoke stand-in)', () => {
  let s: TestStack;
  beforeAll(async () => {
    s = await testStack(
      { qualitySample: 30, partitionBytes: PARTITION_BYTES, retentionGraceMs: 0 },
      undefined,
      {
        tasks: { concurrency: 2, retryDelayMs: 100 },
      },
    );
  }, 120_000);
  afterAll(async () => {
    await s?.dispose();
  });
  const rawBuild = async (space: string, ids: string[]) => {
    const vectors = Buffer.from(rawData.vectors.buffer, rawData.vectors.byteOffset, RAW_N * DIMS * 4);
    await s.publish(space, 'r1', { 'items.f32': vectors, 'items.ids': `${ids.join('\n')}\n` }, rawRelease);
    return versionSettled(s, space, 'v1', { activates: false });
  };

  it('a big JSONL split into several byte ranges builds exactly the ids of the file', async () => {
    const text = `${lines.join('\n')}\n`;
    expect(ranges(Buffer.byteLength(text)).length).toBeGreaterThanOrEqual(4);
    await s.publish('split', 'r1', { 'items.jsonl': text }, release);
    const v = await versionSettled(s, 'split', 'v1', { activates: false });
    expect(v).toMatchObject({
      status: 'READY',
      tasks: { partitions: ranges(Buffer.byteLength(text)).length, rows: N },
    });
    const manifest = JSON.parse(
      (await s.store.getText('snapshots/split/v1/manifest.json')) as string,
    ) as Manifest;
    const items = manifest.collections.items;
    expect(items?.count).toBe(N);
    const built: string[] = [];
    for (const seg of items?.segments ?? []) {
      built.push(...(JSON.parse((await s.store.getText(seg.files.ids.key)) as string) as string[]));
    }
    expect(built.sort()).toEqual([...ids].sort());
    const item = await s.get('/v1/spaces/split/collections/items/items/item-321');
    expect(item.status).toBe(200);
  }, 120_000);

  it('a bad line in the 2nd range FAILS the version with its line number in the file', async () => {
    const bad = [...lines];
    const t = lineInRange(lines, 1);
    bad[t] = `{"id":"item-${t}","vector":[1,2,3]}`;
    expect(lineInRange(bad, 1)).toBe(t); // still inside the 2nd range once shortened
    await s.publish('bad', 'r1', { 'items.jsonl': `${bad.join('\n')}\n` }, release);
    const v = await versionSettled(s, 'bad', 'v1', { activates: false });
    expect(v.status).toBe('FAILED');
    expect(v.problems).toEqual([expect.objectContaining({ file: 'items.jsonl', line: t + 1 })]);
    expect(String(v.reason)).toMatch(/^partition 1 of collection items \(items\.jsonl bytes \d+–\d+\): /);
    expect(String(v.reason)).toContain(`items.jsonl:${t + 1}: vector has 3 values`);
  }, 120_000);

  it('a big raw input is split into row ranges and builds exactly its ids and vectors', async () => {
    const v = await rawBuild('raw', rawIds);
    expect(v).toMatchObject({ status: 'READY', tasks: { partitions: RAW_PARTS, rows: RAW_N } });
    const manifest = JSON.parse(
      (await s.store.getText('snapshots/raw/v1/manifest.json')) as string,
    ) as Manifest;
    const built: string[] = [];
    for (const seg of manifest.collections.items?.segments ?? []) {
      built.push(...(JSON.parse((await s.store.getText(seg.files.ids.key)) as string) as string[]));
    }
    expect(built.sort()).toEqual([...rawIds].sort());
    // Each id with its own row's vector, across every cut (a row off by one would pair them wrongly).
    for (let i = 0; i < RAW_N; i += 23) {
      const item = await s.get(`/v1/spaces/raw/collections/items/items/${rawIds[i]}?include=vector`);
      expect(item.status).toBe(200);
      // The API prints float32 values in their shortest form; as float32 they are the input's exactly.
      expect((item.body.vector as number[]).map(Math.fround)).toEqual(
        Array.from(rawData.vectors.subarray(i * DIMS, (i + 1) * DIMS)),
      );
    }
  }, 120_000);

  it('a bad id in a later row range FAILS the version naming the ids file and its row', async () => {
    const row = 1337;
    const ids = [...rawIds];
    ids[row - 1] = 'bad\u0000id';
    const v = await rawBuild('rawbad', ids);
    expect(v.status).toBe('FAILED');
    expect(v.problems).toEqual([expect.objectContaining({ file: 'items.ids', line: row })]);
    expect(String(v.reason)).toMatch(
      /^partition 2 of collection items \(items\.f32, items\.ids rows \d+–\d+\): /,
    );
    expect(String(v.reason)).toContain(`items.ids:${row}: `);
  }, 120_000);

  it('a duplicate id across ranges is reported at both file lines', async () => {
    const dup = [...lines];
    const first = lineInRange(lines, 1);
    const second = lineInRange(lines, 3);
    dup[second] = (dup[second] as string).replace(`"item-${second}"`, `"item-${first}"`);
    await s.publish('dup', 'r1', { 'items.jsonl': `${dup.join('\n')}\n` }, release);
    const v = await versionSettled(s, 'dup', 'v1', { activates: false });
    expect(v.status).toBe('FAILED');
    expect(v.problems).toEqual([
      expect.objectContaining({
        file: 'items.jsonl',
        line: second + 1,
        message: `duplicate id "item-${first}" (first at items.jsonl:${first + 1})`,
      }),
    ]);
  }, 120_000);
});
