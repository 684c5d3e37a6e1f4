import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAll, spec, tempDir, vectors, writeRaw } from './fixtures';

let dir: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
});
afterAll(async () => {
  await cleanup();
});

function f32(rows: number[][]): Buffer {
  const out = Buffer.alloc(rows.length * (rows[0]?.length ?? 0) * 4);
  let o = 0;
  for (const r of rows) {
    for (const v of r) {
      out.writeFloatLE(v, o);
      o += 4;
    }
  }
  return out;
}

describe('raw float32 reader', () => {
  it('reads little-endian float32 rows with one id per line', async () => {
    const vecs = vectors(1000, 64);
    const ids = vecs.map((_, i) => `id-${i}`);
    await writeRaw(join(dir, 'a.f32'), join(dir, 'a.ids'), ids, vecs);
    const { rows, problems } = await readAll(dir, spec('raw', ['a.f32', 'a.ids'], { dims: 64 }));
    expect(problems.problems).toEqual([]);
    expect(rows).toHaveLength(1000);
    expect(rows[999]?.id).toBe('id-999');
    expect(rows[999]?.line).toBe(1000);
    expect(rows[999]?.file).toBe('a.ids');
    expect(Array.from(rows[999]?.vector ?? [])).toEqual(Array.from(vecs[999] ?? []));
    expect(rows[0]?.metadata).toBeNull();
  });

  it('tolerates CRLF ids and a missing final newline', async () => {
    await writeFile(
      join(dir, 'crlf.f32'),
      f32([
        [1, 2],
        [3, 4],
        [5, 6],
      ]),
    );
    await writeFile(join(dir, 'crlf.ids'), 'a\r\nb\r\nc');
    const { rows, problems } = await readAll(dir, spec('raw', ['crlf.f32', 'crlf.ids'], { dims: 2 }));
    expect(problems.problems).toEqual([]);
    expect(rows.map((r) => r.id)).toEqual(['a', 'b', 'c']);
  });

  it('refuses a vectors file whose size is not a whole number of rows', async () => {
    await writeFile(join(dir, 'odd.f32'), Buffer.alloc(1000));
    await writeFile(join(dir, 'odd.ids'), 'a\n');
    const { rows, problems } = await readAll(dir, spec('raw', ['odd.f32', 'odd.ids'], { dims: 64 }));
    expect(rows).toEqual([]);
    expect(problems.problems).toEqual([
      { file: 'odd.f32', message: 'odd.f32 is 1000 bytes, not a multiple of 256 (64 dims × 4)' },
    ]);
  });

  it('refuses fewer ids than rows, reporting both counts', async () => {
    await writeFile(
      join(dir, 'few.f32'),
      f32([
        [1, 0],
        [0, 1],
        [1, 1],
      ]),
    );
    await writeFile(join(dir, 'few.ids'), 'a\nb\n');
    const { rows, problems } = await readAll(dir, spec('raw', ['few.f32', 'few.ids'], { dims: 2 }));
    expect(rows.map((r) => r.id)).toEqual(['a', 'b']);
    expect(problems.problems).toEqual([
      {
        file: 'few.ids',
        message: 'few.ids has 2 ids but few.f32 has 3 rows (2 dims); they must match one to one',
      },
    ]);
  });

  it('refuses more ids than rows, reporting both counts', async () => {
    await writeFile(join(dir, 'many.f32'), f32([[1, 0]]));
    await writeFile(join(dir, 'many.ids'), 'a\nb\nc\n');
    const { problems } = await readAll(dir, spec('raw', ['many.f32', 'many.ids'], { dims: 2 }));
    expect(problems.problems.map((p) => p.message)).toEqual([
      'many.ids has 3 ids but many.f32 has 1 rows (2 dims); they must match one to one',
    ]);
  });

  it('refuses bad ids, non-finite values and zero vectors, naming the line or row, and keeps going', async () => {
    await writeFile(
      join(dir, 'bad.f32'),
      f32([
        [1, 2],
        [1, 2],
        [3, Number.NaN],
        [0, 0],
        [Number.NEGATIVE_INFINITY, 1],
        [5, 6],
        [7, 8],
      ]),
    );
    await writeFile(
      join(dir, 'bad.ids'),
      Buffer.concat([
        Buffer.from('ok1\n\nnan\nzero\ninf\n'),
        Buffer.from([0xc3, 0x28, 0x0a]),
        Buffer.from('ok2\n'),
      ]),
    );
    const { rows, problems } = await readAll(dir, spec('raw', ['bad.f32', 'bad.ids'], { dims: 2 }));
    expect(rows.map((r) => [r.id, r.line])).toEqual([
      ['ok1', 1],
      ['ok2', 7],
    ]);
    expect(problems.problems).toEqual([
      { file: 'bad.ids', line: 2, message: 'id is empty' },
      { file: 'bad.f32', line: 3, message: 'vector[1] is NaN' },
      { file: 'bad.f32', line: 4, message: 'zero vector has no direction under cosine' },
      { file: 'bad.f32', line: 5, message: 'vector[0] is -Infinity' },
      { file: 'bad.ids', line: 6, message: 'invalid UTF-8' },
    ]);
  });

  it('refuses raw input without dims, and missing files by name', async () => {
    // Its own files (a.f32/a.ids are written by another test; this one must not depend on it running first).
    await writeRaw(join(dir, 'own.f32'), join(dir, 'own.ids'), ['x', 'y'], vectors(2, 64));
    const noDims = await readAll(dir, spec('raw', ['own.f32', 'own.ids']));
    expect(noDims.problems.problems).toEqual([
      { file: 'own.f32', message: 'raw input needs "dims" in release.json' },
    ]);
    const missing = await readAll(dir, spec('raw', ['nope.f32', 'own.ids'], { dims: 64 }));
    expect(missing.problems.problems).toEqual([{ file: 'nope.f32', message: 'file not found' }]);
  });
});
