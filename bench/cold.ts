/**
 * npm run bench:cold [-- --quick] [--out cdk.out] [--label bundled-sdk] [--no-first] [--runs 21]
 *
 * The cold path, measured from the deployable artifacts `npm run synth` wrote to cdk.out:
 * - each function's init: a fresh Node process per run, the bundle staged as Lambda stages it
 *   (infra/bundle-init.ts: a directory outside the repository, the layer on NODE_PATH, the template's
 *   environment, NODE_OPTIONS included when set), a tiny runner that `import()`s it; init = performance.now() when
 *   `handler` is ready minus the same runner's figure with an empty module (Node's own start-up,
 *   subtracted); median of `--runs` (21), the bundles measured round-robin (one process each per round). CPU time (user + system) to the same point is reported too:
 *   on a shared machine it moves far less with the load than wall time does.
 * - the query function's whole first answer, in a fresh process per run (median of 3), against the S3
 *   and DynamoDB stand-ins (s3rver + dynalite) holding an active snapshot: init + the first
 *   `POST …/query` through the handler (pointer, manifest, verified download, readIndex, search),
 *   with the handler's Server-Timing parts; for a demo-sized collection and for 1M × 64 (100k × 64
 *   with --quick). The indexes are built once and cached (bench/cold-data.ts).
 *
 * Writes bench/results/cold.json (merged per label: `bundled-sdk` by default, e.g. `runtime-sdk` for a
 * synth with -c vicinity:bundleAwsSdk=false -o cdk.out.runtime-sdk); infra/check-bundles.ts bounds
 * each bundle's init by 3× the figure recorded here. docs/performance.md holds the write-up.
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createDynamoClient, createS3Client } from '../functions/adapters/aws-clients';
import { DynamoRegistry } from '../functions/adapters/dynamo-registry';
import { S3Store } from '../functions/adapters/s3-store';
import { activateVersion } from '../functions/core/activation';
import { digestFile } from '../functions/snapshot/digest';
import type { CollectionManifest, Manifest, SnapshotFile } from '../functions/snapshot/manifest';
import {
  bundleBytes,
  type InitFigure,
  leavesSdkExternal,
  measureInits,
  median,
  readSynthesized,
  runNode,
  type StagedFunction,
  stageFunction,
} from '../infra/bundle-init';
import { PROJECT_ROOT } from '../infra/paths';
import {
  ensureBucket,
  ensureTable,
  LOCAL_CREDENTIALS,
  LOCAL_REGION,
  startDynalite,
  startS3,
} from '../local/standins';
import {
  COLD_EF_CONSTRUCTION,
  COLD_M,
  type ColdData,
  coldData,
  DEMO_SPEC,
  FULL_SPEC,
  QUICK_SPEC,
} from './cold-data';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(`--${name}`);
const option = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const quick = flag('quick');
const outDir = resolve(option('out') ?? join(PROJECT_ROOT, 'cdk.out'));
const RUNS = Number(option('runs') ?? 21);
const FIRST_RUNS = 3;
const RESULTS = join(PROJECT_ROOT, 'bench', 'results', 'cold.json');
const SPACE = 'bench';
const log = (s: string) => process.stderr.write(`${s}\n`);
const load = () =>
  loadavg()
    .map((x) => x.toFixed(1))
    .join(' / ');
const r1 = (x: number) => Math.round(x * 10) / 10;

// ---------------------------------------------------------------------------------------------
// Init of every bundle.

interface InitRow extends InitFigure {
  name: string;
  /** index.mjs alone. */
  bytes: number;
  /** index.mjs and the chunks it imports statically: what init reads and parses. */
  atInitBytes: number;
  /** The whole bundle, the chunks loaded on first use included. */
  totalBytes: number;
  mapBytes: number;
  sdk: 'bundled' | 'runtime';
}

/** Wall time of a bare `node -e ''` (spawn to exit), for scale: the init figures have it subtracted. */
async function bareNodeMs(runs: number): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await runNode(['-e', ''], { cwd: tmpdir(), env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
    xs.push(performance.now() - t0);
  }
  return median(xs);
}

async function initRows(): Promise<InitRow[]> {
  const syn = readSynthesized(outDir);
  // The shard slots share one bundle (and one service name): measured once.
  const fns = syn.functions.filter((fn, i) => syn.functions.findIndex((f) => f.name === fn.name) === i);
  const sdkExternal = await Promise.all(fns.map((fn) => leavesSdkExternal(join(fn.dir, 'index.mjs'))));
  const staged = fns.map((fn, i) => stageFunction(fn, syn.layerModules, sdkExternal[i] as boolean));
  try {
    const figures = await measureInits(staged, RUNS);
    return fns.map((fn, i) => {
      const m = figures[i] as InitFigure;
      const entry = join(fn.dir, 'index.mjs');
      const b = bundleBytes(fn.dir);
      log(`  ${fn.name}: init ${m.initMs.toFixed(1)} ms (cpu ${m.cpuMs.toFixed(1)} ms)`);
      return {
        name: fn.name,
        bytes: b.entry,
        atInitBytes: b.atInit,
        totalBytes: b.total,
        mapBytes: existsSync(`${entry}.map`) ? statSync(`${entry}.map`).size : 0,
        sdk: sdkExternal[i] ? ('runtime' as const) : ('bundled' as const),
        ...m,
      };
    });
  } finally {
    for (const s of staged) s.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// A snapshot in the stand-ins: the cached indexes as one READY, active version.

async function uploadFile(store: S3Store, key: string, path: string): Promise<SnapshotFile> {
  const d = await digestFile(path);
  await store.putFile(key, path);
  return { key, bytes: d.bytes, sha256: d.sha256, parts: d.parts };
}

async function publish(store: S3Store, registry: DynamoRegistry, data: ColdData[]): Promise<string> {
  const now = new Date();
  const releaseKey = `incoming/${SPACE}/cold/release.json`;
  const { version } = await registry.claimRelease(
    { space: SPACE, release: 'cold', key: releaseKey, sequencer: '1' },
    now,
  );
  await registry.ensureVersion({
    space: SPACE,
    version,
    number: Number(version.slice(1)),
    status: 'BUILDING',
    release: 'cold',
    releaseKey,
    sequencer: '1',
    createdAt: now.toISOString(),
  });
  await registry.acquireLease(SPACE, version, 'bench', Date.now() + 3_600_000, Date.now());
  const collections: Record<string, CollectionManifest> = {};
  for (const d of data) {
    const prefix = `snapshots/${SPACE}/${version}/${d.spec.name}/seg-0/`;
    log(`  uploading ${d.spec.label} to the S3 stand-in`);
    const [index, ids, meta] = await Promise.all([
      uploadFile(store, `${prefix}index.hnsw`, d.indexPath),
      uploadFile(store, `${prefix}ids.json`, d.idsPath),
      uploadFile(store, `${prefix}meta.json`, d.metaPath),
    ]);
    collections[d.spec.name] = {
      metric: 'cosine',
      dims: d.spec.dims,
      count: d.spec.n,
      M: COLD_M,
      efConstruction: COLD_EF_CONSTRUCTION,
      ef: 80,
      metadataFields: ['b'],
      segments: [{ count: d.spec.n, files: { index, ids, meta } }],
    };
  }
  const manifest: Manifest = {
    format: 1,
    space: SPACE,
    version,
    createdAt: now.toISOString(),
    release: 'cold',
    collections,
  };
  await store.putText(`snapshots/${SPACE}/${version}/manifest.json`, JSON.stringify(manifest));
  await registry.finishVersion(SPACE, version, 'bench', {
    status: 'READY',
    finishedAt: new Date().toISOString(),
    collections: Object.fromEntries(
      Object.entries(collections).map(([k, c]) => [
        k,
        {
          count: c.count,
          dims: c.dims,
          metric: c.metric,
          M: COLD_M,
          efConstruction: COLD_EF_CONSTRUCTION,
          ef: c.ef,
          segments: 1,
        },
      ]),
    ),
  });
  await registry.registerSpace(SPACE, now);
  const pointer = await registry.getPointer(SPACE);
  await activateVersion(registry, {
    space: SPACE,
    version,
    expectedGeneration: pointer.generation,
    by: 'cli',
  });
  return version;
}

// ---------------------------------------------------------------------------------------------
// The query function's first answer, in a fresh process.

/** Imports the bundle, then sends one query through `handler`; prints one JSON line. */
const FIRST_ANSWER_RUNNER = `const t0 = performance.now();
const m = await import(process.argv[2]);
const ready = performance.now();
const c0 = process.cpuUsage();
const body = process.argv[3];
const path = process.argv[4];
const event = {
  version: '2.0', routeKey: '$default', rawPath: path, rawQueryString: '',
  headers: { 'content-type': 'application/json' },
  requestContext: { accountId: '000000000000', apiId: 'cold', domainName: 'localhost', domainPrefix: 'cold',
    http: { method: 'POST', path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'bench-cold' },
    requestId: 'cold-1', routeKey: '$default', stage: '$default', time: new Date().toISOString(), timeEpoch: Date.now() },
  body, isBase64Encoded: false,
};
const context = { functionName: 'vicinity-query', functionVersion: '$LATEST', memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:vicinity-query', awsRequestId: 'cold-1',
  logGroupName: 'cold', logStreamName: 'cold', getRemainingTimeInMillis: () => 25000, callbackWaitsForEmptyEventLoop: true };
const r = await m.handler(event, context);
const done = performance.now();
const c1 = process.cpuUsage();
const cpu = (c) => (c.user + c.system) / 1000;
process.stdout.write('\\n@@cold ' + JSON.stringify({ importMs: ready - t0, readyMs: ready, answerMs: done - ready,
  initCpuMs: cpu(c0), answerCpuMs: cpu(c1) - cpu(c0),
  status: r.statusCode, serverTiming: r.headers?.['server-timing'] ?? '', hits: JSON.parse(r.body).results?.length }) + '\\n');
process.exit(0);
`;

interface FirstAnswer {
  collection: string;
  label: string;
  n: number;
  dims: number;
  indexBytes: number;
  /** Index + ids + metadata: what the first answer downloads. */
  snapshotBytes: number;
  /** Median run (by total): init (ready − baseline) + the first invocation. */
  initMs: number;
  answerMs: number;
  totalMs: number;
  /** CPU time (user + system, all threads) of the same run: init (baseline subtracted) and the first invocation. */
  initCpuMs: number;
  answerCpuMs: number;
  parts: Record<string, number>;
  runs: number[];
}

function parseServerTiming(h: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of h.split(',')) {
    const m = /^\s*([\w-]+)\s*;\s*dur=([\d.]+)/.exec(part);
    if (m) out[m[1] as string] = Number(m[2]);
  }
  return out;
}

async function firstAnswers(
  data: ColdData[],
  baseline: { ms: number; cpuMs: number },
): Promise<FirstAnswer[]> {
  const syn = readSynthesized(outDir);
  const fn = syn.functions.find((f) => f.name === 'vicinity-query');
  if (!fn) throw new Error('no query function in cdk.out');
  const home = await mkdtemp(join(tmpdir(), 'vicinity-bench-cold-'));
  const bucket = 'vicinity-cold';
  const table = 'vicinity-cold';
  const s3 = await startS3({ directory: join(home, 's3'), port: 0, buckets: [bucket] });
  mkdirSync(join(home, 'dynamodb'), { recursive: true });
  const dynamo = await startDynalite({ path: join(home, 'dynamodb'), port: 0 });
  const clientConfig = {
    region: LOCAL_REGION,
    s3Endpoint: s3.endpoint,
    dynamodbEndpoint: dynamo.endpoint,
    credentials: LOCAL_CREDENTIALS,
  };
  const s3Client = createS3Client(clientConfig);
  const ddb = createDynamoClient(clientConfig);
  const out: FirstAnswer[] = [];
  let staged: StagedFunction | undefined;
  try {
    await ensureBucket(s3Client, bucket);
    await ensureTable(ddb, table);
    const store = new S3Store(s3Client, bucket);
    await publish(store, new DynamoRegistry(ddb, table), data);
    staged = stageFunction(fn, syn.layerModules, await leavesSdkExternal(join(fn.dir, 'index.mjs')), {
      AWS_ENDPOINT_URL_S3: s3.endpoint,
      AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
      AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
      AWS_REGION: LOCAL_REGION,
      VICINITY_BUCKET: bucket,
      VICINITY_TABLE: table,
      POWERTOOLS_LOG_LEVEL: 'WARN',
      POWERTOOLS_METRICS_DISABLED: 'true',
    });
    writeFileSync(join(staged.task, 'first-answer.mjs'), FIRST_ANSWER_RUNNER);
    for (const d of data) {
      const path = `/v1/spaces/${SPACE}/collections/${d.spec.name}/query`;
      const body = JSON.stringify({ vector: d.query.map((x) => Number(x.toPrecision(7))), k: 10 });
      const runs: {
        initMs: number;
        answerMs: number;
        totalMs: number;
        initCpuMs: number;
        answerCpuMs: number;
        parts: Record<string, number>;
      }[] = [];
      for (let i = 0; i < FIRST_RUNS; i++) {
        const cacheDir = await mkdtemp(join(tmpdir(), 'vicinity-cold-cache-'));
        try {
          const stdout = await runNode(
            [join(staged.task, 'first-answer.mjs'), `file://${staged.entry}`, body, path],
            {
              cwd: staged.task,
              env: { ...staged.env, VICINITY_CACHE_DIR: cacheDir },
              timeoutMs: 600_000,
            },
          );
          const line = stdout.split('\n').find((l) => l.startsWith('@@cold '));
          if (!line) throw new Error(`no result from the first-answer runner: ${stdout.slice(-500)}`);
          const r = JSON.parse(line.slice(7)) as {
            readyMs: number;
            answerMs: number;
            initCpuMs: number;
            answerCpuMs: number;
            status: number;
            serverTiming: string;
            hits?: number;
          };
          if (r.status !== 200 || r.hits !== 10)
            throw new Error(`first answer: status ${r.status}, ${r.hits} hits: ${stdout.slice(-500)}`);
          const initMs = r.readyMs - baseline.ms;
          runs.push({
            initMs,
            answerMs: r.answerMs,
            totalMs: initMs + r.answerMs,
            initCpuMs: r.initCpuMs - baseline.cpuMs,
            answerCpuMs: r.answerCpuMs,
            parts: parseServerTiming(r.serverTiming),
          });
          log(
            `  ${d.spec.label}: init ${initMs.toFixed(0)} + first answer ${r.answerMs.toFixed(0)} ms (${r.serverTiming}), load ${load()}`,
          );
        } finally {
          await rm(cacheDir, { recursive: true, force: true });
        }
      }
      runs.sort((a, b) => a.totalMs - b.totalMs);
      const m = runs[Math.floor(runs.length / 2)] as (typeof runs)[number];
      out.push({
        collection: d.spec.name,
        label: d.spec.label,
        n: d.spec.n,
        dims: d.spec.dims,
        indexBytes: statSync(d.indexPath).size,
        snapshotBytes: statSync(d.indexPath).size + statSync(d.idsPath).size + statSync(d.metaPath).size,
        initMs: r1(m.initMs),
        answerMs: r1(m.answerMs),
        totalMs: r1(m.totalMs),
        initCpuMs: r1(m.initCpuMs),
        answerCpuMs: r1(m.answerCpuMs),
        parts: Object.fromEntries(Object.entries(m.parts).map(([k, v]) => [k, r1(v)])),
        runs: runs.map((r) => r1(r.totalMs)),
      });
    }
  } finally {
    staged?.dispose();
    s3Client.destroy();
    ddb.destroy();
    await s3.stop();
    await dynamo.stop();
    await rm(home, { recursive: true, force: true });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The same on Lambda: a model, not a measurement.

/** Lambda's CPU share grows with memory: 1,769 MB = 1 vCPU (AWS documentation); capped at 6 vCPUs. */
const vcpu = (memoryMb: number) => Math.min(6, memoryMb / 1769);
/** One S3 GET connection: ~90 MB/s; the cache fetches parts in parallel, modelled as 4 connections. */
const S3_MB_PER_S_PER_CONNECTION = 90;
const S3_CONNECTIONS = 4;

interface Modelled {
  memoryMb: number;
  vcpu: number;
  initMs: number;
  downloadMs: number;
  cpuMs: number;
  totalMs: number;
}

/**
 * From this machine's CPU time (wall time here depends on the other tenants of the shared cores):
 * init and the first invocation's CPU work (clients, pointer, manifest, hashing, readIndex, parsing
 * ids and metadata, search) take their CPU time divided by min(1, vCPU) — one thread does most of it;
 * the download is the snapshot's bytes over S3_CONNECTIONS × 90 MB/s, added in full (the hashing
 * that overlaps it is already in the CPU time, so the sum errs on the slow side). DynamoDB and S3
 * round trips (a few ms each on Lambda, against loopback here) are left out.
 */
function model(a: FirstAnswer, memoryMb: number): Modelled {
  const slow = 1 / Math.min(1, vcpu(memoryMb));
  const downloadMs = (a.snapshotBytes / 1e6 / (S3_MB_PER_S_PER_CONNECTION * S3_CONNECTIONS)) * 1000;
  const initMs = a.initCpuMs * slow;
  const cpuMs = a.answerCpuMs * slow;
  return {
    memoryMb,
    vcpu: Math.round(vcpu(memoryMb) * 100) / 100,
    initMs: Math.round(initMs),
    downloadMs: Math.round(downloadMs),
    cpuMs: Math.round(cpuMs),
    totalMs: Math.round(initMs + downloadMs + cpuMs),
  };
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const label = option('label') ?? 'bundled-sdk';
  const startLoad = load();
  log(`bench:cold ${quick ? '--quick ' : ''}from ${outDir} (load ${startLoad})`);
  const bareMs = await bareNodeMs(RUNS);
  log(`  bare node -e '': ${bareMs.toFixed(1)} ms spawn to exit`);
  const init = await initRows();

  let first: FirstAnswer[] = [];
  let models: Record<string, Modelled[]> = {};
  if (!flag('no-first')) {
    const data = [await coldData(DEMO_SPEC), await coldData(quick ? QUICK_SPEC : FULL_SPEC)];
    const query = init.find((r) => r.name === 'vicinity-query');
    first = await firstAnswers(data, { ms: query?.baselineMs ?? 0, cpuMs: query?.baselineCpuMs ?? 0 });
    models = Object.fromEntries(
      first.map((a) => [a.collection, [1024, 1769, 2048, 3008].map((mb) => model(a, mb))]),
    );
  }

  const result = {
    date: new Date().toISOString(),
    node: process.version,
    quick,
    outDir,
    loadAverage: { start: startLoad, end: load() },
    cpus: 'shared',
    bareNodeMs: r1(bareMs),
    init: Object.fromEntries(
      init.map((r) => [
        r.name,
        {
          sdk: r.sdk,
          bytes: r.bytes,
          atInitBytes: r.atInitBytes,
          totalBytes: r.totalBytes,
          mapBytes: r.mapBytes,
          initMs: r1(r.initMs),
          cpuMs: r1(r.cpuMs),
          importMs: r1(r.importMs),
          baselineMs: r1(r.baselineMs),
          samples: r.samples.map(r1),
        },
      ]),
    ),
    firstAnswer: first,
    model: models,
  };
  const all = existsSync(RESULTS)
    ? (JSON.parse(readFileSync(RESULTS, 'utf8')) as Record<string, unknown>)
    : {};
  all[label] = result;
  writeFileSync(RESULTS, `${JSON.stringify(all, null, 2)}\n`);

  console.log(
    `\nInit (median of ${RUNS} fresh processes, empty-module baseline subtracted; load ${startLoad} → ${load()}):`,
  );
  console.log('function              at init / whole bundle   sdk       init ms   cpu ms   import ms');
  const kb = (n: number) => `${Math.round(n / 1024)} KB`;
  for (const r of init) {
    console.log(
      `${r.name.padEnd(21)} ${`${kb(r.atInitBytes)} / ${kb(r.totalBytes)}`.padStart(17)}   ${r.sdk.padEnd(8)} ${r.initMs
        .toFixed(1)
        .padStart(8)} ${r.cpuMs.toFixed(1).padStart(8)} ${r.importMs.toFixed(1).padStart(10)}`,
    );
  }
  console.log(
    `(bare node -e '' spawn→exit: ${bareMs.toFixed(1)} ms; empty-module runner ready at ${init[0]?.baselineMs.toFixed(1)} ms)`,
  );
  for (const a of first) {
    console.log(
      `\nFirst answer, ${a.label} (${(a.snapshotBytes / 1e6).toFixed(1)} MB snapshot), median of ${FIRST_RUNS}: ${a.totalMs} ms = init ${a.initMs} + first invocation ${a.answerMs} (CPU ${a.initCpuMs} + ${a.answerCpuMs})`,
    );
    console.log(
      `  Server-Timing: ${Object.entries(a.parts)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
    );
    for (const m of models[a.collection] ?? [])
      console.log(
        `  model on Lambda ${m.memoryMb} MB (${m.vcpu} vCPU): init ${m.initMs} + download ${m.downloadMs} + CPU ${m.cpuMs} = ${m.totalMs} ms`,
      );
  }
  console.log(`\nwrote ${RESULTS} [${label}]`);
}

await main();
