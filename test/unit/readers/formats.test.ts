import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readerFor } from '../../../functions/adapters/readers';
import { content, readAll, spec, tempDir, vectors, writeJsonl, writeParquet, writeRaw } from './fixtures';

let dir: string;
let cleanup: () => Promise<void>;

const N = 2500;
const DIMS = 64;
const vecs = vectors(N, DIMS);
const ids = vecs.map((_, i) => `item-${i}`);

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
  const rows = ids.map((id, i) => ({ id, vector: Array.from(vecs[i] as Float32Array) }));
  await writeJsonl(join(dir, 'items.jsonl'), rows);
  await writeJsonl(join(dir, 'items.jsonl.gz'), rows, true);
  await writeRaw(join(dir, 'items.f32'), join(dir, 'items.ids'), ids, vecs);
  // Spark-style output: several parts, several row groups each, plus _SUCCESS and .crc side files.
  const parts = [0, 1000, 1800, N];
  for (let p = 0; p + 1 < parts.length; p++) {
    const from = parts[p] as number;
    const to = parts[p + 1] as number;
    writeParquet(
      join(dir, `part-0000${p}.parquet`),
      [
        { name: 'id', kind: 'string', data: ids.slice(from, to) },
        { name: 'vector', kind: 'list<float>', data: vecs.slice(from, to).map((v) => Array.from(v)) },
      ],
      300,
    );
    await writeFile(join(dir, `.part-0000${p}.parquet.crc`), 'crc');
  }
  await writeFile(join(dir, '_SUCCESS'), '');
});
afterAll(async () => {
  await cleanup();
});

describe('every format yields the same rows for the same vectors', () => {
  it('JSONL, JSONL.gz, multi-part Parquet (with _SUCCESS and .crc present) and raw agree exactly', async () => {
    const jsonl = await readAll(dir, spec('jsonl', ['items.jsonl']));
    const gz = await readAll(dir, spec('jsonl.gz', ['items.jsonl.gz']));
    const parquet = await readAll(
      dir,
      spec('parquet', [
        'part-00000.parquet',
        '.part-00000.parquet.crc',
        'part-00001.parquet',
        '.part-00001.parquet.crc',
        'part-00002.parquet',
        '.part-00002.parquet.crc',
        '_SUCCESS',
      ]),
    );
    const raw = await readAll(dir, spec('raw', ['items.f32', 'items.ids'], { dims: DIMS }));
    for (const r of [jsonl, gz, parquet, raw]) expect(r.problems.problems).toEqual([]);

    const expected = ids.map((id, i) => ({
      id,
      vector: Array.from(vecs[i] as Float32Array),
      metadata: null,
    }));
    expect(content(jsonl.rows)).toEqual(expected);
    expect(content(gz.rows)).toEqual(expected);
    expect(content(parquet.rows)).toEqual(expected);
    expect(content(raw.rows)).toEqual(expected);

    // Each row keeps where it came from: line i+1 of the JSONL file, row i+1 of the raw ids file.
    for (const [r, file] of [
      [jsonl, 'items.jsonl'],
      [gz, 'items.jsonl.gz'],
    ] as const)
      expect(r.rows.every((row, i) => row.file === file && row.line === i + 1)).toBe(true);
    expect(raw.rows).toHaveLength(N);
    expect(new Set(raw.rows.map((row, i) => row.line === i + 1))).toEqual(new Set([true]));
    // Parquet rows are numbered within each part.
    expect(parquet.rows.map((r) => `${r.file}:${r.line}`).slice(999, 1001)).toEqual([
      'part-00000.parquet:1000',
      'part-00001.parquet:1',
    ]);
  });

  it('picks the reader by format', () => {
    expect(readerFor('jsonl')).toBe(readerFor('jsonl.gz'));
    expect(readerFor('parquet')).not.toBe(readerFor('raw'));
  });

  it('stops reading and releases its files when the consumer stops early', async () => {
    const problems = { count: 0 };
    const { localReleaseFiles, ProblemCollector } = await import('../../../functions/adapters/readers');
    for (const s of [
      spec('jsonl', ['items.jsonl']),
      spec('jsonl.gz', ['items.jsonl.gz']),
      spec('parquet', ['part-00000.parquet']),
      spec('raw', ['items.f32', 'items.ids'], { dims: DIMS }),
    ]) {
      const collector = new ProblemCollector();
      let n = 0;
      for await (const _row of readerFor(s.format)({
        spec: s,
        files: localReleaseFiles(dir),
        problems: collector,
        maxLineBytes: 1 << 20,
      })) {
        if (++n === 3) break;
      }
      expect(n).toBe(3);
      problems.count += collector.count;
    }
    expect(problems.count).toBe(0);
  });
});
