/**
 * npm run bench:build [-- --quick] — generates clustered synthetic data (Gaussian clusters,
 * L2-normalised), uploads it to the local S3 stand-in as releases, and measures: rows/s parsed per
 * input format (the real readers, streaming from S3), and a whole build (parse + index + quality gate +
 * snapshot upload) by the build handler in its own process, with its peak RSS.
 * Writes bench/results/build.json and prints a markdown table.
 * `-- --sharded`: 1 shard vs 8 shards on build tasks (bench/build-sharded.ts).
 */
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetWriteFile } from 'hyparquet-writer';
import { createDynamoClient, createS3Client } from '../functions/adapters/aws-clients';
import { DynamoRegistry } from '../functions/adapters/dynamo-registry';
import { readerFor } from '../functions/adapters/readers';
import { ProblemCollector } from '../functions/adapters/readers/types';
import { S3Store } from '../functions/adapters/s3-store';
import { s3ReleaseFiles } from '../functions/builder/s3-release-files';
import { type InputFormat, parseRelease } from '../functions/core/release';
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
/** `--only 1000000x64` runs one case; `--efc 100` overrides efConstruction (to compare defaults). */
const argAfter = (flag: string) => {
  const i = process.argv.indexOf(flag);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const only = argAfter('--only');
const efc = argAfter('--efc');
const CACHE = join(tmpdir(), 'vicinity-bench-data');

interface Case {
  n: number;
  dims: number;
  formats: InputFormat[];
  build: InputFormat;
}
const ALL_CASES: Case[] = quick
  ? [{ n: 100_000, dims: 64, formats: ['jsonl', 'jsonl.gz', 'parquet', 'raw'], build: 'jsonl' }]
  : [
      { n: 100_000, dims: 64, formats: ['jsonl', 'jsonl.gz', 'parquet', 'raw'], build: 'jsonl' },
      { n: 1_000_000, dims: 64, formats: ['jsonl', 'raw'], build: 'jsonl' },
      { n: 100_000, dims: 768, formats: ['jsonl', 'raw'], build: 'raw' },
    ];
const CASES = only ? ALL_CASES.filter((c) => `${c.n}x${c.dims}` === only) : ALL_CASES;

async function writeLines(path: string, n: number, line: (i: number) => string, gzip = false): Promise<void> {
  const { createGzip } = await import('node:zlib');
  const file = createWriteStream(path);
  const out = gzip ? createGzip({ level: 6 }) : file;
  if (gzip) out.pipe(file);
  for (let i = 0; i < n; i++) {
    if (!out.write(`${line(i)}\n`)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((r) => {
    file.once('finish', () => r());
    out.end();
  });
}

/** Files for one case, generated once and cached (the 1M JSONL is ~800 MB). */
async function generate(c: Case): Promise<string> {
  const dir = join(CACHE, `${c.n}x${c.dims}`);
  const done = join(dir, '.done');
  if (existsSync(done)) return dir;
  await mkdir(dir, { recursive: true });
  console.error(`generating ${c.n} × ${c.dims} …`);
  const { vectors } = clusteredVectors(c.n, c.dims, Math.max(16, Math.round(Math.sqrt(c.n) / 4)), 42);
  const id = (i: number) => `item-${i}`;
  const row = (i: number) =>
    JSON.stringify({
      id: id(i),
      vector: Array.from(vectors.subarray(i * c.dims, (i + 1) * c.dims)),
      metadata: { cluster: i % 97 },
    });
  await writeLines(join(dir, 'items.jsonl'), c.n, row);
  if (c.n <= 100_000) await writeLines(join(dir, 'items.jsonl.gz'), c.n, row, true);
  await writeFile(
    join(dir, 'items.f32'),
    Buffer.from(vectors.buffer, vectors.byteOffset, vectors.byteLength),
  );
  await writeLines(join(dir, 'items.ids'), c.n, id);
  if (c.n <= 100_000) {
    const list = Array.from({ length: c.n }, (_, i) =>
      Array.from(vectors.subarray(i * c.dims, (i + 1) * c.dims)),
    );
    parquetWriteFile({
      filename: join(dir, 'items.parquet'),
      schema: [
        { name: 'root', num_children: 3 },
        { name: 'id', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' },
        { name: 'vector', repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
        { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
        { name: 'element', type: 'FLOAT', repetition_type: 'OPTIONAL' },
        { name: 'cluster', type: 'INT32', repetition_type: 'OPTIONAL' },
      ],
      columnData: [
        { name: 'id', data: Array.from({ length: c.n }, (_, i) => id(i)) },
        { name: 'vector', data: list },
        { name: 'cluster', data: Array.from({ length: c.n }, (_, i) => i % 97) },
      ],
      codec: 'SNAPPY',
      rowGroupSize: 50_000,
    });
  }
  await writeFile(done, '');
  return dir;
}

function specFor(format: InputFormat, dims: number) {
  const spec = specOf(format, dims);
  return efc ? { ...spec, efConstruction: Number(efc) } : spec;
}

function specOf(format: InputFormat, dims: number) {
  switch (format) {
    case 'raw':
      return { vectors: 'items.f32', ids: 'items.ids', dims, metric: 'cosine' };
    case 'parquet':
      return { file: 'items.parquet', metric: 'cosine' };
    case 'jsonl.gz':
      return { file: 'items.jsonl.gz', metric: 'cosine' };
    default:
      return { file: 'items.jsonl', metric: 'cosine' };
  }
}

const filesOf = (format: InputFormat) =>
  format === 'raw'
    ? ['items.f32', 'items.ids']
    : [format === 'parquet' ? 'items.parquet' : `items.${format}`];

async function main() {
  const home = await mkdtemp(join(tmpdir(), 'vicinity-bench-build-'));
  // Bare stand-ins, no local stack: the only builder is the child process below.
  const s3 = await startS3({ directory: join(home, 's3'), buckets: ['bench'] });
  const ddb = await startDynalite({});
  const clientConfig = {
    region: LOCAL_REGION,
    s3Endpoint: s3.endpoint,
    dynamodbEndpoint: ddb.endpoint,
    credentials: { ...LOCAL_CREDENTIALS },
  };
  const s3Client = createS3Client(clientConfig);
  const ddbClient = createDynamoClient(clientConfig);
  await ensureBucket(s3Client, 'bench');
  await ensureTable(ddbClient, 'bench');
  const info = { bucket: 'bench', table: 'bench', s3Endpoint: s3.endpoint, dynamodbEndpoint: ddb.endpoint };
  const store = new S3Store(s3Client, info.bucket);
  const registry = new DynamoRegistry(ddbClient, info.table);
  const rows: Record<string, unknown>[] = [];
  try {
    for (const c of CASES) {
      const dir = await generate(c);
      const space = `bench-${c.n}x${c.dims}`;
      const uploaded = new Set<string>();
      const upload = async (release: string, file: string) => {
        const key = `incoming/${space}/${release}/${file}`;
        if (uploaded.has(key)) return;
        await store.putFile(key, join(dir, file));
        uploaded.add(key);
      };
      // Parse throughput per format: the real reader streaming from S3, nothing else.
      const parse: Record<string, number> = {};
      for (const format of c.formats) {
        for (const f of filesOf(format)) await upload('parse', f);
        const spec = (await parseRelease(JSON.stringify({ collections: { items: specFor(format, c.dims) } })))
          .collections[0]!;
        const problems = new ProblemCollector();
        const t0 = performance.now();
        let n = 0;
        for await (const _ of readerFor(format)({
          spec,
          files: s3ReleaseFiles(store, `incoming/${space}/parse/`),
          problems,
          maxLineBytes: 1 << 20,
        })) {
          n++;
        }
        const s = (performance.now() - t0) / 1000;
        if (!problems.ok || n !== c.n)
          throw new Error(`parse ${format}: ${n} rows, ${problems.count} problems`);
        parse[format] = Math.round(n / s);
        console.error(`  ${c.n}×${c.dims} ${format}: ${parse[format]} rows/s`);
      }
      // A whole build, by the build handler in its own process, as Lambda runs it.
      for (const f of filesOf(c.build)) await upload('build', f);
      const key = `incoming/${space}/build/release.json`;
      await store.putText(
        key,
        JSON.stringify({ collections: { items: specFor(c.build, c.dims) }, activate: true }),
      );
      const event = {
        Records: [
          {
            eventName: 'ObjectCreated:Put',
            s3: { bucket: { name: info.bucket }, object: { key, sequencer: `${Date.now()}` } },
          },
        ],
      };
      const child = await runChild(event, info, home);
      const outcome = child.outcomes[0] as { status: string; version: string };
      const record = await registry.getVersion(space, outcome.version);
      const t = record?.timings ?? {};
      const row = {
        n: c.n,
        dims: c.dims,
        format: c.build,
        parseRowsPerSec: parse,
        status: outcome.status,
        parseS: (t['items.parseMs'] ?? 0) / 1000,
        indexS: (t['items.indexMs'] ?? 0) / 1000,
        qualityS: (t['items.qualityMs'] ?? 0) / 1000,
        uploadS: (t['items.uploadMs'] ?? 0) / 1000,
        totalS: child.wallMs / 1000,
        peakRssMb: Math.round(child.maxRssMb),
        segments: record?.collections?.items?.segments,
        recallAt10: record?.collections?.items?.recallAt10,
      };
      rows.push(row);
      console.error(`  build: ${JSON.stringify(row)}`);
    }
  } finally {
    s3Client.destroy();
    ddbClient.destroy();
    await s3.stop();
    await ddb.stop();
    await rm(home, { recursive: true, force: true });
  }
  const lines = [
    '| N × d | parse rows/s (jsonl / jsonl.gz / parquet / raw) | build input | parse s | index s | quality s | upload s | whole build s | peak RSS MB | segments | recall@10 |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => {
      const p = r.parseRowsPerSec as Record<string, number>;
      const f = (k: string) => (p[k] ? p[k].toLocaleString('en') : '–');
      return `| ${(r.n as number).toLocaleString('en')} × ${r.dims} | ${f('jsonl')} / ${f('jsonl.gz')} / ${f('parquet')} / ${f('raw')} | ${r.format} | ${(r.parseS as number).toFixed(1)} | ${(r.indexS as number).toFixed(1)} | ${(r.qualityS as number).toFixed(1)} | ${(r.uploadS as number).toFixed(1)} | ${(r.totalS as number).toFixed(1)} | ${r.peakRssMb} | ${r.segments} | ${r.recallAt10} |`;
    }),
  ];
  console.log(lines.join('\n'));
  await mkdir(join('bench', 'results'), { recursive: true });
  const name = quick ? 'build-quick' : only ? `build-${only}${efc ? `-efc${efc}` : ''}` : 'build';
  await writeFile(join('bench', 'results', `${name}.json`), `${JSON.stringify(rows, null, 2)}\n`);
}

function runChild(
  event: unknown,
  info: { bucket: string; table: string; s3Endpoint: string; dynamodbEndpoint: string },
  home: string,
) {
  return new Promise<{ outcomes: unknown[]; wallMs: number; maxRssMb: number }>((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'bench/build-child.ts', JSON.stringify(event)],
      {
        env: {
          ...process.env,
          VICINITY_BUCKET: info.bucket,
          VICINITY_TABLE: info.table,
          AWS_REGION: 'us-east-1',
          AWS_ENDPOINT_URL_S3: info.s3Endpoint,
          AWS_ENDPOINT_URL_DYNAMODB: info.dynamodbEndpoint,
          AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
          AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
          VICINITY_CACHE_DIR: join(home, 'child-cache'),
          POWERTOOLS_LOG_LEVEL: 'INFO',
        },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.on('exit', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(last));
      } catch {
        reject(new Error(`build child exited ${code}: ${out.slice(-2000)}`));
      }
    });
  });
}

if (process.argv.includes('--sharded')) await import('./build-sharded');
else await main();
