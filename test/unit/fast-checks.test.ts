/**
 * Every hand-written request check (core/shape.ts and its users) answers exactly what its zod schema
 * answers: for generated bodies, accepted (same object, same keys in the same order) or refused (the
 * same 400 with the same details, since a refused body goes to the schema).
 */
import { describe, expect, it } from 'vitest';
import { parseActivateBody, parseRollbackBody } from '../../functions/admin/bodies';
import { parseActivateBodyZod, parseRollbackBodyZod } from '../../functions/admin/body-schemas';
import { parseDeleteSpaceBody, parseEraseBody, parseRestoreBody } from '../../functions/core/erasure';
import {
  parseDeleteSpaceBodyZod,
  parseEraseBodyZod,
  parseRestoreBodyZod,
} from '../../functions/core/erasure-schemas';
import { BadRequestError } from '../../functions/core/errors';
import {
  parseBatchBody,
  parseBatchEntries,
  parseQueryBody,
  parseQueryRequest,
  parseSearchBody,
} from '../../functions/core/query';
import {
  batchBodySchema,
  batchEntrySchema,
  parseWith,
  queryBodySchema,
  searchBodySchema,
} from '../../functions/core/query-schemas';
import { mulberry32 } from '../../local/synthetic';

type Values = Record<string, unknown[]>;

const NOT_OBJECTS: unknown[] = [null, [], 'x', 3, true];

/** Bodies: each value of each field alone on top of `base`, then random mixes (with a misspelt field sometimes). */
function bodies(base: Record<string, unknown>, values: Values, seed: number, n = 300): unknown[] {
  const rnd = mulberry32(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)] as T;
  const out: unknown[] = [...NOT_OBJECTS, {}, { ...base }];
  for (const [key, vs] of Object.entries(values)) for (const v of vs) out.push({ ...base, [key]: v });
  for (let i = 0; i < n; i++) {
    const body: Record<string, unknown> = { ...base };
    for (const key of Object.keys(values)) if (rnd() < 0.4) body[key] = pick(values[key] as unknown[]);
    if (rnd() < 0.05) body.exlude = ['a'];
    if (rnd() < 0.05) delete body[pick(Object.keys(base).concat(['none']))];
    out.push(body);
  }
  return out;
}

async function outcome(f: () => unknown) {
  try {
    const v = (await f()) as Record<string, unknown>;
    return { ok: true, value: v, keys: Object.keys(v) };
  } catch (err) {
    expect(err).toBeInstanceOf(BadRequestError);
    const e = err as BadRequestError;
    return { ok: false, kind: e.kind, detail: e.message, extras: (e as { extras?: unknown }).extras };
  }
}

async function same(fast: (b: unknown) => unknown, zod: (b: unknown) => unknown, all: unknown[]) {
  let accepted = 0;
  for (const body of all) {
    const want = await outcome(() => zod(body));
    if (want.ok) accepted++;
    expect(await outcome(() => fast(body)), JSON.stringify(body)).toStrictEqual(want);
  }
  // The generated bodies exercise both sides.
  expect(accepted).toBeGreaterThan(5);
  expect(accepted).toBeLessThan(all.length);
}

const SEARCH: Values = {
  k: [
    1,
    10,
    1000,
    0,
    1001,
    2.5,
    -3,
    '10',
    null,
    undefined,
    Number.MAX_SAFE_INTEGER,
    Number.POSITIVE_INFINITY,
  ],
  ef: [1, 80, 10_000, 0, 10_001, 80.5, '80', null, undefined],
  target: ['users', 'Users', '', 'a'.repeat(64), 3, undefined],
  exclude: [[], ['a', 'b'], [''], [3], 'a', Array(10_001).fill('x'), ['a\u0000'], undefined],
  excludeSeen: [true, false, 0, null, undefined],
  filter: [{ genre: 'rock' }, { year: { gte: 1990 } }, { g: { eq: 1 } }, [], null, {}, undefined],
  includeMetadata: [true, false, 'true', 1, null, undefined],
  allowPartial: [true, false, 'false', undefined],
};
const VERSION: Values = {
  version: ['v2', 'x', 'v0', 2, undefined],
  consistency: ['eventual', 'strong', 'STRONG', '', null, undefined],
};

describe('the hand-written request checks answer exactly what the schemas answer', () => {
  it('search bodies (POST similar, and the query string once parsed)', async () => {
    await same(
      (b) => parseSearchBody(b),
      (b) => parseWith(searchBodySchema, b ?? {}, 'body'),
      [undefined, ...bodies({}, { ...SEARCH, ...VERSION }, 1)],
    );
  });

  it('query bodies', async () => {
    const vector: Values = { vector: [[0.5, -1], [], [1, 'x'], [1e39], 'x', [3.4e38, 1e-45], undefined] };
    const all = [
      ...bodies({ vector: [1, 2] }, { ...vector, ...SEARCH, ...VERSION }, 2),
      // Well-formed but for one unknown field: refused (strict), whichever path looks first.
      { vector: [1, 2], exlude: ['a'] },
      { vector: [1, 2], k: 3, ef: 80, extra: null },
    ];
    await same(parseQueryBody, (b) => parseWith(queryBodySchema, b, 'body'), all);
    // The route's split form: the schema's answer as { vector, params } (params: the rest, same order).
    await same(
      async (b) => {
        const { vector: v, params } = await parseQueryRequest(b);
        return { vector: v, ...params };
      },
      (b) => parseWith(queryBodySchema, b, 'body'),
      all,
    );
    for (const b of all) {
      const want = await outcome(() => parseWith(queryBodySchema, b, 'body'));
      if (!want.ok) continue;
      const { vector: _v, ...rest } = want.value as Record<string, unknown>;
      const got = await parseQueryRequest(b);
      expect(Object.keys(got.params), JSON.stringify(b)).toStrictEqual(Object.keys(rest));
      expect(got.params).not.toHaveProperty('vector');
    }
  });

  it('batch bodies', async () => {
    const queries: Values = { queries: [[{}], [], Array(101).fill({}), 'x', [1, 2], undefined] };
    await same(
      parseBatchBody,
      (b) => parseWith(batchBodySchema, b, 'body'),
      bodies({ queries: [{}] }, { ...queries, ...VERSION }, 3),
    );
  });

  it('batch entries, each its own outcome', async () => {
    const entry: Values = {
      collection: ['c', 'C', '', undefined],
      item: ['a', '', 3, undefined],
      vector: [[1, 2], [], [1e39], undefined],
      version: ['v1'],
    };
    const all = bodies({ collection: 'c', item: 'a' }, { ...entry, ...SEARCH }, 4);
    await same(
      async (b) => {
        const [r] = await parseBatchEntries([b]);
        if (r && 'error' in r) throw r.error;
        return r?.entry;
      },
      (b) => parseWith(batchEntrySchema, b, 'query'),
      all,
    );
  });

  it('erase, restore and delete-space bodies', async () => {
    const reasonBy: Values = {
      reason: ['why', '', 'x'.repeat(1001), 3, undefined],
      by: ['ops', '', 'x'.repeat(201), null, undefined],
    };
    const ids: Values = { ids: [['a'], [], [3], Array(501).fill('a'), 'a', undefined] };
    await same(parseEraseBody, parseEraseBodyZod, bodies({}, { ...reasonBy, ...ids }, 5));
    await same(parseRestoreBody, parseRestoreBodyZod, bodies({}, { ...reasonBy, ...ids }, 6));
    const del: Values = {
      expectedGeneration: [0, 3, -1, 1.5, '3', 1e20, undefined],
      includeInputs: [true, false, 'yes', undefined],
      by: reasonBy.by as unknown[],
    };
    await same(parseDeleteSpaceBody, parseDeleteSpaceBodyZod, bodies({ expectedGeneration: 1 }, del, 7));
  });

  it('activate and rollback bodies (fields they do not name are dropped, as the schemas drop them)', async () => {
    const common: Values = {
      expectedGeneration: [0, 3, -1, 1.5, '3', 1e20, undefined],
      force: [true, false, 'yes', null, undefined],
      by: ['api', 'cli', 'page', 'build', 'robot', undefined],
      note: ['extra'],
    };
    const version: Values = { version: ['v1', 'anything', 1, null, undefined] };
    await same(
      parseActivateBody,
      parseActivateBodyZod,
      bodies({ version: 'v1', expectedGeneration: 0 }, { ...common, ...version }, 8),
    );
    await same(parseRollbackBody, parseRollbackBodyZod, bodies({ expectedGeneration: 0 }, common, 9));
  });
});
