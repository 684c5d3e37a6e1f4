import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hnswEngine, readIndexVectors } from '../../functions/adapters/hnsw-index';
import { parseSearchQuery } from '../../functions/common/params';
import { BadRequestError } from '../../functions/core/errors';
import type { BlobStore, IndexEngine, VectorIndex } from '../../functions/core/ports';
import { compileFilter, type Filter, filterProblems, parseSearchBody } from '../../functions/core/query';
import { batchEntrySchema, parseWith, queryBodySchema } from '../../functions/core/query-schemas';
import type { Metric } from '../../functions/core/release';
import { bruteForce, exactOverLabels, normalise, shortestFloat32 } from '../../functions/core/search';
import { FilterIndex } from '../../functions/query/filter-index';
import { parseQueryBody } from '../../functions/query/routes';
import { exactIsCheaper } from '../../functions/query/search-plan';
import { QueryService } from '../../functions/query/service';
import { type LoadedCollection, SnapshotCache } from '../../functions/snapshot/cache';
import { clusteredVectors, mulberry32 } from '../../local/synthetic';

const badRequest = async (fn: () => unknown): Promise<string> => {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(BadRequestError);
    return (err as Error).message;
  }
  throw new Error('expected a BadRequestError');
};

describe('search parameter validation', () => {
  it('the query body’s fast path answers exactly what the schema answers, accepted or refused', async () => {
    const values: Record<string, unknown[]> = {
      k: [1, 10, 1000, 0, 1001, 2.5, -3, '10', null, true, Number.MAX_SAFE_INTEGER],
      ef: [1, 80, 10_000, 0, 10_001, 80.5, '80', null],
      includeMetadata: [true, false, 'true', 1, null],
      excludeSeen: [true, false, 0, null],
      allowPartial: [true, false, 'false'],
      consistency: ['eventual', 'strong', 'STRONG', '', null],
      exclude: [[], ['a']],
      version: ['v2', 'x'],
      exlude: [['a']],
    };
    const rnd = mulberry32(11);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)] as T;
    const vector = [0.25, -1, 3e38];
    const bodies: Record<string, unknown>[] = [{ vector }];
    for (const [key, vs] of Object.entries(values)) for (const v of vs) bodies.push({ vector, [key]: v });
    for (let i = 0; i < 400; i++) {
      const body: Record<string, unknown> = { vector };
      for (const key of Object.keys(values)) if (rnd() < 0.35) body[key] = pick(values[key] as unknown[]);
      bodies.push(body);
    }
    const outcome = async (f: () => unknown) => {
      try {
        const v = (await f()) as Record<string, unknown>;
        return { ok: true, value: v, keys: Object.keys(v) };
      } catch (err) {
        return { ok: false, kind: (err as BadRequestError).kind, detail: (err as Error).message };
      }
    };
    for (const body of bodies) {
      expect(await outcome(() => parseQueryBody(body)), JSON.stringify(body)).toStrictEqual(
        await outcome(() => parseWith(queryBodySchema, body, 'body')),
      );
    }
  });

  it('names the field and the operator of a bad filter', async () => {
    expect(await badRequest(() => parseSearchBody({ filter: { genre: { eq: 'rock' } } }))).toMatch(
      /filter\.genre\.eq: unknown operator "eq"/,
    );
    expect(await badRequest(() => parseSearchBody({ filter: { year: { gte: 'x' } } }))).toMatch(
      /filter\.year\.gte: must be a finite number/,
    );
    expect(await badRequest(() => parseSearchBody({ filter: { genre: { in: [] } } }))).toMatch(
      /filter\.genre\.in/,
    );
    expect(await badRequest(() => parseSearchBody({ filter: { genre: { in: [{}] } } }))).toMatch(
      /filter\.genre\.in\[0\]/,
    );
    expect(await badRequest(() => parseSearchBody({ filter: { genre: ['rock'] } }))).toMatch(
      /filter\.genre: a condition/,
    );
    expect(await badRequest(() => parseSearchBody({ filter: [] }))).toMatch(/filter: must be an object/);
    expect(
      filterProblems({ genre: 'rock', year: { gte: 1990, lte: 1999 }, tag: { in: ['a', null] } }),
    ).toEqual([]);
  });

  it('refuses a misspelt field instead of ignoring it', async () => {
    expect(await badRequest(() => parseSearchBody({ exlude: ['a'] }))).toMatch(/unknown field "exlude"/);
    expect(await badRequest(() => parseSearchQuery({ kk: '3' }))).toMatch(/unknown query parameter "kk"/);
  });

  it('refuses non-finite, non-numeric and empty vectors, naming the index', async () => {
    const parse = (vector: unknown) => parseWith(queryBodySchema, { vector }, 'body');
    expect(await badRequest(() => parse([1, Number.POSITIVE_INFINITY]))).toMatch(
      /vector\[1\]: must be a finite/,
    );
    expect(await badRequest(() => parse([1, 'x']))).toMatch(/vector\[1\]: must be a finite number/);
    // Finite doubles beyond float32 are refused too: they would be Infinity once stored or compared.
    expect(await badRequest(() => parse([0, 0, 0, 1e39]))).toMatch(/^vector\[3\] is not a finite float32/);
    expect(await badRequest(() => parse([-1e300]))).toMatch(/^vector\[0\] is not a finite float32/);
    expect(parse([3.4e38, 1e-45, -3.4e38, 0]).vector).toHaveLength(4);
    expect(await badRequest(() => parse([]))).toMatch(/vector is empty/);
    expect(await badRequest(() => parse('1,2'))).toMatch(/vector must be an array/);
  });

  it('wants exactly one of item and vector in a batch entry', () => {
    expect(batchEntrySchema.safeParse({ collection: 'c', item: 'a' }).success).toBe(true);
    expect(batchEntrySchema.safeParse({ collection: 'c' }).success).toBe(false);
    expect(batchEntrySchema.safeParse({ collection: 'c', item: 'a', vector: [1] }).success).toBe(false);
    expect(batchEntrySchema.safeParse({ collection: 'c', item: 'a', version: 'v1' }).success).toBe(false);
  });

  it('refuses an unknown filter field, listing the fields the collection has', async () => {
    expect(await badRequest(() => compileFilter({ mood: 'sad' }, ['genre', 'year']))).toMatch(
      /unknown field "mood".*"genre", "year"/,
    );
  });
});

describe('filter postings', () => {
  const rand = mulberry32(3);
  const n = 2000;
  const meta = Array.from({ length: n }, (_, i) =>
    i % 50 === 0
      ? null
      : {
          genre: ['rock', 'jazz', 'pop', 'folk'][i % 4],
          year: 1970 + Math.floor(rand() * 50),
          tags: i % 3 === 0 ? ['a', 'b'] : ['b'],
          flag: i % 7 === 0,
        },
  );
  const index = new FilterIndex(meta, n);
  const cases: Filter[] = [
    { genre: 'rock' },
    { genre: { in: ['rock', 'jazz', 'nope'] } },
    { year: { gte: 1990, lte: 1994 } },
    { year: { lte: 1971 } },
    { tags: 'a' },
    { tags: { in: ['a', 'b'] } },
    { flag: true },
    { genre: 'pop', year: { gte: 2000 } },
    { genre: 'metal' },
  ];

  it.each(cases)('gives candidates that contain every item the predicate allows: %j', (filter) => {
    const predicate = compileFilter(filter, ['genre', 'year', 'tags', 'flag']) as (m: unknown) => boolean;
    const expected = meta.flatMap((m, i) => (predicate(m) ? [i] : []));
    const c = index.candidates(filter);
    const labels = [...c.labels()];
    expect(new Set(labels).size).toBe(labels.length);
    for (const l of expected) expect(labels).toContain(l);
    if (Object.keys(filter).length === 1) {
      // Exact for one condition, except that "in" over a list-valued field counts a label once per value.
      expect(c.count).toBeGreaterThanOrEqual(expected.length);
      if (!('tags' in filter)) expect(c.count).toBe(expected.length);
      expect(labels.length).toBe(expected.length);
    }
  });
});

describe('exact search and the exact/HNSW crossover', () => {
  it('scans chosen labels exactly as brute force does', () => {
    const dims = 8;
    const { vectors } = clusteredVectors(500, dims, 5, 11);
    const ids = Array.from({ length: 500 }, (_, i) => `i${i}`);
    const q = Array.from(vectors.subarray(0, dims));
    for (const metric of ['cosine', 'ip', 'l2'] as Metric[]) {
      const labels = Int32Array.from({ length: 500 }, (_, i) => i).filter((i) => i % 3 === 0);
      const got = exactOverLabels(metric, dims, vectors, labels, metric === 'cosine' ? normalise(q) : q, 10);
      const want = bruteForce(metric, dims, vectors, ids, q, 10, (r) => r % 3 === 0);
      expect(got.map((h) => `i${h.label}`)).toEqual(want.map((w) => w.id));
    }
  });

  it('scans when few items are allowed and uses HNSW when many are', () => {
    expect(exactIsCheaper(100, 1_000_000, 64, 80)).toBe(true);
    expect(exactIsCheaper(5_000, 1_000_000, 64, 80)).toBe(true);
    expect(exactIsCheaper(200_000, 1_000_000, 64, 80)).toBe(false);
    expect(exactIsCheaper(50_000, 100_000, 128, 80)).toBe(false);
    expect(exactIsCheaper(0, 10, 8, 10)).toBe(true);
  });

  it('rounds vector values to the shortest decimal of the same float32', async () => {
    expect(shortestFloat32(Math.fround(0.1))).toBe(0.1);
    expect(shortestFloat32(Math.fround(-0.123456789))).toBe(-0.12345679);
    expect(shortestFloat32(1)).toBe(1);
    for (const x of [Math.PI, 1e-8, -3.4e38]) expect(Math.fround(shortestFloat32(x))).toBe(Math.fround(x));
  });
});

describe('search over a real index', () => {
  const dims = 16;
  const n = 3000;
  const data = clusteredVectors(n, dims, 12, 5);
  const ids = Array.from({ length: n }, (_, i) => `t${i}`);
  const meta = Array.from({ length: n }, (_, i) => ({ genre: i % 100 === 0 ? 'rare' : 'common', n: i }));
  let dir: string;
  let collection: LoadedCollection;
  let service: QueryService;
  const normed = new Float32Array(n * dims);
  for (let r = 0; r < n; r++)
    normed.set(normalise(data.vectors.subarray(r * dims, (r + 1) * dims)), r * dims);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vicinity-query-unit-'));
    const b = hnswEngine.create('cosine', dims, n, 16, 100);
    for (let r = 0; r < n; r++) b.add(Array.from(data.vectors.subarray(r * dims, (r + 1) * dims)), r);
    const path = join(dir, 'index.hnsw');
    await b.write(path);
    const index: VectorIndex = await hnswEngine.load(path, 'cosine', dims, n, 16, 10);
    const seg = { index, ids, meta, indexPath: path };
    const lookup = new Map(ids.map((id, label) => [id, { segment: 0, label }]));
    collection = {
      space: 's',
      version: 'v1',
      name: 'tracks',
      manifest: {
        metric: 'cosine',
        dims,
        count: n,
        M: 16,
        efConstruction: 100,
        ef: 10,
        metadataFields: ['genre', 'n'],
        segments: [],
      },
      segments: [seg],
      bytes: 0,
      memoryBytes: () => 0,
      lookup: (id) => lookup.get(id),
    };
    const unused = () => Promise.reject(new Error('unused'));
    const store: BlobStore = {
      bucket: 'none',
      head: unused,
      getText: unused,
      getStream: unused,
      putText: unused,
      putFile: unused,
      list: unused,
      deleteKeys: unused,
    };
    const cache = new SnapshotCache(store, hnswEngine as IndexEngine, {
      cacheDir: dir,
      memoryBudgetBytes: 1 << 30,
      log: { debug() {}, info() {}, warn() {}, error() {} },
    });
    service = new QueryService({
      registry: {} as never,
      cache,
      pointerTtlMs: 1000,
      log: { debug() {}, info() {}, warn() {}, error() {} },
    });
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  const exact = (q: number[], k: number, allow?: (r: number) => boolean) =>
    bruteForce('cosine', dims, normed, ids, q, k, allow).map((x) => x.id);
  const params = { k: 10, exclude: [], excludeSeen: false, includeMetadata: false };

  it('reads the vectors out of the index file as hnswlib stored them (unit length for cosine)', async () => {
    const vectors = await readIndexVectors(join(dir, 'index.hnsw'), dims, n);
    for (const label of [0, 1, 1234, n - 1]) {
      expect(Array.from(vectors.subarray(label * dims, (label + 1) * dims))).toEqual(
        collection.segments[0]?.index.getVector(label).map(Math.fround),
      );
    }
  });

  it('returns k results when a very selective filter allows only a few items, exactly the nearest of them', async () => {
    const q = Array.from(data.vectors.subarray(7 * dims, 8 * dims));
    const got = await service.search(collection, q, { ...params, filter: { genre: 'rare' } }, new Set());
    expect(got.map((r) => r.id)).toEqual(exact(q, 10, (r) => r % 100 === 0));
  });

  it('returns every qualifying item when fewer than k qualify', async () => {
    const q = Array.from(data.vectors.subarray(0, dims));
    const got = await service.search(
      collection,
      q,
      { ...params, k: 50, filter: { n: { lte: 6 } } },
      new Set(),
    );
    expect(got.map((r) => r.id).sort()).toEqual(['t0', 't1', 't2', 't3', 't4', 't5', 't6']);
  });

  it('still returns k results when the nearest hundreds are excluded', async () => {
    const q = Array.from(data.vectors.subarray(42 * dims, 43 * dims));
    const nearest = exact(q, 600);
    const exclude = new Set(nearest.slice(0, 590));
    const got = await service.search(collection, q, { ...params, ef: 10 }, exclude);
    expect(got).toHaveLength(10);
    expect(got.some((r) => exclude.has(r.id))).toBe(false);
    expect(got.map((r) => r.id)).toEqual(exact(q, 10, (r) => !exclude.has(`t${r}`)));
  });

  it('returns what is left when exclusions leave fewer than k items', async () => {
    const q = Array.from(data.vectors.subarray(0, dims));
    const exclude = new Set(ids.slice(3));
    const got = await service.search(collection, q, params, exclude);
    expect(got.map((r) => r.id).sort()).toEqual(['t0', 't1', 't2']);
  });

  it('answers a broad filter through HNSW with only allowed items, k of them', async () => {
    const q = Array.from(data.vectors.subarray(99 * dims, 100 * dims));
    const got = await service.search(
      collection,
      q,
      { ...params, ef: 200, filter: { genre: 'common' } },
      new Set(),
    );
    expect(got).toHaveLength(10);
    expect(got.every((r) => Number(r.id.slice(1)) % 100 !== 0)).toBe(true);
  });
});
