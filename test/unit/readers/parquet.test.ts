import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { asyncBufferFromFile, parquetMetadataAsync } from 'hyparquet';
import { parquetWriteFile } from 'hyparquet-writer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  localReleaseFiles,
  ProblemCollector,
  type ReleaseFiles,
  readerFor,
} from '../../../functions/adapters/readers';
import { listSchema, readAll, spec, tempDir, writeParquet } from './fixtures';

let dir: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
});
afterAll(async () => {
  await cleanup();
});

describe('Parquet reader', () => {
  it('reads a Spark-style LIST of FLOAT vector column, snappy-compressed, row group by row group', async () => {
    writeParquet(
      join(dir, 'basic.parquet'),
      [
        { name: 'id', kind: 'string', data: ['a', 'b', 'c', 'd', 'e'] },
        {
          name: 'vector',
          kind: 'list<float>',
          data: [
            [1, 0],
            [0, 1],
            [0.5, 0.5],
            [-1, 2],
            [3, -4],
          ],
        },
      ],
      2,
    );
    const meta = await parquetMetadataAsync(await asyncBufferFromFile(join(dir, 'basic.parquet')));
    expect(meta.row_groups).toHaveLength(3);
    expect(meta.row_groups[0]?.columns.map((c) => c.meta_data?.codec)).toEqual(['SNAPPY', 'SNAPPY']);

    const { rows, problems } = await readAll(dir, spec('parquet', ['basic.parquet']));
    expect(problems.problems).toEqual([]);
    expect(rows.map((r) => [r.id, Array.from(r.vector), r.metadata, r.file, r.line])).toEqual([
      ['a', [1, 0], null, 'basic.parquet', 1],
      ['b', [0, 1], null, 'basic.parquet', 2],
      ['c', [0.5, 0.5], null, 'basic.parquet', 3],
      ['d', [-1, 2], null, 'basic.parquet', 4],
      ['e', [3, -4], null, 'basic.parquet', 5],
    ]);
  });

  it('turns integer ids (INT32 and INT64, beyond 2^53 too) into decimal strings', async () => {
    writeParquet(join(dir, 'int32.parquet'), [
      { name: 'id', kind: 'int32', data: [7, -3, 0] },
      { name: 'vector', kind: 'list<float>', data: [[1], [2], [3]] },
    ]);
    writeParquet(join(dir, 'int64.parquet'), [
      { name: 'id', kind: 'int64', data: [9007199254740993n, 12n] },
      { name: 'vector', kind: 'list<float>', data: [[1], [2]] },
    ]);
    const { rows, problems } = await readAll(dir, spec('parquet', ['int32.parquet', 'int64.parquet']));
    expect(problems.problems).toEqual([]);
    expect(rows.map((r) => r.id)).toEqual(['7', '-3', '0', '9007199254740993', '12']);
  });

  it('makes other scalar columns metadata, skips nested ones, and reads list<double> vectors', async () => {
    writeParquet(join(dir, 'meta.parquet'), [
      { name: 'key', kind: 'string', data: ['a', 'b'] },
      {
        name: 'emb',
        kind: 'list<double>',
        data: [
          [0.25, 0.5],
          [1, 2],
        ],
      },
      { name: 'title', kind: 'string', data: ['One', null] },
      { name: 'plays', kind: 'int64', data: [42n, 2n ** 60n] },
      { name: 'score', kind: 'double', data: [0.5, 1.5] },
      { name: 'live', kind: 'boolean', data: [true, false] },
      { name: 'year', kind: 'int32', data: [1999, null] },
      { name: 'tags', kind: 'list<string>', data: [['x'], ['y', 'z']] },
    ]);
    const { rows, problems } = await readAll(
      dir,
      spec('parquet', ['meta.parquet'], { idColumn: 'key', vectorColumn: 'emb' }),
    );
    expect(problems.problems).toEqual([]);
    expect(rows.map((r) => [r.id, Array.from(r.vector), r.metadata])).toEqual([
      ['a', [0.25, 0.5], { title: 'One', plays: 42, score: 0.5, live: true, year: 1999 }],
      ['b', [1, 2], { title: null, plays: String(2n ** 60n), score: 1.5, live: false, year: null }],
    ]);
  });

  it('refuses a missing vector column, naming it and the columns that exist', async () => {
    writeParquet(join(dir, 'novec.parquet'), [
      { name: 'id', kind: 'string', data: ['a'] },
      { name: 'embedding', kind: 'list<float>', data: [[1, 2]] },
    ]);
    const { rows, problems } = await readAll(dir, spec('parquet', ['novec.parquet']));
    expect(rows).toEqual([]);
    expect(problems.problems).toEqual([
      { file: 'novec.parquet', message: 'no vector column "vector"; the columns are: id, embedding' },
    ]);
  });

  it('refuses a missing id column, naming it and the columns that exist', async () => {
    writeParquet(join(dir, 'noid.parquet'), [{ name: 'vector', kind: 'list<float>', data: [[1, 2]] }]);
    const { problems } = await readAll(dir, spec('parquet', ['noid.parquet']));
    expect(problems.problems).toEqual([
      { file: 'noid.parquet', message: 'no id column "id"; the columns are: vector' },
    ]);
  });

  it('refuses a scalar vector column, naming its type', async () => {
    writeParquet(join(dir, 'scalarvec.parquet'), [
      { name: 'id', kind: 'string', data: ['a'] },
      { name: 'vector', kind: 'double', data: [1] },
    ]);
    const { problems } = await readAll(dir, spec('parquet', ['scalarvec.parquet']));
    expect(problems.problems).toEqual([
      {
        file: 'scalarvec.parquet',
        message: 'vector column "vector" must be a list of numbers, but it is a DOUBLE column',
      },
    ]);
  });

  it('refuses a list-of-strings vector column once for the file, not once per row', async () => {
    writeParquet(join(dir, 'strvec.parquet'), [
      { name: 'id', kind: 'string', data: ['a', 'b'] },
      { name: 'vector', kind: 'list<string>', data: [['1'], ['2']] },
    ]);
    const { problems } = await readAll(dir, spec('parquet', ['strvec.parquet']));
    expect(problems.problems).toEqual([
      {
        file: 'strvec.parquet',
        message: 'vector column "vector" must be a list of numbers, but it is a list of BYTE_ARRAY values',
      },
    ]);
  });

  it('refuses malformed and truncated Parquet as a problem for that file, then reads the next file', async () => {
    await writeFile(join(dir, 'text.parquet'), 'this is not parquet at all\n');
    writeParquet(join(dir, 'whole.parquet'), [
      { name: 'id', kind: 'string', data: ['a', 'b'] },
      {
        name: 'vector',
        kind: 'list<float>',
        data: [
          [1, 2],
          [3, 4],
        ],
      },
    ]);
    const bytes = await readFile(join(dir, 'whole.parquet'));
    await writeFile(join(dir, 'truncated.parquet'), bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    await writeFile(join(dir, 'tiny.parquet'), 'PAR1');
    const { rows, problems } = await readAll(
      dir,
      spec('parquet', ['text.parquet', 'truncated.parquet', 'tiny.parquet', 'whole.parquet']),
    );
    expect(rows.map((r) => `${r.file}:${r.line}:${r.id}`)).toEqual([
      'whole.parquet:1:a',
      'whole.parquet:2:b',
    ]);
    expect(problems.problems.map((p) => p.file)).toEqual([
      'text.parquet',
      'truncated.parquet',
      'tiny.parquet',
    ]);
    for (const p of problems.problems) expect(p.message).toMatch(/^not a readable Parquet file: /);
  });

  describe('row refusals: each names the file and 1-based row, and the reader keeps going', () => {
    const ids = ['ok1', 'nan', null, '', 'short', 'zero', 'nullvec', 'nullelem', 'ctl\u0007', 'ok2', 'big'];
    const vecs: ((number | null)[] | null)[] = [
      [1, 2, 3],
      [1, 2, Number.NaN],
      [1, 2, 3],
      [1, 2, 3],
      [1, 2],
      [0, 0, 0],
      null,
      [1, null, 3],
      [1, 2, 3],
      [4, 5, 6],
      [1, Number.POSITIVE_INFINITY, 3],
    ];
    const expected: [number, string][] = [
      [2, 'vector[2] is NaN'],
      [3, 'id is missing (null)'],
      [4, 'id is empty'],
      [5, 'vector has 2 values, expected 3 (set by row 1)'],
      [6, 'zero vector has no direction under cosine'],
      [7, 'vector is null'],
      [8, 'vector[1] is null, not a number'],
      [9, 'id contains control characters'],
      [11, 'vector[1] is Infinity'],
    ];
    let result: Awaited<ReturnType<typeof readAll>>;
    beforeAll(async () => {
      writeParquet(
        join(dir, 'bad.parquet'),
        [
          { name: 'id', kind: 'string', data: ids },
          { name: 'vector', kind: 'list<float>', data: vecs },
        ],
        4,
      );
      result = await readAll(dir, spec('parquet', ['bad.parquet']));
    });

    it.each(expected)('refuses row %i: %s', (row, message) => {
      expect(result.problems.problems).toContainEqual({ file: 'bad.parquet', line: row, message });
    });

    it('yields the valid rows with their row numbers', () => {
      expect(result.rows.map((r) => [r.id, r.line])).toEqual([
        ['ok1', 1],
        ['ok2', 10],
      ]);
      expect(result.problems.count).toBe(expected.length);
    });
  });

  it('refuses NaN in a list<double> vector, naming its index', async () => {
    writeParquet(join(dir, 'nan-double.parquet'), [
      { name: 'id', kind: 'string', data: ['a'] },
      { name: 'vector', kind: 'list<double>', data: [[0.5, Number.NaN]] },
    ]);
    const { problems } = await readAll(dir, spec('parquet', ['nan-double.parquet']));
    expect(problems.problems).toEqual([{ file: 'nan-double.parquet', line: 1, message: 'vector[1] is NaN' }]);
  });
});

describe('Parquet reader on a large row group', () => {
  it('reads a row group larger than one slice in page-indexed slices, rows intact across the seams', async () => {
    const n = 140_000;
    const ids = Array.from({ length: n }, (_, i) => `r${i}`);
    const vecs = Array.from({ length: n }, (_, i) => [i + 1, -i]);
    parquetWriteFile({
      filename: join(dir, 'big-group.parquet'),
      schema: [
        { name: 'root', num_children: 2 },
        { name: 'id', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' },
        ...listSchema('vector'),
      ],
      columnData: [
        { name: 'id', data: ids },
        { name: 'vector', data: vecs },
      ],
      rowGroupSize: n,
      pageSize: 64 * 1024,
    });
    const meta = await parquetMetadataAsync(await asyncBufferFromFile(join(dir, 'big-group.parquet')));
    expect(meta.row_groups).toHaveLength(1);
    expect(meta.row_groups[0]?.columns.every((c) => c.offset_index_length !== undefined)).toBe(true);

    const ranges: [number, number][] = [];
    const local = localReleaseFiles(dir);
    const files: ReleaseFiles = {
      size: (f) => local.size(f),
      stream: (f) => local.stream(f),
      range: (f, offset, bytes) => {
        ranges.push([offset, bytes]);
        return local.range(f, offset, bytes);
      },
    };
    const problems = new ProblemCollector();
    const s = spec('parquet', ['big-group.parquet'], { metric: 'l2' });
    let count = 0;
    for await (const row of readerFor('parquet')({ spec: s, files, problems, maxLineBytes: 1 << 20 })) {
      const i = row.line - 1;
      if (row.id !== `r${i}` || row.vector[0] !== i + 1 || row.vector[1] !== -i) {
        throw new Error(`row ${row.line} is wrong: ${row.id} ${Array.from(row.vector)}`);
      }
      count++;
    }
    expect(problems.problems).toEqual([]);
    expect(count).toBe(n);
    // Footer + offset indexes, then more than one data read: the group was read in slices.
    expect(ranges.length).toBeGreaterThan(3);
  });
});
