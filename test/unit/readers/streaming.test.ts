import { createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localReleaseFiles, ProblemCollector, readerFor } from '../../../functions/adapters/readers';
import { spec, tempDir, vectors } from './fixtures';

const LINES = 300_000;
const DIMS = 64;

let dir: string;
let cleanup: () => Promise<void>;

/** A way to force a full collection in this worker, if V8 lets us have one. */
function getGc(): (() => void) | undefined {
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    return typeof gc === 'function' ? (gc as () => void) : undefined;
  } catch {
    return undefined;
  }
}

async function writeBigJsonl(path: string): Promise<void> {
  const templates = vectors(64, DIMS, 11).map((v) =>
    JSON.stringify(Array.from(v, (x) => Number(x.toFixed(6)))),
  );
  const out = createWriteStream(path);
  let batch: string[] = [];
  for (let i = 0; i < LINES; i++) {
    batch.push(`{"id":"row-${i}","vector":${templates[i % templates.length]},"metadata":{"n":${i}}}\n`);
    if (batch.length === 2000) {
      if (!out.write(batch.join(''))) await new Promise<void>((r) => out.once('drain', () => r()));
      batch = [];
    }
  }
  out.end(batch.join(''));
  await new Promise<void>((resolve, reject) => {
    out.once('finish', resolve);
    out.once('error', reject);
  });
}

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
  await writeBigJsonl(join(dir, 'big.jsonl'));
}, 120_000);
afterAll(async () => {
  await cleanup();
});

describe('JSONL streaming', () => {
  it('streams a 300k-line file with heap growth far below the file size', async () => {
    const size = (await stat(join(dir, 'big.jsonl'))).size;
    expect(size).toBeGreaterThan(150_000_000);
    const gc = getGc();
    gc?.();
    const base = process.memoryUsage().heapUsed;
    let peak = 0;
    let retained = 0;
    let count = 0;
    let last = '';
    const problems = new ProblemCollector();
    const s = spec('jsonl', ['big.jsonl']);
    for await (const row of readerFor('jsonl')({
      spec: s,
      files: localReleaseFiles(dir),
      problems,
      maxLineBytes: 1 << 20,
    })) {
      count++;
      last = row.id;
      if (count % 5_000 === 0) peak = Math.max(peak, process.memoryUsage().heapUsed - base);
      if (gc && count % 50_000 === 0) {
        gc();
        retained = Math.max(retained, process.memoryUsage().heapUsed - base);
      }
    }
    expect(problems.count).toBe(0);
    expect(count).toBe(LINES);
    expect(last).toBe(`row-${LINES - 1}`);
    // Generous bounds: garbage between collections is fine, holding the file is not.
    expect(peak).toBeLessThan(size / 4);
    if (gc) expect(retained).toBeLessThan(32 * 1024 * 1024);
    console.info(
      `streamed ${count} lines (${(size / 1e6).toFixed(0)} MB): peak heap growth ${(peak / 1e6).toFixed(1)} MB, ` +
        `retained after GC ${gc ? `${(retained / 1e6).toFixed(1)} MB` : 'n/a'}`,
    );
  }, 180_000);
});
