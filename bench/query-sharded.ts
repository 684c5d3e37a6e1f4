/**
 * `npm run bench:query -- --sharded [--quick]`: latency of sharded collections served by scatter-gather
 * over shard slots (worker processes behind the local Lambda Invoke stand-in) next to the same data
 * unsharded, per shard count, plus the invokes per query that Lambda charges for and a cost model.
 * Writes bench/results/query-sharded[-quick].json and its own section of docs/performance.md.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { startLocalStack } from '../local/stack';
import { clusteredVectors, jsonlRows } from '../local/synthetic';
import { writeSection } from './doc-section';

const quick = process.argv.includes('--quick');
const N = quick ? 5_000 : 50_000;
const DIMS = 64;
const SHARD_COUNTS = [2, 8];
const SLOTS = 4;
const QUERIES = quick ? 60 : 300;
/** Lambda's prices (us-east-1, x86): per million requests, per GB-second. API Gateway HTTP API: per million. */
const USD_PER_MILLION_INVOKES = 0.2;
const USD_PER_GB_S = 0.0000166667;
const USD_PER_MILLION_HTTP_API = 1.0;
/** Router and slots at the stack's default query sizing. */
const FUNCTION_GB = 2;
/** The model's Lambda estimate (not measured here): a warm slot's call, the router's whole request. */
const AWS_SLOT_MS = 2;
const AWS_ROUTER_MS = 15;

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round((s[Math.min(s.length - 1, Math.floor(p * s.length))] as number) * 10) / 10;
};

/** `shards;dur=12.3` from a Server-Timing header. */
const timing = (h: string | null, name: string) => {
  const m = h?.match(new RegExp(`(?:^|,\\s*)${name};dur=([0-9.]+)`));
  return m ? Number(m[1]) : undefined;
};

interface Row {
  collection: string;
  shards: number;
  slotsCalled: number;
  p50Ms: number;
  p99Ms: number;
  slotCallP50Ms?: number;
  slotInvokesPerQuery: number;
}

/** \`--sharded --render\`: rewrites the section from the saved results without measuring again. */
export async function renderSharded(): Promise<void> {
  const { readFile } = await import('node:fs/promises');
  const o = JSON.parse(
    await readFile(join('bench', 'results', `query-sharded${quick ? '-quick' : ''}.json`), 'utf8'),
  );
  await writeSection('query-sharded', shardedDoc(o));
}

export async function benchSharded(): Promise<void> {
  const startLoad = loadavg()
    .map((x) => x.toFixed(1))
    .join(' / ');
  const home = await mkdtemp(join(tmpdir(), 'vicinity-bench-sharded-'));
  const stack = await startLocalStack({
    home,
    port: 0,
    config: { fileWaitMs: 2000, qualitySample: 50 },
    slots: { shardSlots: SLOTS, memoryMb: 1024 },
  });
  const rows: Row[] = [];
  try {
    const d = clusteredVectors(N, DIMS, 50, 3);
    const ids = Array.from({ length: N }, (_, i) => `p${i}`);
    const put = (key: string, body: string) =>
      stack.deps.s3.send(new PutObjectCommand({ Bucket: stack.info.bucket, Key: key, Body: body }));
    await put('incoming/bench/r1/points.jsonl', jsonlRows(ids, d.vectors, DIMS));
    const collections: Record<string, unknown> = { flat: { file: 'points.jsonl', metric: 'cosine' } };
    for (const s of SHARD_COUNTS)
      collections[`s${s}`] = { file: 'points.jsonl', metric: 'cosine', shards: s };
    await put('incoming/bench/r1/release.json', JSON.stringify({ collections }));
    await stack.idle(600_000);
    for (const collection of Object.keys(collections)) {
      const shards = collection === 'flat' ? 1 : Number(collection.slice(1));
      const url = `${stack.info.apiUrl}/v1/spaces/bench/collections/${collection}/query`;
      const ask = async (i: number) => {
        const r = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ vector: Array.from(d.vectors.subarray(i * DIMS, (i + 1) * DIMS)), k: 10 }),
        });
        if (r.status !== 200) throw new Error(`${collection}: ${r.status} ${await r.text()}`);
        await r.arrayBuffer();
        return timing(r.headers.get('server-timing'), 'shards');
      };
      // Warm: every slot loads its shards, the router its unsharded collection.
      for (let i = 0; i < 10; i++) await ask(i);
      const before = stack.lambda.invocations.length;
      const ms: number[] = [];
      const slotMs: number[] = [];
      for (let q = 0; q < QUERIES; q++) {
        const t0 = performance.now();
        const s = await ask((q * 7919) % N);
        ms.push(performance.now() - t0);
        if (s !== undefined) slotMs.push(s);
      }
      rows.push({
        collection,
        shards,
        slotsCalled: collection === 'flat' ? 0 : Math.min(shards, SLOTS),
        p50Ms: pct(ms, 0.5),
        p99Ms: pct(ms, 0.99),
        ...(slotMs.length ? { slotCallP50Ms: pct(slotMs, 0.5) } : {}),
        slotInvokesPerQuery: (stack.lambda.invocations.length - before) / QUERIES,
      });
    }
  } finally {
    await stack.stop();
    await rm(home, { recursive: true, force: true });
  }
  const out = {
    at: new Date().toISOString(),
    quick,
    loadAverage: startLoad,
    items: N,
    dims: DIMS,
    slots: SLOTS,
    rows,
  };
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  await mkdir(join('bench', 'results'), { recursive: true });
  await writeFile(
    join('bench', 'results', `query-sharded${quick ? '-quick' : ''}.json`),
    `${JSON.stringify(out, null, 2)}\n`,
  );
  await writeSection('query-sharded', shardedDoc(out));
}

/** Lambda cost of one query fanned out to `slots` slot functions (one shard per slot, the worst case). */
export function costModel(slots: number, routerMs: number, slotMs: number) {
  const invokes = 1 + slots;
  const gbS = (FUNCTION_GB * (Math.ceil(routerMs) + slots * Math.ceil(slotMs))) / 1000;
  const usdPerMillion =
    invokes * USD_PER_MILLION_INVOKES + gbS * USD_PER_GB_S * 1e6 + USD_PER_MILLION_HTTP_API;
  return { invokes, gbS, usdPerMillion };
}

function shardedDoc(o: {
  at: string;
  quick: boolean;
  loadAverage: string;
  items: number;
  dims: number;
  slots: number;
  rows: Row[];
}): string {
  const flat = o.rows.find((r) => r.collection === 'flat');
  const table = o.rows
    .map(
      (r) =>
        `| ${r.collection === 'flat' ? 'unsharded (router alone)' : `${r.shards} shards, router + ${r.slotsCalled} slots`} | ${r.p50Ms} | ${r.p99Ms} | ${r.slotCallP50Ms ?? '–'} | ${r.slotInvokesPerQuery.toFixed(2)} |`,
    )
    .join('\n');
  const widest = o.rows.filter((r) => r.collection !== 'flat').at(-1);
  // Per-call durations for the model: as measured here (a loaded machine: an upper bound), and an
  // estimate for Lambda (a warm slot's search and answer ~2 ms; the router waits ~15 ms for the
  // parallel invokes). Lambda bills each invoke by the millisecond, the router for as long as it waits.
  const measured = { slotMs: widest?.slotCallP50Ms ?? 5, routerMs: widest?.p50Ms ?? 10 };
  const estimate = { slotMs: AWS_SLOT_MS, routerMs: AWS_ROUTER_MS };
  const model = [8, 64]
    .flatMap((s) =>
      (
        [
          ['measured here', measured],
          ['Lambda estimate', estimate],
        ] as const
      ).map(([what, t]) => {
        const c = costModel(s, t.routerMs, t.slotMs);
        return `| ${s} | ${what} (router ${Math.ceil(t.routerMs)} ms, slot ${Math.ceil(t.slotMs)} ms) | ${c.invokes} | ${c.gbS.toFixed(3)} | ${(c.invokes * USD_PER_MILLION_INVOKES).toFixed(2)} | ${(c.gbS * USD_PER_GB_S * 1e6).toFixed(2)} | ${c.usdPerMillion.toFixed(2)} |`;
      }),
    )
    .join('\n');
  return `## Sharded collections: scatter-gather over shard slots

Measured by \`npm run bench:query -- --sharded${o.quick ? ' --quick' : ''}\` (${o.at.slice(0, 10)}; load average at
the start ${o.loadAverage}: a loaded 2-core machine, other work alongside). ${o.items} × ${o.dims} clustered
vectors, cosine, k 10, the release's default ef; the same data as one unsharded collection and sharded
${SHARD_COUNTS.join(' and ')} ways, served by ${o.slots} local slot functions (worker processes behind the Lambda
Invoke stand-in; shard j → slot j mod ${o.slots}). Latency is the HTTP client's, one client, warm.
*Slot calls* is the router's Server-Timing \`shards\` part: the parallel invokes, slowest slot included;
invokes per query above one per slot are hedged retries (the machine was loaded).

| served as | p50 ms | p99 ms | slot calls p50 ms | slot invokes / query |
|---|---|---|---|---|
${table}

Locally an invoke is an HTTP round trip to the stand-in plus a message to a worker process; on AWS
it is a synchronous Lambda Invoke (a few ms each, in parallel). ${flat ? `The unsharded row is the floor (${flat.p50Ms} ms p50): ` : ''}the fan-out adds roughly one invoke's latency plus the slowest slot, and the hedged retry bounds that
slowest slot's tail at its observed p95.

### Cost model (not a measurement)

A query of a collection with one shard per slot invokes the router once and every slot once. At
${FUNCTION_GB} GB for the router and each slot, the router billed for its whole request and each slot
for its call, at $${USD_PER_MILLION_INVOKES} per million invokes, $${USD_PER_GB_S} per GB-s and API Gateway's
$${USD_PER_MILLION_HTTP_API} per million. Two duration assumptions: the p50s measured above (a loaded
machine, local stand-in: an upper bound), and an estimate for warm Lambda instances (a slot's search
and answer ${AWS_SLOT_MS} ms — the in-handler search at 100k × 128 is ~0.3 ms, billed by the ms; the router
${AWS_ROUTER_MS} ms, mostly waiting for the parallel invokes).

| shardSlots | durations | invokes / query | GB-s / query | USD / M queries: invokes | GB-s | total (with API Gateway) |
|---|---|---|---|---|---|---|
${model}

The request charge grows with the slots a query touches, the GB-s with slots × their search time:
keep shards few and large (a shard per slot, not more), and let unsharded collections answer in the
router alone (1 invoke, ${flat ? `${Math.ceil(flat.p50Ms)} ms` : 'its own time'}).
`;
}
