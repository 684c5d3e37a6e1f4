/**
 * tsx bench/query-golden.ts [--out=FILE] — a fingerprint of the query handler's observable output, to compare
 * two trees byte for byte after a change meant to keep behaviour (docs/performance.md, session 5): 150 of the
 * bench's 100k × 128 queries, each as 7 bodies (k 10 with metadata, k 3 without, an exclusion, a filter, and
 * three refused bodies), through the middy handler with INFO logs and metrics on. Prints the number of
 * requests and one sha256 over their status, headers and bodies (Server-Timing's durations blanked) and the
 * access and EMF lines (timestamps, latencies and cold-start flags blanked); `--out` writes those lines,
 * for a diff. A first request's snapshot-load metrics are durations and differ between runs.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fakeContext, httpEvent } from '../local/http-adapter';
import { startLocalStack } from '../local/stack';
import { blankTimes } from './log-lines';
import { collectionName, publishSnapshot, SPACE } from './publish';
import { DATASETS, dataset } from './query-data';

process.env.POWERTOOLS_METRICS_DISABLED = 'false';
process.env.POWERTOOLS_LOG_LEVEL = 'INFO';
process.env.POWERTOOLS_NAMESPACE ??= 'Vicinity';
const d = await dataset(DATASETS[0] as (typeof DATASETS)[number]);
const home = await mkdtemp(join(tmpdir(), 'vicinity-golden-'));
const stack = await startLocalStack({ home, port: 0 });
const h = createHash('sha256');
let n = 0;
try {
  await publishSnapshot(stack, [d]);
  const path = `/v1/spaces/${SPACE}/collections/${collectionName(d)}/query`;
  const ctx = fakeContext('vicinity-query', 'golden', 3_600_000);
  const shapes = [
    (v: number[]) => ({ vector: v, k: 10, ef: 80 }),
    (v: number[]) => ({ vector: v, k: 3, includeMetadata: false }),
    (v: number[]) => ({ vector: v, k: 5, exclude: ['1', '2', '3'] }),
    (v: number[]) => ({ vector: v, k: 5, filter: { b: { lte: 5000 } } }),
    (v: number[]) => ({ vector: v, k: 0 }),
    (v: number[]) => ({ vector: v.slice(1) }),
    (v: number[]) => ({ vector: v, exlude: [] }),
  ];
  const lines: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((c: string | Uint8Array) => {
    lines.push(String(c));
    return true;
  }) as typeof process.stdout.write;
  for (let i = 0; i < 150; i++) {
    const v = (d.queries[i] as number[]).map((x) => Number(x.toPrecision(7)));
    for (const s of shapes) {
      const res = await stack.query(
        httpEvent({
          method: 'POST',
          path,
          requestId: `g-${i}`,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(s(v)),
          apiId: 'golden',
        }),
        ctx,
      );
      const headers = {
        ...res.headers,
        'server-timing': String(res.headers['server-timing'] ?? '').replace(/dur=[\d.]+/g, 'dur='),
      };
      h.update(`${res.statusCode}\n${JSON.stringify(headers)}\n${res.body}\n`);
      n++;
    }
  }
  process.stdout.write = write;
  const norm = lines
    .join('')
    .split('\n')
    .filter((l) => l.includes('"request"') || l.includes('_aws'))
    .map(blankTimes);
  h.update(norm.map((l) => l.replace(/"Snapshot(\w+)Ms":[\d.]+/g, '"Snapshot$1Ms":M')).join('\n'));
  const out = process.argv.find((a) => a.startsWith('--out='))?.slice(6);
  if (out)
    writeFileSync(
      out,
      norm.map((l) => l.replace(/"Snapshot(\w+)Ms":[\d.]+/g, '"Snapshot$1Ms":M')).join('\n'),
    );
} finally {
  await stack.stop();
  await rm(home, { recursive: true, force: true });
}
console.log(n, h.digest('hex'));
