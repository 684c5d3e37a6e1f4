import { describe, expect, it } from 'vitest';
import type { HttpEvent } from '../../functions/common/http';
import { json, parseJsonBody } from '../../functions/common/http';
import { parseSearchQuery } from '../../functions/common/params';
import { httpStatus, STATUS_OF_KIND, toProblem } from '../../functions/common/problem';
import { createRouter, MethodNotAllowedError } from '../../functions/common/router';
import {
  BadRequestError,
  ConflictError,
  NotFoundError,
  ReleaseInvalidError,
  SnapshotUnavailableError,
  UnprocessableError,
  UnsupportedMediaTypeError,
} from '../../functions/core/errors';
import { assertItemId, assertName, formatVersion, parseVersion } from '../../functions/core/names';
import {
  assertActivatable,
  emptyPointer,
  historyEntryFor,
  mayAutoActivate,
  nextPointer,
} from '../../functions/core/pointer';
import { compileFilter, parseSearchBody } from '../../functions/core/query';
import { parseRelease, parseReleaseKey } from '../../functions/core/release';
import {
  bruteForce,
  compareNeighbours,
  exactOverLabels,
  mergeNeighbours,
  overlapAt,
  scoreOf,
  TopK,
} from '../../functions/core/search';
import type { VersionRecord } from '../../functions/core/version';
import { mulberry32 } from '../../local/synthetic';

describe('names', () => {
  it('accepts contract names and refuses others with a 400', () => {
    expect(assertName('space', 'music')).toBe('music');
    expect(assertName('space', 'a'.repeat(63))).toHaveLength(63);
    for (const bad of ['', 'Music', '-x', 'a'.repeat(64), 'a/b', 'é']) {
      expect(() => assertName('space', bad)).toThrow(BadRequestError);
    }
  });

  it('counts id length in characters and refuses control characters', () => {
    expect(assertItemId('🎵'.repeat(256))).toHaveLength(512);
    expect(() => assertItemId('x'.repeat(257))).toThrow(/257 characters/);
    expect(() => assertItemId('a\nb')).toThrow(/control/);
    expect(() => assertItemId('')).toThrow(/empty/);
    expect(assertItemId('a/b..%2F')).toBe('a/b..%2F');
  });

  it('orders version ids by their number, without padding', () => {
    expect(formatVersion(12)).toBe('v12');
    expect(parseVersion('v12')).toBe(12);
    expect(parseVersion('v012')).toBeUndefined();
    expect(parseVersion('v0')).toBeUndefined();
  });
});

describe('release.json', () => {
  it('fills in defaults and detects formats from extensions', async () => {
    const r = await parseRelease(
      JSON.stringify({
        collections: {
          users: { file: 'users.jsonl.gz', metric: 'cosine' },
          tracks: { files: ['p0.parquet', '_SUCCESS', 'p0.parquet.crc'], metric: 'ip', M: 32 },
          items: { vectors: 'i.f32', ids: 'i.ids', dims: 4, metric: 'l2' },
        },
      }),
    );
    expect(r.activate).toBe(true);
    const [users, tracks, items] = r.collections;
    expect(users).toMatchObject({ format: 'jsonl.gz', M: 16, efConstruction: 200, ef: 80 });
    expect(tracks).toMatchObject({ format: 'parquet', files: ['p0.parquet'], M: 32 });
    expect(items).toMatchObject({ format: 'raw', files: ['i.f32', 'i.ids'], dims: 4 });
  });

  it.each([
    ['not JSON', '{', /not valid JSON/],
    ['no collections', '{}', /collections/],
    ['an unknown metric', '{"collections":{"a":{"file":"a.jsonl","metric":"hamming"}}}', /metric/],
    [
      'a path escaping the folder',
      '{"collections":{"a":{"file":"../a.jsonl","metric":"l2"}}}',
      /inside the release/,
    ],
    ['raw without dims', '{"collections":{"a":{"vectors":"a.f32","ids":"a.ids","metric":"l2"}}}', /dims/],
    ['an unknown format', '{"collections":{"a":{"file":"a.csv","metric":"l2"}}}', /cannot tell the format/],
  ])('refuses %s, naming release.json', async (_what, text, message) => {
    try {
      await parseRelease(text);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ReleaseInvalidError);
      expect((err as Error).message).toMatch(/^release\.json/);
      expect((err as Error).message).toMatch(message);
    }
  });

  it('recognises release keys and nothing else', () => {
    expect(parseReleaseKey('incoming/music/r-1/release.json')).toMatchObject({
      space: 'music',
      release: 'r-1',
    });
    expect(parseReleaseKey('incoming/music/r-1/users.jsonl')).toBeUndefined();
    expect(parseReleaseKey('incoming/Music/r/release.json')).toBeUndefined();
  });
});

describe('pointer rules', () => {
  const rec = (
    version: string,
    status: VersionRecord['status'],
    dims = 8,
    metric: 'cosine' | 'l2' = 'cosine',
  ) =>
    ({
      space: 's',
      version,
      number: parseVersion(version)!,
      status,
      release: 'r',
      releaseKey: 'k',
      sequencer: 'q',
      createdAt: '',
      collections: { a: { count: 1, dims, metric, M: 16, efConstruction: 200, ef: 80, segments: 1 } },
    }) satisfies VersionRecord;

  it('increments the generation and raises the high-water mark on every switch', () => {
    const p1 = nextPointer(emptyPointer('s'), 'v3', 'build', new Date(0));
    expect(p1).toMatchObject({ version: 'v3', generation: 1, previous: null, highWater: 3 });
    const p2 = nextPointer(p1, 'v1', 'api', new Date(0));
    expect(p2).toMatchObject({ version: 'v1', generation: 2, previous: 'v3', highWater: 3 });
    expect(historyEntryFor(p2)).toMatchObject({ generation: 2, from: 'v3', to: 'v1', by: 'api' });
  });

  it('lets automatic activation only move above the high-water mark', () => {
    const p = nextPointer(emptyPointer('s'), 'v3', 'build', new Date());
    expect(mayAutoActivate(p, 'v2')).toBe(false);
    expect(mayAutoActivate(p, 'v3')).toBe(false);
    expect(mayAutoActivate(p, 'v4')).toBe(true);
  });

  it('refuses to activate a FAILED, BUILDING or DELETED version', () => {
    for (const s of ['FAILED', 'BUILDING', 'DELETED'] as const) {
      expect(() => assertActivatable(rec('v2', s), rec('v1', 'READY'), false)).toThrow(UnprocessableError);
    }
  });

  it('refuses a version whose dims or metric differ from the active one unless forced', () => {
    expect(() => assertActivatable(rec('v2', 'READY', 16), rec('v1', 'READY'), false)).toThrow(
      /16 dims, active has 8/,
    );
    expect(() => assertActivatable(rec('v2', 'READY', 8, 'l2'), rec('v1', 'READY'), false)).toThrow(
      /metric l2/,
    );
    expect(() => assertActivatable(rec('v2', 'READY', 16), rec('v1', 'READY'), true)).not.toThrow();
  });
});

describe('search parameters', () => {
  it('parses query strings strictly', async () => {
    expect(await parseSearchQuery({})).toMatchObject({
      k: 10,
      includeMetadata: true,
      exclude: [],
      consistency: 'eventual',
    });
    expect(await parseSearchQuery({ k: '5', exclude: 'a,b', excludeSeen: 'true' })).toMatchObject({
      k: 5,
      exclude: ['a', 'b'],
      excludeSeen: true,
    });
    for (const q of [
      { k: '0' },
      { k: '1001' },
      { k: 'ten' },
      { k: '1.5' },
      { ef: '0' },
      { includeMetadata: 'yes' },
    ]) {
      await expect(parseSearchQuery(q)).rejects.toThrow(BadRequestError);
    }
    await expect(parseSearchQuery({ exclude: Array(101).fill('x').join(',') })).rejects.toThrow(
      /at most 100/,
    );
    await expect(parseSearchQuery({ filter: '{bad' })).rejects.toThrow(/filter/);
  });

  it('caps exclude lists in bodies at 10,000 ids', async () => {
    expect((await parseSearchBody({ exclude: Array(10_000).fill('x') })).exclude).toHaveLength(10_000);
    await expect(parseSearchBody({ exclude: Array(10_001).fill('x') })).rejects.toThrow(BadRequestError);
  });

  it('compiles filters and refuses fields the collection never had', () => {
    const f = compileFilter({ genre: { in: ['rock', 'jazz'] }, year: { gte: 1990, lte: 1999 } }, [
      'genre',
      'year',
    ]);
    expect(f?.({ genre: 'rock', year: 1995 })).toBe(true);
    expect(f?.({ genre: 'pop', year: 1995 })).toBe(false);
    expect(f?.({ genre: 'jazz', year: 2001 })).toBe(false);
    expect(f?.(null)).toBe(false);
    expect(compileFilter({ tags: 'rock' }, ['tags'])?.({ tags: ['indie', 'rock'] })).toBe(true);
    expect(() => compileFilter({ mood: 'sad' }, ['genre'])).toThrow(/unknown field "mood"/);
  });
});

describe('scores and merging', () => {
  it('turns distances into scores as the contract says', () => {
    expect(scoreOf('cosine', 0.25)).toBe(0.75);
    expect(scoreOf('ip', -0.5)).toBe(1.5);
    expect(scoreOf('l2', 2)).toBe(-2);
  });

  it('merges segment results best first, ties by id', () => {
    const merged = mergeNeighbours(
      [
        [
          { id: 'b', distance: 0.1 },
          { id: 'd', distance: 0.3 },
        ],
        [
          { id: 'a', distance: 0.1 },
          { id: 'c', distance: 0.2 },
        ],
      ],
      3,
    );
    expect(merged.map((m) => m.id)).toEqual(['a', 'b', 'c']);
  });

  it('orders a single segment list by distance then id too, whatever order it came in', () => {
    // One list (one segment) in distance order with its ties in label order, not id order: sorted still.
    const one = [
      { id: 'z', distance: 0.1 },
      { id: 'a', distance: 0.1 },
      { id: 'm', distance: 0.2 },
    ];
    expect(mergeNeighbours([one], 2).map((m) => m.id)).toEqual(['a', 'z']);
    // Random single lists, mostly already in order, some not, many ties: the same as a full sort.
    const rnd = mulberry32(11);
    for (let t = 0; t < 500; t++) {
      const n = Math.floor(rnd() * 12);
      const list = Array.from({ length: n }, () => ({
        id: String.fromCharCode(97 + Math.floor(rnd() * 6)),
        distance: Math.floor(rnd() * 4) / 4,
      }));
      if (rnd() < 0.7) list.sort((a, b) => a.distance - b.distance);
      const k = 1 + Math.floor(rnd() * 12);
      const want = [...list].sort(compareNeighbours).slice(0, k);
      const got = mergeNeighbours([list], k);
      expect(got).toEqual(want);
      expect(got).not.toBe(list);
    }
  });

  it('keeps the k best in a bounded heap whatever the ties, the smaller id winning, fast', () => {
    const n = 50_000;
    const dims = 4;
    const vectors = new Float32Array(n * dims); // all zero: every distance ties
    const ids = Array.from({ length: n }, (_, i) => String(n - i));
    const labels = Int32Array.from({ length: n }, (_, i) => i);
    const t0 = performance.now();
    const got = exactOverLabels('ip', dims, vectors, labels, [0, 0, 0, 0], 18, (l) => l !== 7, ids);
    expect(performance.now() - t0).toBeLessThan(500);
    const want = [...ids.filter((_, i) => i !== 7)].sort().slice(0, 18);
    expect(got.map((h) => ids[h.label])).toEqual(want);
    expect(got.every((h) => h.distance === 1)).toBe(true);
    // The same answer in any row order: ties never depend on where an item sits.
    const reversed = Int32Array.from(labels).reverse();
    const again = exactOverLabels('ip', dims, vectors, reversed, [0, 0, 0, 0], 18, (l) => l !== 7, ids);
    expect(again.map((h) => ids[h.label])).toEqual(want);
    const heap = new TopK(3, ['c', 'a', 'b', 'd']);
    for (const [label, d] of [
      [0, 1],
      [3, 0.5],
      [1, 1],
      [2, 1],
    ] as const)
      heap.offer(label, d);
    expect(heap.sorted().map((h) => h.label)).toEqual([3, 1, 2]);
  });

  it('finds exact neighbours by brute force', () => {
    const v = new Float32Array([0, 0, 1, 0, 3, 0, 0, 2]);
    expect(bruteForce('l2', 2, v, ['o', 'x', 'xx', 'y'], [0.9, 0], 2).map((n) => n.id)).toEqual(['x', 'o']);
    expect(overlapAt(['a', 'b', 'c'], ['c', 'd', 'a'], 3)).toBeCloseTo(2 / 3);
  });
});

describe('http mapping', () => {
  const event = (
    method: string,
    rawPath: string,
    body?: string,
    query?: Record<string, string>,
    type = 'application/json',
  ) =>
    ({
      rawPath,
      body,
      headers: body === undefined ? {} : { 'content-type': type },
      ...(query ? { queryStringParameters: query } : {}),
      requestContext: { http: { method }, requestId: 'r1' },
    }) as unknown as HttpEvent;

  it('matches canonical paths only: a trailing or doubled slash is a 404', async () => {
    const route = createRouter([
      { method: 'GET', path: '/v1/spaces', handler: async () => json(200, {}) },
      { method: 'GET', path: '/v1/items/{id}', handler: async () => json(200, {}) },
    ]);
    expect((await route(event('GET', '/v1/spaces'))).statusCode).toBe(200);
    for (const p of [
      '/v1/spaces/',
      '//v1//spaces',
      '/v1//spaces',
      '/v1/items/',
      '/v1/items//',
      'v1/spaces',
    ]) {
      await expect(route(event('GET', p)), p).rejects.toBeInstanceOf(NotFoundError);
    }
  });

  it('refuses a query parameter the route does not take, on every route', async () => {
    const route = createRouter([
      { method: 'GET', path: '/v1/a', handler: async () => json(200, {}) },
      { method: 'GET', path: '/v1/b', query: ['limit'], handler: async () => json(200, {}) },
    ]);
    await expect(route(event('GET', '/v1/a', undefined, { x: '1' }))).rejects.toThrow(
      /unknown query parameter "x"; this route takes none/,
    );
    expect((await route(event('GET', '/v1/b', undefined, { limit: '1' }))).statusCode).toBe(200);
    await expect(route(event('GET', '/v1/b', undefined, { limt: '1' }))).rejects.toThrow(/"limt"/);
  });

  it('refuses a body that is not application/json with 415', () => {
    const e = (type: string) => event('POST', '/', '{}', undefined, type);
    expect(parseJsonBody(e('application/json'))).toEqual({});
    expect(parseJsonBody(e('application/json; charset=utf-8'))).toEqual({});
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', '', 'application/jsonx']) {
      expect(() => parseJsonBody(e(type)), type).toThrow(UnsupportedMediaTypeError);
    }
    expect(httpStatus(new UnsupportedMediaTypeError('x'))).toBe(415);
  });

  it('keeps an id with %2F as one path segment', async () => {
    const route = createRouter([
      { method: 'GET', path: '/v1/items/{id}', handler: async ({ params }) => json(200, { id: params.id }) },
    ]);
    const r = await route(event('GET', '/v1/items/a%2Fb%20c'));
    expect(JSON.parse(r.body as string)).toEqual({ id: 'a/b c' });
  });

  it('maps domain errors to problem+json and hides internal ones', () => {
    const p = toProblem(new BadRequestError('k is bad'), 'r1');
    expect(p.statusCode).toBe(400);
    expect(p.headers['content-type']).toBe('application/problem+json');
    expect(JSON.parse(p.body as string)).toMatchObject({ status: 400, detail: 'k is bad', instance: 'r1' });
    const internal = toProblem(new Error('secret table name'));
    expect(internal.statusCode).toBe(500);
    expect(internal.body).not.toContain('secret');
  });

  it('gives every error kind its status from the one table, Retry-After for unavailable, pointer on conflict', () => {
    expect(STATUS_OF_KIND).toEqual({
      'bad-request': 400,
      forbidden: 403,
      'not-found': 404,
      'method-not-allowed': 405,
      conflict: 409,
      'payload-too-large': 413,
      'unsupported-media-type': 415,
      unprocessable: 422,
      internal: 500,
      unavailable: 503,
    });
    const busy = toProblem(new SnapshotUnavailableError('sha256 mismatch', { cause: new Error('x') }));
    expect(busy.statusCode).toBe(503);
    expect(busy.headers['retry-after']).toBe('5');
    const lost = toProblem(new ConflictError('moved', { extras: { pointer: { generation: 3 } } }));
    expect(lost.statusCode).toBe(409);
    expect(JSON.parse(lost.body as string)).toMatchObject({ status: 409, pointer: { generation: 3 } });
    expect(httpStatus(new UnprocessableError('not READY'))).toBe(422);
  });

  it('answers 405 with Allow for a method a path does not serve, 204 for OPTIONS', async () => {
    const route = createRouter([{ method: 'GET', path: '/v1/x', handler: async () => json(200, {}) }]);
    await expect(route(event('POST', '/v1/x'))).rejects.toBeInstanceOf(MethodNotAllowedError);
    expect(toProblem(await route(event('POST', '/v1/x')).catch((e) => e)).headers.allow).toBe('GET, OPTIONS');
    expect((await route(event('OPTIONS', '/v1/x'))).statusCode).toBe(204);
  });

  it('refuses bodies over 1 MB with 413 and non-JSON with 400', () => {
    expect(() => parseJsonBody(event('POST', '/', 'x'.repeat(1024 * 1024 + 1)))).toThrow(/limit/);
    expect(() => parseJsonBody(event('POST', '/', '{'))).toThrow(/not valid JSON/);
  });
});
