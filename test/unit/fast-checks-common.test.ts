/**
 * The common well-formed requests are answered by the hand-written checks alone: here every zod
 * schema module fails to load, so a request that reached one would be refused.
 */
import { describe, expect, it, vi } from 'vitest';
import { parseActivateBody, parseRollbackBody } from '../../functions/admin/bodies';
import { parseSearchQuery } from '../../functions/common/params';
import { parseDeleteSpaceBody, parseEraseBody, parseRestoreBody } from '../../functions/core/erasure';
import {
  parseBatchBody,
  parseBatchEntries,
  parseQueryBody,
  parseSearchBody,
} from '../../functions/core/query';

// (vi.mock is hoisted above every declaration: each factory says it itself.)
vi.mock('../../functions/core/query-schemas', () => {
  throw new Error('a zod schema module was loaded');
});
vi.mock('../../functions/core/erasure-schemas', () => {
  throw new Error('a zod schema module was loaded');
});
vi.mock('../../functions/admin/body-schemas', () => {
  throw new Error('a zod schema module was loaded');
});

describe('common requests never load zod', () => {
  it('search, query and batch requests', async () => {
    expect(await parseSearchBody(undefined)).toMatchObject({ k: 10, consistency: 'eventual' });
    expect(
      await parseSearchBody({ k: 5, exclude: ['a'], filter: { g: { in: ['x'] } }, target: 'users' }),
    ).toMatchObject({ k: 5, exclude: ['a'] });
    expect(
      await parseSearchQuery({ k: '5', exclude: 'a,b', version: 'v3', consistency: 'strong' }),
    ).toMatchObject({ k: 5, version: 'v3' });
    expect((await parseQueryBody({ vector: [0.5, -1], k: 3, filter: { y: { gte: 1 } } })).k).toBe(3);
    const b = await parseBatchBody({ queries: [{ collection: 'c', item: 'a' }], version: 'v2' });
    const [e] = await parseBatchEntries([...b.queries, { collection: 'c', vector: [1, 2], k: 4 }]);
    expect(e).toEqual({ entry: expect.objectContaining({ collection: 'c', item: 'a', k: 10 }) });
  });

  it('a malformed request does need the schema (the mock is in force)', async () => {
    await expect(parseSearchBody({ k: 0 })).rejects.toThrow(/error when mock/);
  });

  it('erasure and admin bodies', async () => {
    expect(await parseEraseBody({ reason: 'gdpr', by: 'ops', ids: ['b'] })).toEqual({
      reason: 'gdpr',
      by: 'ops',
      ids: ['b'],
    });
    expect(await parseRestoreBody({})).toEqual({});
    expect(await parseDeleteSpaceBody({ expectedGeneration: 3, includeInputs: true })).toMatchObject({
      expectedGeneration: 3,
    });
    expect(await parseActivateBody({ version: 'v2', expectedGeneration: 1, by: 'cli' })).toMatchObject({
      version: 'v2',
    });
    expect(await parseRollbackBody({ expectedGeneration: 1, force: true })).toMatchObject({ force: true });
  });
});
