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
import { distance, tieAwareRecall } from '../functions/core/search';
import { LOCAL_SLOT_PREFIX } from '../local/shard-slots';
import { startLocalStack } from '../local/stack';
import { clusteredVectors, jsonlRows } from '../local/synthetic';
import { print } from './as-deployed';
import { writeSection } from './doc-section';

const quick = process.argv.includes('--quick');
const N = quick ? 5_000 : 50_000;
const DIMS = 64;
const SHARD_COUNTS = [2, 8];
const SLOTS = 8;
const QUERIES = quick ? 60 : 300;
/** Queries of the 16-concurrent-client QPS run, per collection. */
const CONCURRENT = 16;
const QPS_QUERIES = quick ? 160 : 1_600;
/** Lambda's prices (us-east-1, x86): per million requests, per GB-second. API Gateway HTTP API: per million. */
const USD_PER_MILLION_INVOKES = 0.2;
const USD_PER_GB_S = 0.0000166667;
const USD_PER_MILLION_HTTP_API = 1.0;
/** Router and slots at the stack's default query sizing. */
const FUNCTION_GB = 2;
/** The model's Lambda estimate (not measured here): a warm slot's call, the router's whole request. */
const AWS_SLOT_MS = 2;
const AWS_ROUTER_MS = 15;

const r1 = (x: number) => Math.round(x * 10) / 10;
/** Slot counts the cost model shows (the stack's default 8, the issue's 50, the maximum 64). */
const MODEL_SLOTS = [8, 50, 64];
/** When the published prices below were looked up (stored copies of the pages, found with the search tool). */
const PRICES_LOOKED_UP = '2026-11-30';
/** Amazon S3 Vectors: per million QueryVectors calls; the per-TB data-processed price was not found. */
const S3V = {
  usdPerMillionQueries: 2.5,
  pricingUrl: 'https://aws.amazon.com/s3/pricing/',
  pricingCaptured: '2026-09-20',
  pricingCopyUrl:
    'https://raw.githubusercontent.com/api-evangelist/amazon-s3/refs/heads/main/plans/amazon-s3-plans-pricing.yml',
  latencyUrl: 'https://docs.amazonaws.cn/en_us/AmazonS3/latest/userguide/s3-vectors-best-practices.md',
};
/** turbopuffer, Launch and Scale plans (pricing page; the changelog was last updated 2026-09-11). */
const TPUF = {
  usdPerPbQueried: 1,
  minQueriedGb: 1.28,
  usdPerGbReturned: 0.05,
  minMonthlyUsd: 16,
  warmP50Ms: 14,
  coldP50Ms: 874,
  pricingUrl: 'https://turbopuffer.com/pricing.md',
  latencyUrl: 'https://turbopuffer.com/docs-md/architecture.md',
};
/** Data a top-10 answer returns, per million queries (ids and small vectors). */
const TPUF_RETURNED_GB_PER_M = 3;
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
  /** Router total p50 (Server-Timing `total`). */
  routerP50Ms?: number;
  /** Router total minus the parallel slot calls (`total` − `shards`), p50 / p99: the fan-out's own work. */
  overheadP50Ms?: number;
  overheadP99Ms?: number;
  /** Tie-aware recall@10 against exact search over the whole collection, at the release's default ef. */
  recall10?: number;
  /** Queries per second with 16 concurrent HTTP clients. */
  qps16?: number;
}

/** Cold load of the version: first answer after nothing of it is loaded. */
interface Cold {
  /** Starting the 8 slot processes in parallel (node, tsx, handler init), before any shard is loaded. */
  slotStartMs: number;
  /** Unsharded: the router (one running process) loads the whole collection, then answers. */
  oneProcessMs: number;
  /** Sharded: the 8 running slot processes each load their shard from S3 in parallel, then the router merges. */
  slotsParallelMs: number;
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
  // Logs and metrics off, as this bench always measured: its slot workers (their own processes, the
  // Invoke stand-in's) write to the terminal, not to the sink bench/as-deployed.ts gives bench:query.
  process.env.POWERTOOLS_LOG_LEVEL = 'ERROR';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
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
  let cold: Cold | undefined;
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
    const vec = (i: number) => Array.from(d.vectors.subarray(i * DIMS, (i + 1) * DIMS));
    const ask = async (collection: string, i: number) => {
      const r = await fetch(`${stack.info.apiUrl}/v1/spaces/bench/collections/${collection}/query`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ vector: vec(i), k: 10 }),
      });
      if (r.status !== 200) throw new Error(`${collection}: ${r.status} ${await r.text()}`);
      const body = (await r.json()) as { results: { id: string }[] };
      const st = r.headers.get('server-timing');
      return { ids: body.results.map((h) => h.id), shards: timing(st, 'shards'), total: timing(st, 'total') };
    };
    // Cold load. First the slot processes start (an empty call each, in parallel: node, tsx, the
    // handler's init; no shard loaded), so what follows is the version's load alone: the router, one
    // running process, loads all of the unsharded collection; the 8 running slots each load their shard.
    const invokesBeforeCold = stack.lambda.invocations.filter((c) =>
      c.functionName.startsWith(LOCAL_SLOT_PREFIX),
    ).length;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: SLOTS }, (_, j) =>
        fetch(`${stack.lambda.endpoint}/2015-03-31/functions/${LOCAL_SLOT_PREFIX}${j}/invocations`, {
          method: 'POST',
          body: '{}',
        }).then((r) => r.arrayBuffer()),
      ),
    );
    const slotStartMs = performance.now() - t0;
    const t1 = performance.now();
    await ask('flat', 0);
    const oneProcessMs = performance.now() - t1;
    const t2 = performance.now();
    await ask(`s${SHARD_COUNTS.at(-1)}`, 0);
    const slotsParallelMs = performance.now() - t2;
    if (invokesBeforeCold !== 0)
      process.stderr.write(`note: ${invokesBeforeCold} slot invokes before the cold measurement\n`);
    cold = {
      slotStartMs: r1(slotStartMs),
      oneProcessMs: r1(oneProcessMs),
      slotsParallelMs: r1(slotsParallelMs),
    };
    // Exact top 10 of the timed queries (query q: point (q × 7919) mod N), for recall.
    const queryRows = Array.from({ length: QUERIES }, (_, q) => (q * 7919) % N);
    const truth = queryRows.map((row) => {
      const q = vec(row);
      const all = new Float64Array(N);
      for (let i = 0; i < N; i++)
        all[i] = distance('cosine', q, d.vectors.subarray(i * DIMS, (i + 1) * DIMS));
      return [...all].sort((a, b) => a - b).slice(0, 10);
    });
    const recallOf = (got: string[][]) =>
      got.reduce((sum, ids, q) => {
        const qv = vec(queryRows[q] as number);
        const ds = ids.map((id) => {
          const r = Number(id.slice(1));
          return distance('cosine', qv, d.vectors.subarray(r * DIMS, (r + 1) * DIMS));
        });
        return sum + tieAwareRecall(ds, truth[q] as number[], 10);
      }, 0) / got.length;
    for (const collection of Object.keys(collections)) {
      const shards = collection === 'flat' ? 1 : Number(collection.slice(1));
      // Warm: every slot loads its shards, the router its unsharded collection.
      for (let i = 0; i < 10; i++) await ask(collection, i);
      const before = stack.lambda.invocations.length;
      const ms: number[] = [];
      const slotMs: number[] = [];
      const totalMs: number[] = [];
      const overMs: number[] = [];
      const got: string[][] = [];
      for (const row of queryRows) {
        const t = performance.now();
        const a = await ask(collection, row);
        ms.push(performance.now() - t);
        got.push(a.ids);
        if (a.total !== undefined) totalMs.push(a.total);
        if (a.shards !== undefined) {
          slotMs.push(a.shards);
          if (a.total !== undefined) overMs.push(a.total - a.shards);
        }
      }
      const invokes = (stack.lambda.invocations.length - before) / QUERIES;
      const measured = collection === 'flat' || shards === SHARD_COUNTS.at(-1);
      let qps16: number | undefined;
      if (measured) {
        let next = 0;
        const tq = performance.now();
        await Promise.all(
          Array.from({ length: CONCURRENT }, async () => {
            while (next < QPS_QUERIES) await ask(collection, ((next++ + 1) * 104_729) % N);
          }),
        );
        qps16 = Math.round(QPS_QUERIES / ((performance.now() - tq) / 1000));
      }
      rows.push({
        collection,
        shards,
        slotsCalled: collection === 'flat' ? 0 : Math.min(shards, SLOTS),
        p50Ms: pct(ms, 0.5),
        p99Ms: pct(ms, 0.99),
        ...(slotMs.length ? { slotCallP50Ms: pct(slotMs, 0.5) } : {}),
        slotInvokesPerQuery: invokes,
        ...(totalMs.length ? { routerP50Ms: pct(totalMs, 0.5) } : {}),
        ...(overMs.length ? { overheadP50Ms: pct(overMs, 0.5), overheadP99Ms: pct(overMs, 0.99) } : {}),
        ...(measured
          ? { recall10: Math.round(recallOf(got) * 1000) / 1000, ...(qps16 ? { qps16 } : {}) }
          : {}),
      });
      process.stderr.write(`${JSON.stringify(rows.at(-1))}\n`);
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
    ...(cold ? { cold } : {}),
  };
  print(`${JSON.stringify(out, null, 2)}\n`);
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
  cold?: Cold;
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
  const model = MODEL_SLOTS.flatMap((s) =>
    (
      [
        ['measured here', measured],
        ['Lambda estimate', estimate],
      ] as const
    ).map(([what, t]) => {
      const c = costModel(s, t.routerMs, t.slotMs);
      return `| ${s} | ${what} (router ${Math.ceil(t.routerMs)} ms, slot ${Math.ceil(t.slotMs)} ms) | ${c.invokes} | ${c.gbS.toFixed(3)} | ${(c.invokes * USD_PER_MILLION_INVOKES).toFixed(2)} | ${(c.gbS * USD_PER_GB_S * 1e6).toFixed(2)} | ${c.usdPerMillion.toFixed(2)} |`;
    }),
  ).join('\n');
  const widestAt = (m: typeof measured | typeof estimate, slots: number) =>
    costModel(slots, m.routerMs, m.slotMs);
  const recallTable = [flat, widest]
    .filter((r): r is Row => r !== undefined)
    .map(
      (r) =>
        `| ${r.collection === 'flat' ? 'unsharded (router alone)' : `${r.shards} shards over ${r.slotsCalled} slots`} | ${r.recall10?.toFixed(3) ?? '–'} | ${r.p50Ms} / ${r.p99Ms} | ${r.routerP50Ms ?? '–'} | ${r.slotCallP50Ms ?? '–'} | ${r.overheadP50Ms !== undefined ? `${r.overheadP50Ms} / ${r.overheadP99Ms}` : '–'} | ${r.qps16 ?? '–'} | ${o.cold ? (r.collection === 'flat' ? o.cold.oneProcessMs : o.cold.slotsParallelMs) : '–'} |`,
    )
    .join('\n');
  const tpufPerM =
    TPUF.minQueriedGb * 1e6 * (TPUF.usdPerPbQueried / 1e6) + TPUF_RETURNED_GB_PER_M * TPUF.usdPerGbReturned;
  const compare = [
    ...[8, 50].map(
      (s) =>
        `| Vicinity, ${s} slots (Lambda estimate; measured durations here) | ${widestAt(estimate, s).usdPerMillion.toFixed(2)} (${widestAt(measured, s).usdPerMillion.toFixed(2)}) | warm: router ${AWS_ROUTER_MS} ms estimate (measured here, loaded, 8 slots: p50 ${widest?.p50Ms ?? '–'} ms); cold: slot init + shard load, in parallel | Lambda, API Gateway (this model) |`,
    ),
    `| S3 Vectors | ${S3V.usdPerMillionQueries.toFixed(2)} + a per-TB "data processed" charge (unit price not found) | warm "as low as 100 ms", cold "sub-second"; "hundreds" of queries per second per index | [S3 pricing](${S3V.pricingUrl}) as captured ${S3V.pricingCaptured} in [this transcription](${S3V.pricingCopyUrl}); latency: [S3 Vectors best practices](${S3V.latencyUrl}) |`,
    `| turbopuffer (Launch/Scale) | ${tpufPerM.toFixed(2)} for a namespace up to ${TPUF.minQueriedGb} GB (the per-query minimum), $${TPUF.usdPerPbQueried} per PB queried above it; $${TPUF.minMonthlyUsd}/month minimum | warm p50 ${TPUF.warmP50Ms} ms, cold (first query) p50 ${TPUF.coldP50Ms} ms, 1M documents | [pricing](${TPUF.pricingUrl}), [architecture](${TPUF.latencyUrl}) |`,
  ].join('\n');
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

### Unsharded vs ${widest?.shards ?? 8} shards (loaded machine)

The same data, the same ${QUERIES} queries (vectors of points in the collection), k 10, the default ef.
*Recall@10* is tie-aware (functions/core/search.ts \`tieAwareRecall\`) against exact search over the
whole collection: each shard searches its own smaller graph at the same ef, so the sharded search
visits more and its recall is at least the unsharded one. *Router* is Server-Timing \`total\`;
*fan-out overhead* is \`total\` − \`shards\` (the router's own work per query: resolving the version,
splitting, merging the slots' top-k; the slowest slot call, invoke transport included, is \`shards\`).
*QPS* is ${CONCURRENT} concurrent HTTP clients (${QPS_QUERIES} queries); each local slot is one worker process
(as a Lambda instance serves one call at a time), so on 2 cores 8 slot processes, the router and the
clients share two CPUs — on Lambda each slot scales out by instances. *Cold load* is the time to the
first answer once nothing of the version is loaded: the router (one running process) loading the whole
collection, vs the ${o.slots} running slot processes each loading their shard in parallel${o.cold ? `. Starting the ${o.slots} slot processes themselves (node, tsx, the handler's init; an empty call each, in parallel) took ${o.cold.slotStartMs} ms before that, on 2 cores (Lambda inits them on separate instances)` : ''}.

| served as | recall@10 | p50 / p99 ms (HTTP) | router p50 ms | slot calls p50 ms | fan-out overhead p50 / p99 ms | QPS, ${CONCURRENT} clients | cold load to first answer ms |
|---|---|---|---|---|---|---|---|
${recallTable}

At this size (${o.items} × ${o.dims}) a shard's search is a fraction of a millisecond: the slot call time is
the invoke (HTTP to the stand-in, a message to the worker, the answer back) and queueing behind other
calls on 2 cores, not search; the router's own fan-out work stays well under a millisecond.

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

### Compared with S3 Vectors and turbopuffer (published figures, not measured here)

Looked up on ${PRICES_LOOKED_UP} from stored copies of the vendors' pages (no internet on the build machine);
prices are per million queries of one index / namespace, storage and writes left out. For
turbopuffer, data returned is taken as ~${TPUF_RETURNED_GB_PER_M} GB per million queries (10 hits with an id and a
small vector each). For S3 Vectors the query price has two parts: $${S3V.usdPerMillionQueries.toFixed(2)} per million
QueryVectors calls, and a charge per TB of "data processed" (the index's vectors, keys and filterable
metadata) whose unit price was not legible in the copies found (the pricing page's cells are
templates); it is left out rather than guessed, so that row is a lower bound.

| service | USD / M queries | latency | source |
|---|---|---|---|
${compare}

Read: at 8 slots the Lambda estimate is of the order of S3 Vectors' request charge alone and a few
times turbopuffer's price for a small namespace; at 50 slots the 51 invokes per query make it about
four times dearer than at 8. Warm latency (estimated, not measured on AWS) is of the order of
turbopuffer's warm p50 and below S3 Vectors' ~100 ms. None of the three rows includes storage or writes
(Vicinity's snapshots are plain S3 objects; Lambda costs nothing while idle). Keep slot counts low:
shard a collection only as far as memory needs.
`;
}
