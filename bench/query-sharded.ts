/**
 * `npm run bench:query -- --sharded [--quick]`: latency of a sharded collection served by scatter-gather
 * over shard slots (worker processes behind the local Lambda Invoke stand-in) next to the same data
 * unsharded, plus the invokes per query that Lambda charges for. Writes bench/results/query-sharded.json.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { startLocalStack } from '../local/stack';
import { clusteredVectors, jsonlRows } from '../local/synthetic';

const quick = process.argv.includes('--quick');
const N = quick ? 5_000 : 50_000;
const DIMS = 64;
const SHARDS = 8;
const SLOTS = 4;
const QUERIES = quick ? 50 : 300;
/** Lambda's request charge, USD per million invokes. */
const USD_PER_MILLION_INVOKES = 0.2;

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round((s[Math.min(s.length - 1, Math.floor(p * s.length))] as number) * 10) / 10;
};

export async function benchSharded(): Promise<void> {
  const home = await mkdtemp(join(tmpdir(), 'vicinity-bench-sharded-'));
  const stack = await startLocalStack({
    home,
    port: 0,
    config: { fileWaitMs: 2000, qualitySample: 50 },
    slots: { shardSlots: SLOTS, memoryMb: 1024 },
  });
  try {
    const d = clusteredVectors(N, DIMS, 50, 3);
    const ids = Array.from({ length: N }, (_, i) => `p${i}`);
    const put = (key: string, body: string) =>
      stack.deps.s3.send(new PutObjectCommand({ Bucket: stack.info.bucket, Key: key, Body: body }));
    await put('incoming/bench/r1/points.jsonl', jsonlRows(ids, d.vectors, DIMS));
    await put(
      'incoming/bench/r1/release.json',
      JSON.stringify({
        collections: {
          sharded: { file: 'points.jsonl', metric: 'cosine', shards: SHARDS },
          flat: { file: 'points.jsonl', metric: 'cosine' },
        },
      }),
    );
    await stack.idle(600_000);
    const results: Record<string, unknown>[] = [];
    for (const collection of ['flat', 'sharded']) {
      const url = `${stack.info.apiUrl}/v1/spaces/bench/collections/${collection}/query`;
      const ask = (i: number) =>
        fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ vector: Array.from(d.vectors.subarray(i * DIMS, (i + 1) * DIMS)), k: 10 }),
        }).then(async (r) => {
          if (r.status !== 200) throw new Error(`${collection}: ${r.status} ${await r.text()}`);
        });
      // Warm: every slot loads its shards, the router its unsharded collection.
      for (let i = 0; i < 10; i++) await ask(i);
      const before = stack.lambda.invocations.length;
      const ms: number[] = [];
      for (let q = 0; q < QUERIES; q++) {
        const t0 = performance.now();
        await ask((q * 7919) % N);
        ms.push(performance.now() - t0);
      }
      const invokes = (stack.lambda.invocations.length - before) / QUERIES;
      results.push({
        collection,
        items: N,
        dims: DIMS,
        shards: collection === 'sharded' ? SHARDS : 1,
        slots: collection === 'sharded' ? SLOTS : 0,
        queries: QUERIES,
        p50Ms: pct(ms, 0.5),
        p95Ms: pct(ms, 0.95),
        p99Ms: pct(ms, 0.99),
        slotInvokesPerQuery: invokes,
        // On top of the router's own invoke and GB-seconds; API Gateway adds its own charge.
        slotInvokeUsdPerMillionQueries: Math.round(invokes * USD_PER_MILLION_INVOKES * 100) / 100,
      });
    }
    const out = { at: new Date().toISOString(), quick, loadAverage: loadavg()[0], results };
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    await writeFile(
      join('bench', 'results', `query-sharded${quick ? '-quick' : ''}.json`),
      `${JSON.stringify(out, null, 2)}\n`,
    );
  } finally {
    await stack.stop();
    await rm(home, { recursive: true, force: true });
  }
}
