/**
 * npm run bench:erase [-- --quick] — erasure on the local stack:
 * 1. the time from the DELETE's 202 to the first answer without the id, with `consistency=strong` and
 *    with the default (pointer cache TTL) consistency;
 * 2. the purge of one id from an N × 64 snapshot (1M; `--quick`: 100k): one sweep — download, rebuild
 *    the segment holding it from its remaining vectors, upload, switch the manifest, delete the old
 *    objects — timed end to end; with `--pieces P`, a second id is then purged with
 *    VICINITY_PURGE_SEGMENT_ITEMS = P (the segment rebuilt as pieces in parallel worker threads), and
 *    each rebuild is printed beside the sweeper's estimate (functions/core/purge-budget.ts).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { DynamoRegistry } from '../functions/adapters/dynamo-registry';
import { S3Store } from '../functions/adapters/s3-store';
import { DEFAULT_PURGE_SEGMENT_ITEMS, rebuildEstimateMs } from '../functions/core/purge-budget';
import { startLocalStack } from '../local/stack';
import { clusteredVectors } from '../local/synthetic';
import { sweepNow } from '../test/support/sweep';

process.env.POWERTOOLS_METRICS_DISABLED = 'true';
process.env.POWERTOOLS_LOG_LEVEL = 'ERROR';
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const quick = process.argv.includes('--quick');
const N = quick ? 100_000 : 1_000_000;
const DIMS = 64;
const piecesAt = process.argv.indexOf('--pieces');
const PIECES = piecesAt > 0 ? Number(process.argv[piecesAt + 1]) : undefined;

async function main() {
  const home = await mkdtemp(join(tmpdir(), 'vicinity-bench-erase-'));
  const stack = await startLocalStack({ home, port: 0, sweepMs: 0, config: { qualitySample: 50 } });
  const store = new S3Store(stack.deps.s3, stack.info.bucket);
  const registry = new DynamoRegistry(stack.deps.dynamo, stack.info.table);
  const api = stack.info.apiUrl;
  const publish = async (space: string, n: number) => {
    const { vectors } = clusteredVectors(n, DIMS, 32, 7);
    const ids = Array.from({ length: n }, (_, i) => `i${i}`).join('\n');
    const put = (key: string, body: Buffer | string) =>
      stack.deps.s3.send(new PutObjectCommand({ Bucket: stack.info.bucket, Key: key, Body: body }));
    await put(
      `incoming/${space}/r1/items.f32`,
      Buffer.from(vectors.buffer, vectors.byteOffset, vectors.byteLength),
    );
    await put(`incoming/${space}/r1/items.ids`, ids);
    await put(
      `incoming/${space}/r1/release.json`,
      JSON.stringify({
        collections: { items: { vectors: 'items.f32', ids: 'items.ids', dims: DIMS, metric: 'ip' } },
        activate: true,
      }),
    );
    await stack.idle();
  };
  const erase = (space: string, id: string) =>
    fetch(`${api}/v1/spaces/${space}/collections/items/items/${id}`, { method: 'DELETE' });
  try {
    // 1. Time to the first answer without the id.
    await publish('small', 20_000);
    const until404 = async (id: string, consistency: string) => {
      await fetch(`${api}/v1/spaces/small/collections/items/items/${id}/similar?k=10`); // warm
      const r = await erase('small', id);
      if (r.status !== 202) throw new Error(`erase answered ${r.status}`);
      const t0 = performance.now();
      for (;;) {
        const q = await fetch(`${api}/v1/spaces/small/collections/items/items/${id}${consistency}`);
        if (q.status === 404) return performance.now() - t0;
      }
    };
    const strong: number[] = [];
    const eventual: number[] = [];
    for (let i = 0; i < 5; i++) strong.push(await until404(`i${100 + i}`, '?consistency=strong'));
    for (let i = 0; i < 5; i++) eventual.push(await until404(`i${200 + i}`, ''));
    const fmt = (xs: number[]) =>
      `median ${xs.sort((a, b) => a - b)[2]?.toFixed(1)} ms, max ${Math.max(...xs).toFixed(1)} ms`;
    console.log(`202 → first answer without the id, consistency=strong: ${fmt(strong)}`);
    console.log(`202 → first answer without the id, default consistency (pointer TTL 1 s): ${fmt(eventual)}`);

    // 2. Purge of one id from an N × 64 snapshot.
    const b0 = performance.now();
    await publish('big', N);
    const v = await registry.getVersion('big', 'v1');
    if (v?.status !== 'READY') throw new Error(`the ${N} × ${DIMS} build ended ${v?.status}: ${v?.reason}`);
    console.log(
      `built ${N} × ${DIMS} in ${((performance.now() - b0) / 1000).toFixed(1)} s (${v.collections?.items?.segments} segments)`,
    );
    await erase('big', 'i12345');
    const workDir = join(home, 'purge');
    const purge = (pieceItems?: number) =>
      sweepNow(store, registry, { workDir, ...(pieceItems ? { pieceItems } : {}) });
    const p0 = performance.now();
    const report = await purge();
    const ms = performance.now() - p0;
    const rewritten = report.erasure.rewritten.find((r) => r.version === 'v1');
    console.log(
      `purge of one id from ${N} × ${DIMS}: ${(ms / 1000).toFixed(1)} s (sweep), rewrite ${((rewritten?.ms ?? 0) / 1000).toFixed(1)} s, removed ${JSON.stringify(rewritten?.removed)}, old objects deleted ${report.erasure.deletedObjects}`,
    );
    const workers = availableParallelism();
    const estimate = (items: number, pieces: number) =>
      `${(rebuildEstimateMs(items, DIMS, pieces, workers) / 1000).toFixed(1)} s estimated (${workers} workers)`;
    // The rebuild is of the segment holding the id, not of the collection.
    const segmentItems = Math.ceil(N / Number(v.collections?.items?.segments ?? 1));
    console.log(
      `  the sweeper's estimate of that rebuild: ${estimate(segmentItems - 1, DEFAULT_PURGE_SEGMENT_ITEMS)}`,
    );
    if (PIECES) {
      await erase('big', 'i23456');
      const q0 = performance.now();
      const again = await purge(PIECES);
      const r2 = again.erasure.rewritten.find((r) => r.version === 'v1');
      const v2 = await registry.getVersion('big', 'v1');
      const m = JSON.parse((await store.getText(v2?.manifestKey as string)) as string) as {
        collections: { items: { segments: unknown[] } };
      };
      console.log(
        `purge of a second id, pieces of ≤ ${PIECES}: ${((performance.now() - q0) / 1000).toFixed(1)} s (sweep), rewrite ${((r2?.ms ?? 0) / 1000).toFixed(1)} s, ${m.collections.items.segments.length} segments now; ${estimate(segmentItems - 2, PIECES)}`,
      );
    }
  } finally {
    await stack.stop();
    await rm(home, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
