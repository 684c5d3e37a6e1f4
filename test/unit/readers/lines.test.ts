import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ProblemCollector, type ReleaseFiles, readerFor } from '../../../functions/adapters/readers';
import { LineSplitter } from '../../../functions/adapters/readers/rows';
import { spec } from './fixtures';

/** Splits `bytes` into chunks of pseudo-random sizes 1..maxChunk. */
function chunked(bytes: Buffer, maxChunk: number, seed: number): Buffer[] {
  const out: Buffer[] = [];
  let s = seed;
  for (let at = 0; at < bytes.length; ) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const n = 1 + (s % maxChunk);
    out.push(bytes.subarray(at, at + n));
    at += n;
  }
  return out;
}

function split(chunks: Buffer[], max: number): { line: number; text: string | null; length: number }[] {
  const splitter = new LineSplitter(max);
  const out: { line: number; text: string | null; length: number }[] = [];
  const take = (l: { line: number; bytes: Buffer | null; length: number }) =>
    out.push({ line: l.line, text: l.bytes ? l.bytes.toString('utf8') : null, length: l.length });
  for (const c of chunks) for (const l of splitter.push(c)) take(l);
  for (const l of splitter.end()) take(l);
  return out;
}

describe('byte line splitter', () => {
  const text = 'alpha\nbeta\r\n\nthis line is much too long for the limit\ngamma\r\nlast';
  const expected = [
    { line: 1, text: 'alpha', length: 5 },
    { line: 2, text: 'beta', length: 4 },
    { line: 3, text: '', length: 0 },
    { line: 4, text: null, length: 40 },
    { line: 5, text: 'gamma', length: 5 },
    { line: 6, text: 'last', length: 4 },
  ];

  it('gives the same lines however the bytes are chunked', () => {
    const bytes = Buffer.from(text);
    expect(split([bytes], 10)).toEqual(expected);
    for (let seed = 1; seed <= 50; seed++) {
      for (const max of [1, 3, 7, 64]) expect(split(chunked(bytes, max, seed), 10)).toEqual(expected);
    }
  });

  it('does not invent a line after a final newline', () => {
    expect(split([Buffer.from('a\nb\n')], 10).map((l) => l.text)).toEqual(['a', 'b']);
    expect(split([Buffer.from('')], 10)).toEqual([]);
  });

  it('reads JSONL correctly from a stream of tiny chunks', async () => {
    const rows = Array.from({ length: 50 }, (_, i) => JSON.stringify({ id: `é${i}`, vector: [i + 1, 0.5] }));
    const bytes = Buffer.from(rows.join('\r\n'));
    const files: ReleaseFiles = {
      size: async () => bytes.length,
      stream: async () => Readable.from(chunked(bytes, 5, 3)),
      range: async (_f, offset, n) => bytes.subarray(offset, offset + n),
    };
    const problems = new ProblemCollector();
    const ids: string[] = [];
    for await (const row of readerFor('jsonl')({
      spec: spec('jsonl', ['tiny.jsonl']),
      files,
      problems,
      maxLineBytes: 1024,
    })) {
      ids.push(row.id);
    }
    expect(problems.problems).toEqual([]);
    expect(ids).toEqual(Array.from({ length: 50 }, (_, i) => `é${i}`));
  });
});
