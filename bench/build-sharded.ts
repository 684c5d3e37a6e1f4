/**
 * npm run bench:build -- --sharded [--quick] — the same clustered data (8 Parquet part files) built as
 * 1 shard (the build function alone, in its own process) and as 8 shards (the build plans; partition
 * and shard tasks run on the local Lambda Invoke stand-in, a pool of 2 worker processes). Reports the
 * whole build time, the slowest shard task, peak RSS per task and recall@10 of both.
 * Default 2M × 64 (long: for a quiet machine); --quick 200k × 64; `--n=300000 --dims=64 --shards=1,8
 * --pool=2` for any other size. Writes bench/results/build-sharded{-quick|-n×d}.json.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { createDynamoClient, createS3Client } from '../functions/adapters/aws-clients';
import { DynamoRegistry } from '../functions/adapters/dynamo-registry';
import { loadConfig } from '../functions/common/config';
import { startLocalTasks } from '../local/build-tasks';
import {
  ensureBucket,
  ensureTable,
  LOCAL_CREDENTIALS,
  LOCAL_REGION,
  startDynalite,
  startS3,
} from '../local/standins';
import { clusteredVectors } from '../local/synthetic';

process.env.POWERTOOLS_METRICS_DISABLED = 'true';
process.env.POWERTOOLS_LOG_LEVEL = 'ERROR';
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const quick = process.argv.includes('--quick');
const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
const N = Number(arg('n') ?? (quick ? 200_000 : 2_000_000));
const DIMS = Number(arg('dims') ?? 64);
const PARTS = 8;
const SHARD_COUNTS = (arg('shards') ?? '1,8').split(',').map(Number);
const POOL = Number(arg('pool') ?? 2);
const custom = arg('n') !== undefined || arg('dims') !== undefined;
const resultName = custom ? `build-sharded-${N}x${DIMS}` : `build-sharded${quick ? '-quick' : ''}`;

function partFile(ids: string[], vectors: Float32Array, from: number, to: number): Buffer {
  const rows = ids.slice(from, to);
  return Buffer.from(
    parquetWriteBuffer({
      schema: [
        { name: 'root', num_children: 2 },
        { name: 'id', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' },
        { name: 'vector', repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
        { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
        { name: 'element', type: 'FLOAT', repetition_type: 'OPTIONAL' },
      ],
      columnData: [
        { name: 'id', data: rows },
        {
          name: 'vector',
          data: rows.map((_, i) => Array.from(vectors.subarray((from + i) * DIMS, (from + i + 1) * DIMS))),
        },
      ],
      codec: 'SNAPPY',
      rowGroupSize: 50_000,
    }),
  );
}

function runBuild(env: NodeJS.ProcessEnv, event: unknown) {
  return new Promise<{ wallMs: number; maxRssMb: number; outcomes: { status: string }[] }>(
    (resolve, reject) => {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', 'bench/build-child.ts', JSON.stringify(event)],
        {
          env,
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
      });
      child.on('exit', (code) => {
        try {
          resolve(JSON.parse(out.trim().split('\n').pop() ?? ''));
        } catch {
          reject(new Error(`build child exited ${code}: ${out.slice(-2000)}`));
        }
      });
    },
  );
}

async function main() {
  if (!SHARD_COUNTS.every((n) => Number.isInteger(n) && n >= 1) || !(N > 0) || !(DIMS > 0))
    throw new Error('--n, --dims and --shards (comma-separated) must be positive integers');
  const home = await mkdtemp(join(tmpdir(), 'vicinity-bench-sharded-'));
  const bucket = 'bench';
  const s3 = await startS3({ directory: join(home, 's3'), buckets: [bucket] });
  const ddb = await startDynalite({});
  const client = {
    region: LOCAL_REGION,
    s3Endpoint: s3.endpoint,
    dynamodbEndpoint: ddb.endpoint,
    credentials: LOCAL_CREDENTIALS,
  };
  const s3Client = createS3Client(client);
  const ddbClient = createDynamoClient(client);
  await ensureBucket(s3Client, bucket);
  await ensureTable(ddbClient, 'bench');
  const registry = new DynamoRegistry(ddbClient, 'bench');
  const tasks = await startLocalTasks({ concurrency: POOL }, (l) => console.error(l));
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    VICINITY_BUCKET: bucket,
    VICINITY_TABLE: 'bench',
    AWS_REGION: LOCAL_REGION,
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    AWS_ENDPOINT_URL_DYNAMODB: ddb.endpoint,
    AWS_ENDPOINT_URL_LAMBDA: tasks.lambda.endpoint,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    VICINITY_CACHE_DIR: join(home, 'cache'),
    VICINITY_TASK_MEMORY_MB: '4096',
    VICINITY_FILE_WAIT_MS: '1000',
  };
  const config = loadConfig(env);
  tasks.configure(config, env);

  console.error(`generating ${N} × ${DIMS} as ${PARTS} Parquet parts …`);
  const data = clusteredVectors(N, DIMS, 100, 42);
  const ids = Array.from({ length: N }, (_, i) => `item-${i}`);
  const per = Math.ceil(N / PARTS);
  const names: string[] = [];
  for (let p = 0; p < PARTS; p++) {
    const name = `part-0000${p}.snappy.parquet`;
    names.push(name);
    const body = partFile(ids, data.vectors, p * per, Math.min(N, (p + 1) * per));
    for (const shards of SHARD_COUNTS) {
      await s3Client.send(
        new PutObjectCommand({ Bucket: bucket, Key: `incoming/s${shards}/r1/${name}`, Body: body }),
      );
    }
  }

  const rows: Record<string, unknown>[] = [];
  try {
    for (const shards of SHARD_COUNTS) {
      const space = `s${shards}`;
      const key = `incoming/${space}/r1/release.json`;
      await s3Client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: JSON.stringify({ collections: { items: { files: names, metric: 'cosine', shards } } }),
        }),
      );
      const event = {
        Records: [{ eventName: 'ObjectCreated:Put', s3: { object: { key, sequencer: '1' } } }],
      };
      const load = loadavg()[0];
      const started = Date.now();
      const build = await runBuild(env, event);
      let v = await registry.getVersion(space, 'v1');
      while (v?.status === 'BUILDING') {
        await new Promise((r) => setTimeout(r, 500));
        v = await registry.getVersion(space, 'v1');
      }
      const wholeS = (Date.now() - started) / 1000;
      // The finaliser's after-READY work (activation, retention, staging deleted) ends before the next run.
      await tasks.lambda.idle();
      const t = v?.timings ?? {};
      const row = {
        n: N,
        dims: DIMS,
        shards,
        status: v?.status,
        wholeBuildS: Number(wholeS.toFixed(1)),
        slowestTaskS: Number(
          ((shards === 1 ? build.wallMs : (t['items.slowestShardMs'] ?? 0)) / 1000).toFixed(1),
        ),
        peakRssMbPerTask: Math.round(shards === 1 ? build.maxRssMb : (t['items.maxShardRssMb'] ?? 0)),
        recallAt10: v?.collections?.items?.recallAt10,
        pool: shards === 1 ? 1 : POOL,
        loadAvg1m: Number(load?.toFixed(2)),
        ...(v?.reason ? { reason: v.reason } : {}),
      };
      rows.push(row);
      console.error(JSON.stringify(row));
    }
  } finally {
    await tasks.lambda.stop();
    s3Client.destroy();
    ddbClient.destroy();
    await s3.stop();
    await ddb.stop();
    await rm(home, { recursive: true, force: true });
  }
  console.log(
    [
      '| N × d | shards | task pool | status | whole build s | slowest task s | peak RSS MB per task | recall@10 | load 1m |',
      '|---|---|---|---|---|---|---|---|---|',
      ...rows.map(
        (r) =>
          `| ${(r.n as number).toLocaleString('en')} × ${r.dims} | ${r.shards} | ${r.pool} | ${r.status} | ${r.wholeBuildS} | ${r.slowestTaskS} | ${r.peakRssMbPerTask} | ${r.recallAt10 ?? '–'} | ${r.loadAvg1m} |`,
      ),
      ...rows.filter((r) => r.reason).map((r) => `${r.shards} shards: ${r.reason}`),
    ].join('\n'),
  );
  await mkdir(join('bench', 'results'), { recursive: true });
  await writeFile(join('bench', 'results', `${resultName}.json`), `${JSON.stringify(rows, null, 2)}\n`);
}

await main();
