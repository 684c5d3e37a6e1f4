import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chooseEf, efLadder } from '../../../functions/builder/quality-gate';
import { EF_LADDER, QUALITY_DEFAULTS } from '../../../functions/core/release';
import type { RecallPoint } from '../../../functions/core/version';
import { type Manifest, manifestKey } from '../../../functions/snapshot/manifest';
import { gaussian, mulberry32 } from '../../../local/synthetic';
import { type Harness, harness, jsonl } from '../../support/memory/harness';

const SPACE = 'tuning';

/** `n` gaussian random vectors of `dims` (no clusters: the hard case for HNSW), as raw float32. */
function randomRaw(n: number, dims: number, seed: number): { vectors: Buffer; ids: string } {
  const rand = mulberry32(seed);
  const v = new Float32Array(n * dims);
  for (let i = 0; i < v.length; i++) v[i] = gaussian(rand);
  return {
    vectors: Buffer.from(v.buffer),
    ids: Array.from({ length: n }, (_, i) => `r${i}`).join('\n'),
  };
}

describe('the quality gate tunes ef to the recall target', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness({ qualitySample: 100 });
  });
  afterEach(async () => h.dispose());

  it('caps the ladder where ef reaches the collection size, and picks the smallest ef reaching the target', () => {
    expect(efLadder(100_000)).toEqual([...EF_LADDER]);
    expect(efLadder(40)).toEqual([10, 16, 24, 32, 48]);
    const curve: RecallPoint[] = [
      { ef: 10, recall: 0.8, usPerQuery: 1 },
      { ef: 16, recall: 0.95, usPerQuery: 2 },
      { ef: 24, recall: 0.991, usPerQuery: 3 },
      { ef: 32, recall: 0.995, usPerQuery: 4 },
    ];
    expect(chooseEf(curve, 0.99)).toEqual({ ef: 24, met: true });
    expect(chooseEf(curve, 0.95)).toEqual({ ef: 16, met: true });
    expect(chooseEf(curve, 0.999)).toEqual({ ef: 32, met: false });
  });

  it('sets the serving ef to the smallest ladder step reaching the target on the sample, in the record and the manifest', async () => {
    const event = await h.publish(
      SPACE,
      'r1',
      { 'a.jsonl': jsonl('a', 3000, 7, 32) },
      { collections: { a: { file: 'a.jsonl', metric: 'cosine', M: 6, efConstruction: 40 } } },
    );
    expect(await h.build(event)).toMatchObject({ status: 'READY' });
    const record = await h.registry.getVersion(SPACE, 'v1');
    const report = record?.collections?.a;
    expect(report?.efSource).toBe('tuned');
    expect(report?.recallTarget).toBe(QUALITY_DEFAULTS.recallTarget);
    const curve = report?.recallCurve as RecallPoint[];
    // Measured from the bottom of the ladder up, in order.
    expect(curve.map((p) => p.ef)).toEqual(EF_LADDER.slice(0, curve.length));
    const first = curve.findIndex((p) => p.recall >= QUALITY_DEFAULTS.recallTarget);
    expect(first).toBeGreaterThanOrEqual(0);
    // The smallest reaching the target, one step after it, nothing more.
    expect(report?.ef).toBe(curve[first]?.ef);
    expect(curve.length).toBeLessThanOrEqual(first + 2);
    for (const p of curve.slice(0, first)) expect(p.recall).toBeLessThan(QUALITY_DEFAULTS.recallTarget);
    expect(report?.recallAt10).toBe(curve[first]?.recall);
    const manifest = JSON.parse((await h.store.getText(manifestKey(SPACE, 'v1'))) as string) as Manifest;
    expect(manifest.collections.a).toMatchObject({ ef: report?.ef, efSource: 'tuned', recallCurve: curve });
  });

  it('keeps an ef the release sets, and reports its recall', async () => {
    const event = await h.publish(
      SPACE,
      'r1',
      { 'a.jsonl': jsonl('a', 500, 3, 16) },
      { collections: { a: { file: 'a.jsonl', metric: 'l2', ef: 37 } } },
    );
    expect(await h.build(event)).toMatchObject({ status: 'READY' });
    const report = (await h.registry.getVersion(SPACE, 'v1'))?.collections?.a;
    expect(report).toMatchObject({ ef: 37, efSource: 'release' });
    expect(report?.recallCurve).toEqual([expect.objectContaining({ ef: 37, recall: report?.recallAt10 })]);
    expect(report?.recallTarget).toBeUndefined();
    const manifest = JSON.parse((await h.store.getText(manifestKey(SPACE, 'v1'))) as string) as Manifest;
    expect(manifest.collections.a?.ef).toBe(37);
  });

  it('honours a per-collection recallTarget over the release-wide one', async () => {
    const event = await h.publish(
      SPACE,
      'r1',
      { 'a.jsonl': jsonl('a', 2000, 5, 32), 'b.jsonl': jsonl('b', 2000, 5, 32) },
      {
        collections: {
          a: { file: 'a.jsonl', metric: 'cosine', M: 4, efConstruction: 20, recallTarget: 0.96 },
          b: { file: 'b.jsonl', metric: 'cosine', M: 4, efConstruction: 20 },
        },
        quality: { recallTarget: 0.999 },
      },
    );
    expect(await h.build(event)).toMatchObject({ status: 'READY' });
    const c = (await h.registry.getVersion(SPACE, 'v1'))?.collections;
    expect(c?.a?.recallTarget).toBe(0.96);
    expect(c?.b?.recallTarget).toBe(0.999);
    expect(c?.a?.ef).toBeLessThanOrEqual(c?.b?.ef as number);
  });

  it('fails only when even the cap stays below minRecall, with the curve and the M/efConstruction advice', async () => {
    const { vectors, ids } = randomRaw(400, 96, 11);
    h.store.putBytes(`incoming/${SPACE}/r1/v.f32`, vectors);
    const event = await h.publish(
      SPACE,
      'r1',
      { 'ids.txt': ids },
      {
        collections: {
          a: { vectors: 'v.f32', ids: 'ids.txt', dims: 96, metric: 'l2', M: 2, efConstruction: 10 },
        },
        quality: { minRecall: 1 },
      },
    );
    const outcome = await h.build(event);
    expect(outcome.status).toBe('FAILED');
    const reason = outcome.status === 'FAILED' ? outcome.reason : '';
    // The ladder up to its cap (400 items: ef 512 is the first at or past the count).
    expect(reason).toMatch(/ef 10 → 0\.\d+, ef 16 → .*ef 512 → /);
    expect(reason).toMatch(/raise M \(now 2, e\.g\. 4\) or efConstruction \(now 10, e\.g\. 20\)/);
  });

  // The release is 30k x 96 (ef 512 reaches 0.990 there; the HNSW build alone takes ~60 s on
  // the loaded 2-core machine): 10k x 96 is the same hard case (random, high-dimensional) in ~15 s.
  it('takes a 10k x 96 random release with defaults to READY (the kind that failed at ef 80)', async () => {
    const { vectors, ids } = randomRaw(10_000, 96, 96);
    h.store.putBytes(`incoming/${SPACE}/r1/v.f32`, vectors);
    const event = await h.publish(
      SPACE,
      'r1',
      { 'ids.txt': ids },
      { collections: { random: { vectors: 'v.f32', ids: 'ids.txt', dims: 96, metric: 'cosine' } } },
    );
    const outcome = await h.build(event);
    expect(outcome).toMatchObject({ status: 'READY' });
    const report = (await h.registry.getVersion(SPACE, 'v1'))?.collections?.random;
    expect(report?.efSource).toBe('tuned');
    expect(report?.recallAt10).toBeGreaterThanOrEqual(QUALITY_DEFAULTS.recallTarget);
    // The default ef (80) is not enough on such data; the gate found what is.
    const at80 = report?.recallCurve?.filter((p) => p.ef <= 80).at(-1);
    expect(at80?.recall).toBeLessThan(QUALITY_DEFAULTS.recallTarget);
    expect(report?.ef).toBeGreaterThan(80);
  }, 120_000);
});
