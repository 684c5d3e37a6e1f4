/**
 * Parts of one big input file (sharded builds: one partition task per part): JSONL byte ranges give
 * every line to exactly one part, with the file's line numbers once each part's base is added; Parquet
 * row-group runs give every row once, numbered as in the file; the planner splits only what it can.
 */
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type FilePart,
  localReleaseFiles,
  ProblemCollector,
  type ReleaseFiles,
  readerFor,
} from '../../../functions/adapters/readers';
import { partitionsOf } from '../../../functions/builder/sharded/plan';
import type { CollectionSpec } from '../../../functions/core/release';
import { spec, tempDir, vectors, writeParquet } from './fixtures';

/** Files held in memory, streamed in `chunk`-byte pieces so lines and ranges straddle chunk edges. */
function memoryFiles(files: Record<string, Buffer>, chunk = 7): ReleaseFiles {
  const get = (f: string) => {
    const b = files[f];
    if (!b) throw new Error(`no ${f}`);
    return b;
  };
  return {
    size: async (f) => files[f]?.length,
    async stream(f, range) {
      const b = range ? get(f).subarray(range.offset, range.offset + range.bytes) : get(f);
      const pieces: Buffer[] = [];
      for (let i = 0; i < b.length; i += chunk) pieces.push(b.subarray(i, i + chunk));
      return Readable.from(pieces);
    },
    range: async (f, offset, bytes) => new Uint8Array(get(f).subarray(offset, offset + bytes)),
  };
}

async function read(s: CollectionSpec, files: ReleaseFiles, part?: FilePart) {
  const problems = new ProblemCollector(1000);
  const rows: { id: string; line: number }[] = [];
  for await (const r of readerFor(s.format)({
    spec: s,
    files,
    problems,
    maxLineBytes: 60,
    ...(part ? { part } : {}),
  })) {
    rows.push({ id: r.id, line: r.line });
  }
  return { rows, problems: problems.problems };
}

const v = (i: number) => `[${i % 3},1]`;
// Blank lines, CRLF, an over-long line, invalid JSON, a wrong-length vector, no final newline.
const text = [
  `{"id":"a","vector":${v(0)}}`,
  '',
  `{"id":"b","vector":${v(1)}}\r`,
  `{"id":"c","vector":[1,2,3]}`,
  'not json',
  `{"id":"long","vector":${v(2)},"metadata":{"pad":"${'x'.repeat(80)}"}}`,
  `{"id":"d","vector":${v(3)}}`,
  '   ',
  `{"id":"e","vector":${v(4)}}`,
  `{"id":"f","vector":${v(5)}}`,
].join('\n');
const jsonl = Buffer.from(text);
const s = spec('jsonl', ['big.jsonl'], { metric: 'l2', dims: 2 });

/** Reads the file as the given parts and puts every row and problem back at its file line. */
async function readAsParts(cuts: number[]) {
  const files = memoryFiles({ 'big.jsonl': jsonl });
  const edges = [0, ...cuts, jsonl.length];
  let base = 0;
  const rows: { id: string; line: number }[] = [];
  const problems: { line?: number; message: string }[] = [];
  for (let i = 0; i + 1 < edges.length; i++) {
    const part: FilePart = { bytes: { start: edges[i] as number, end: edges[i + 1] as number } };
    const r = await read(s, files, part);
    rows.push(...r.rows.map((x) => ({ id: x.id, line: x.line + base })));
    problems.push(...r.problems.map((p) => ({ line: (p.line ?? 0) + base, message: p.message })));
    base += part.lines ?? 0;
  }
  return { rows, problems, lines: base };
}

describe('JSONL byte ranges', () => {
  it('every split point gives each line to exactly one part, at its file line', async () => {
    const whole = await read(s, memoryFiles({ 'big.jsonl': jsonl }));
    expect(whole.rows.map((r) => r.id)).toEqual(['a', 'b', 'd', 'e', 'f']);
    const expected = {
      rows: whole.rows,
      problems: whole.problems.map((p) => ({ line: p.line, message: p.message })),
    };
    for (let cut = 1; cut < jsonl.length; cut++) {
      const got = await readAsParts([cut]);
      expect({ cut, rows: got.rows, problems: got.problems }).toEqual({ cut, ...expected });
      expect(got.lines).toBe(10);
    }
    for (const cuts of [
      [5, 6, 7],
      [30, 31, 90, 200],
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    ]) {
      const got = await readAsParts(cuts);
      expect({ rows: got.rows, problems: got.problems }).toEqual(expected);
    }
  });

  it('a part of a gzipped file is refused (gzip cannot be split)', async () => {
    const files = memoryFiles({ 'big.jsonl': gzipSync(jsonl) });
    await expect(read(s, files, { bytes: { start: 0, end: 10 } })).rejects.toThrow(
      /cannot be read by byte range/,
    );
  });
});

describe('Parquet row-group runs', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir());
    const vs = vectors(35, 4);
    writeParquet(
      `${dir}/p.parquet`,
      [
        { name: 'id', kind: 'string', data: vs.map((_, i) => `r${i}`) },
        { name: 'vector', kind: 'list<float>', data: vs.map((x, i) => (i === 23 ? [1, 2] : Array.from(x))) },
      ],
      10,
    );
  });
  afterAll(() => cleanup());

  it('runs of row groups read every row once, numbered as in the file', async () => {
    const ps = spec('parquet', ['p.parquet'], { dims: 4 });
    const files = localReleaseFiles(dir);
    const whole = await read(ps, files);
    const parts = await Promise.all(
      [
        [0, 1],
        [1, 3],
        [3, 4],
      ].map(([from, to]) => read(ps, files, { rowGroups: { from: from as number, to: to as number } })),
    );
    expect(parts.flatMap((p) => p.rows)).toEqual(whole.rows);
    expect(whole.rows).toHaveLength(34);
    expect(parts[2]?.problems).toEqual([]);
    expect(parts[1]?.problems).toEqual([expect.objectContaining({ line: 24 })]);
  });

  it('the planner splits big Parquet by row groups, big JSONL by byte ranges, gzip and small files not at all', async () => {
    const local = localReleaseFiles(dir);
    const size = (await local.size('p.parquet')) as number;
    const pq = await partitionsOf(spec('parquet', ['p.parquet']), local, Math.floor(size / 8));
    expect(pq.length).toBeGreaterThan(1);
    expect(pq[0]?.rowGroups?.from).toBe(0);
    expect(pq.at(-1)?.rowGroups?.to).toBe(4);
    for (let i = 1; i < pq.length; i++) expect(pq[i]?.rowGroups?.from).toBe(pq[i - 1]?.rowGroups?.to);
    expect(await partitionsOf(spec('parquet', ['p.parquet']), local, size)).toEqual([
      { files: ['p.parquet'] },
    ]);

    const files = memoryFiles({
      'big.jsonl': jsonl,
      'z.jsonl': gzipSync(jsonl),
      'small.jsonl': Buffer.from('{}'),
    });
    const js = await partitionsOf(spec('jsonl', ['big.jsonl', 'z.jsonl', 'small.jsonl']), files, 50);
    const ranges = js.filter((p) => p.files[0] === 'big.jsonl').map((p) => p.bytes);
    expect(ranges.length).toBe(Math.ceil(jsonl.length / 50));
    expect(ranges[0]?.start).toBe(0);
    expect(ranges.at(-1)?.end).toBe(jsonl.length);
    for (let i = 1; i < ranges.length; i++) expect(ranges[i]?.start).toBe(ranges[i - 1]?.end);
    expect(js.filter((p) => p.files[0] !== 'big.jsonl')).toEqual([
      { files: ['z.jsonl'] },
      { files: ['small.jsonl'] },
    ]);
  });
});

describe('raw row ranges', () => {
  const DIMS = 2;
  const N = 60;
  // Ids of uneven lengths (the planner cannot compute where a row's id starts), CRLF on some lines,
  // a blank id at row 13, a NaN at row 38 and an over-long id at row 51; no final newline.
  const idOf = (i: number) => (i === 12 ? '' : i === 50 ? 'x'.repeat(70) : `id-${'n'.repeat(i % 9)}${i}`);
  const idsText = Array.from({ length: N }, (_, i) => `${idOf(i)}${i % 4 === 1 ? '\r' : ''}`).join('\n');
  const vecs = Buffer.alloc(N * DIMS * 4);
  for (let i = 0; i < N * DIMS; i++) vecs.writeFloatLE(i === 37 * DIMS + 1 ? Number.NaN : (i % 7) + 1, i * 4);
  const rs = spec('raw', ['v.f32', 'v.ids'], { metric: 'l2', dims: DIMS });

  async function readRows(files: ReleaseFiles, part?: FilePart) {
    const problems = new ProblemCollector(1000);
    const rows: { id: string; line: number; file: string; vector: number[] }[] = [];
    for await (const r of readerFor('raw')({
      spec: rs,
      files,
      problems,
      maxLineBytes: 60,
      ...(part ? { part } : {}),
    })) {
      rows.push({ id: r.id, line: r.line, file: r.file, vector: Array.from(r.vector) });
    }
    return { rows, problems: problems.problems };
  }

  it('the planner cuts a big raw input into row ranges whose parts read exactly what the whole file reads', async () => {
    for (const [text, chunk] of [
      [idsText, 7],
      [`${idsText}\n`, 5],
      [`${idsText}\r\n`, 64],
    ] as const) {
      const files = memoryFiles({ 'v.f32': vecs, 'v.ids': Buffer.from(text) }, chunk);
      const whole = await readRows(files);
      expect(whole.rows).toHaveLength(N - 3);
      expect(whole.problems.map((p) => [p.file, p.line])).toEqual([
        ['v.ids', 13],
        ['v.f32', 38],
        ['v.ids', 51],
      ]);
      for (const partitionBytes of [8 * DIMS * 4, 100, 333]) {
        const plan = await partitionsOf(rs, files, partitionBytes);
        expect(plan.length).toBeGreaterThanOrEqual(Math.ceil((N * DIMS * 4) / partitionBytes) - 1);
        expect(plan[0]?.rows).toMatchObject({ from: 0, idsStart: 0 });
        expect(plan.at(-1)?.rows).toMatchObject({ to: N, idsEnd: text.length });
        for (let i = 1; i < plan.length; i++) {
          expect(plan[i]?.rows?.from).toBe(plan[i - 1]?.rows?.to);
          expect(plan[i]?.rows?.idsStart).toBe(plan[i - 1]?.rows?.idsEnd);
        }
        const parts = [];
        for (const p of plan)
          parts.push(await readRows(files, { rows: p.rows as NonNullable<FilePart['rows']> }));
        expect(parts.flatMap((p) => p.rows)).toEqual(whole.rows);
        expect(parts.flatMap((p) => p.problems)).toEqual(whole.problems);
      }
    }
  });

  it('a raw input that is small, or whose files disagree, is one partition (the reader reports it)', async () => {
    const files = memoryFiles({
      'v.f32': vecs,
      'v.ids': Buffer.from(idsText),
      'short.ids': Buffer.from(idsText.split('\n').slice(1).join('\n')),
      'odd.f32': vecs.subarray(0, vecs.length - 4),
    });
    expect(await partitionsOf(rs, files, vecs.length)).toEqual([{ files: ['v.f32', 'v.ids'] }]);
    const short = { ...rs, files: ['v.f32', 'short.ids'] };
    expect(await partitionsOf(short, files, 64)).toEqual([{ files: ['v.f32', 'short.ids'] }]);
    expect((await readRows(files)).problems).toHaveLength(3);
    const odd = { ...rs, files: ['odd.f32', 'v.ids'] };
    expect(await partitionsOf(odd, files, 64)).toEqual([{ files: ['odd.f32', 'v.ids'] }]);
  });
});
