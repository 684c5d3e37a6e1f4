import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAll, spec, tempDir, writeJsonl } from './fixtures';

let dir: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
});
afterAll(async () => {
  await cleanup();
});

const ok = (id: string, vector = [1, 2, 3, 4]): string => JSON.stringify({ id, vector, metadata: { n: 1 } });

/** One line per refusal, with the problem it must produce; `null` lines are valid or skipped. */
const CASES: [string | Buffer, RegExp | null][] = [
  [ok('first'), null], // line 1 fixes dims = 4
  ['{"id": "x", "vector": [1, 2', /^not valid JSON: /],
  ['[1, 2, 3, 4]', /^row must be a JSON object, got an array$/],
  ['{"vector": [1, 2, 3, 4]}', /^id is missing$/],
  ['{"id": "", "vector": [1, 2, 3, 4]}', /^id is empty$/],
  [JSON.stringify({ id: 'x'.repeat(257), vector: [1, 2, 3, 4] }), /^id has 257 characters, more than 256$/],
  [JSON.stringify({ id: 'a\u0001b', vector: [1, 2, 3, 4] }), /^id contains control characters$/],
  ['{"id": 42, "vector": [1, 2, 3, 4]}', /^id must be a string, got the number 42$/],
  ['{"id": "novec"}', /^vector is missing$/],
  ['{"id": "strvec", "vector": "1,2,3,4"}', /^vector must be an array of numbers, got a string$/],
  ['{"id": "nan", "vector": [1, 2, 3, "NaN"]}', /^vector\[3\] is the string "NaN", not a number$/],
  ['{"id": "null", "vector": [1, null, 3, 4]}', /^vector\[1\] is null, not a number$/],
  ['{"id": "inf", "vector": [1e999, 2, 3, 4]}', /^vector\[0\] is Infinity$/],
  ['{"id": "f32", "vector": [1, 2, 1e39, 4]}', /^vector\[2\] is 1e\+39, outside the float32 range$/],
  ['{"id": "short", "vector": [1, 2, 3]}', /^vector has 3 values, expected 4 \(set by line 1\)$/],
  [
    '{"id": "meta", "vector": [1, 2, 3, 4], "metadata": [1]}',
    /^metadata must be an object or null, got an array$/,
  ],
  ['{"id": "zero", "vector": [0, 0, 0, 0]}', /^zero vector has no direction under cosine$/],
  [Buffer.from([0x7b, 0x22, 0x69, 0x64, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]), /^invalid UTF-8$/],
  [
    JSON.stringify({ id: 'long', vector: Array(400).fill(0.5) }),
    /^line is \d+ bytes, longer than the limit of 512 bytes; skipped$/,
  ],
  ['   \t ', null], // blank: skipped silently
  ['', null], // empty: skipped silently
  [ok('last'), null],
  ['{"id": "nullmeta", "vector": [4, 3, 2, 1], "metadata": null}', null],
];

async function writeCases(name: string): Promise<void> {
  const parts = CASES.flatMap(([line]) => [
    typeof line === 'string' ? Buffer.from(line) : line,
    Buffer.from('\n'),
  ]);
  await writeFile(join(dir, name), Buffer.concat(parts));
}

describe('JSONL reader', () => {
  it('reads ids, vectors and metadata, line by line', async () => {
    await writeJsonl(join(dir, 'good.jsonl'), [
      { id: 'a', vector: [0.5, -1, 2, 0.25], metadata: { genre: 'rock', year: 1999 } },
      { id: 'b', vector: [1, 0, 0, 0] },
      { id: 'c', vector: [0, 1, 0, 0], metadata: null },
    ]);
    const { rows, problems } = await readAll(dir, spec('jsonl', ['good.jsonl']));
    expect(problems.count).toBe(0);
    expect(rows.map((r) => [r.id, Array.from(r.vector), r.metadata, r.file, r.line])).toEqual([
      ['a', [0.5, -1, 2, 0.25], { genre: 'rock', year: 1999 }, 'good.jsonl', 1],
      ['b', [1, 0, 0, 0], null, 'good.jsonl', 2],
      ['c', [0, 1, 0, 0], null, 'good.jsonl', 3],
    ]);
    expect(rows[0]?.vector).toBeInstanceOf(Float32Array);
  });

  describe('refusals: each names the file and line, and the reader keeps going', () => {
    let result: Awaited<ReturnType<typeof readAll>>;
    beforeAll(async () => {
      await writeCases('bad.jsonl');
      result = await readAll(dir, spec('jsonl', ['bad.jsonl']), { maxLineBytes: 512 });
    });

    const expected = CASES.map(([, re], i) => ({ line: i + 1, re })).filter(
      (c): c is { line: number; re: RegExp } => c.re !== null,
    );

    it.each(expected)('refuses line $line with a message matching $re', ({ line, re }) => {
      const found = result.problems.problems.filter((p) => p.line === line);
      expect(found).toHaveLength(1);
      expect(found[0]?.file).toBe('bad.jsonl');
      expect(found[0]?.message).toMatch(re);
    });

    it('yields only the valid rows, and skips blank lines without a problem', () => {
      expect(result.rows.map((r) => [r.id, r.line])).toEqual([
        ['first', 1],
        ['last', 22],
        ['nullmeta', 23],
      ]);
      expect(result.problems.count).toBe(expected.length);
    });

    it('refuses a vector of the wrong length, naming file and line', () => {
      expect(result.problems.problems).toContainEqual({
        file: 'bad.jsonl',
        line: 15,
        message: 'vector has 3 values, expected 4 (set by line 1)',
      });
    });

    it('reports the first 10 problems and counts all of them', async () => {
      const { problems } = await readAll(dir, spec('jsonl', ['bad.jsonl']), { maxLineBytes: 512, keep: 10 });
      expect(problems.problems).toHaveLength(10);
      expect(problems.count).toBe(expected.length);
      expect(problems.problems.map((p) => p.line)).toEqual(expected.slice(0, 10).map((e) => e.line));
    });
  });

  it('refuses zero vectors only under cosine', async () => {
    await writeJsonl(join(dir, 'zero.jsonl'), [{ id: 'z', vector: [0, 0] }]);
    const cos = await readAll(dir, spec('jsonl', ['zero.jsonl']));
    expect(cos.problems.count).toBe(1);
    const l2 = await readAll(dir, spec('jsonl', ['zero.jsonl'], { metric: 'l2' }));
    expect(l2.problems.count).toBe(0);
    expect(l2.rows).toHaveLength(1);
  });

  it('checks lengths against dims from release.json when given', async () => {
    await writeJsonl(join(dir, 'dims.jsonl'), [{ id: 'a', vector: [1, 2, 3] }]);
    const { problems } = await readAll(dir, spec('jsonl', ['dims.jsonl'], { dims: 4 }));
    expect(problems.problems).toEqual([
      {
        file: 'dims.jsonl',
        line: 1,
        message: 'vector has 3 values, expected 4 (set by "dims" in release.json)',
      },
    ]);
  });

  it('reads several files in order, restarting line numbers and naming the file that set dims', async () => {
    await writeJsonl(join(dir, 'p1.jsonl'), [
      { id: 'a', vector: [1, 0, 0] },
      { id: 'b', vector: [0, 1, 0] },
    ]);
    await writeJsonl(join(dir, 'p2.jsonl'), [
      { id: 'c', vector: [0, 0, 1] },
      { id: 'd', vector: [0, 1] },
    ]);
    const { rows, problems } = await readAll(dir, spec('jsonl', ['p1.jsonl', 'p2.jsonl']));
    expect(rows.map((r) => `${r.file}:${r.line}:${r.id}`)).toEqual([
      'p1.jsonl:1:a',
      'p1.jsonl:2:b',
      'p2.jsonl:1:c',
    ]);
    expect(problems.problems).toEqual([
      { file: 'p2.jsonl', line: 2, message: 'vector has 2 values, expected 3 (set by p1.jsonl line 1)' },
    ]);
  });

  it('tolerates CRLF line ends, a missing final newline and a UTF-8 byte order mark', async () => {
    await writeFile(
      join(dir, 'crlf.jsonl'),
      '\ufeff{"id":"a","vector":[1,2]}\r\n{"id":"ü","vector":[3,4]}\r\n{"id":"c","vector":[5,6]}',
    );
    const { rows, problems } = await readAll(dir, spec('jsonl', ['crlf.jsonl']));
    expect(problems.problems).toEqual([]);
    expect(rows.map((r) => r.id)).toEqual(['a', 'ü', 'c']);
    // Every line whole, the last one without its newline too, and numbered as an editor shows them.
    expect(rows.map((r) => [r.line, Array.from(r.vector)])).toEqual([
      [1, [1, 2]],
      [2, [3, 4]],
      [3, [5, 6]],
    ]);
  });

  it('skips an over-long line to its newline without holding it, then reads on', async () => {
    const long = JSON.stringify({ id: 'huge', vector: Array(500_000).fill(0.123456) });
    await writeFile(join(dir, 'long.jsonl'), `${ok('before')}\n${long}\n${ok('after')}\n`);
    const { rows, problems } = await readAll(dir, spec('jsonl', ['long.jsonl']), { maxLineBytes: 4096 });
    expect(rows.map((r) => r.id)).toEqual(['before', 'after']);
    expect(problems.problems).toEqual([
      {
        file: 'long.jsonl',
        line: 2,
        message: `line is ${Buffer.byteLength(long)} bytes, longer than the limit of 4096 bytes; skipped`,
      },
    ]);
  });

  it('reads .jsonl.gz, recognising gzip by its magic bytes whatever the name or format', async () => {
    const rows = [
      { id: 'a', vector: [1, 2] },
      { id: 'b', vector: [3, 4] },
    ];
    await writeJsonl(join(dir, 'z.jsonl.gz'), rows, true);
    await writeJsonl(join(dir, 'z-named-plain.jsonl'), rows, true);
    await writeJsonl(join(dir, 'z-plain-named.jsonl.gz'), rows, false);
    for (const [format, file] of [
      ['jsonl.gz', 'z.jsonl.gz'],
      ['jsonl', 'z.jsonl.gz'],
      ['jsonl', 'z-named-plain.jsonl'],
      ['jsonl.gz', 'z-plain-named.jsonl.gz'],
    ] as const) {
      const r = await readAll(dir, spec(format, [file]));
      expect(r.problems.problems).toEqual([]);
      expect(r.rows.map((x) => [x.id, x.line])).toEqual([
        ['a', 1],
        ['b', 2],
      ]);
    }
  });

  it('refuses a truncated gzip file as a problem for that file, keeping the rows before the damage', async () => {
    const lines = Array.from({ length: 2000 }, (_, i) => ok(`r${i}`)).join('\n') + '\n';
    const gz = gzipSync(lines);
    await writeFile(join(dir, 'cut.jsonl.gz'), gz.subarray(0, Math.floor(gz.length / 2)));
    await writeJsonl(join(dir, 'next.jsonl'), [{ id: 'next', vector: [1, 2, 3, 4] }]);
    const { rows, problems } = await readAll(dir, spec('jsonl.gz', ['cut.jsonl.gz', 'next.jsonl']));
    expect(problems.count).toBe(1);
    expect(problems.problems[0]?.file).toBe('cut.jsonl.gz');
    expect(problems.problems[0]?.message).toMatch(/^not valid gzip: /);
    expect(rows.length).toBeGreaterThan(1);
    expect(rows.at(-1)?.id).toBe('next');
  });

  it('refuses a file that is not there as a problem naming it', async () => {
    const { problems } = await readAll(dir, spec('jsonl', ['missing.jsonl']));
    expect(problems.problems).toEqual([{ file: 'missing.jsonl', message: 'file not found' }]);
  });
});
