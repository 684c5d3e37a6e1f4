/**
 * Data for `npm run bench:query`: clustered, L2-normalised synthetic collections, their HNSW indexes
 * and exact top-10 ground truth, cached under os.tmpdir() so reruns skip the slow parts (the 1M × 64
 * build is ~5 minutes on one core).
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hnswEngine } from '../functions/adapters/hnsw-index';
import { bruteForce, distance, tieAwareRecall } from '../functions/core/search';
import { clusteredVectors } from '../local/synthetic';

export const CACHE_DIR = process.env.VICINITY_BENCH_CACHE ?? join(tmpdir(), 'vicinity-bench-query');
export const M = 16;
export const EF_CONSTRUCTION = 200;
export const QUERIES = 1000;

export interface DatasetSpec {
  name: string;
  n: number;
  dims: number;
  clusters: number;
  seed: number;
}

export const DATASETS: DatasetSpec[] = [
  { name: '100k x 128', n: 100_000, dims: 128, clusters: 100, seed: 128 },
  { name: '1M x 64', n: 1_000_000, dims: 64, clusters: 1000, seed: 64 },
];

export interface Dataset extends DatasetSpec {
  dir: string;
  /** n rows, unit length, row-major. */
  vectors: Float32Array;
  /** QUERIES held-out rows from the same clusters (not in the index). */
  queries: number[][];
  ids: string[];
  /** Metadata: `b` = label % 1000, so `{"b":{"lte":x}}` allows (x+1)/1000 of the items. */
  meta: { b: number }[];
  indexPath: string;
  indexBuildMs: number;
  /** Exact top-10 ids of each query. */
  truth: string[][];
  /** Exact brute-force time per query (ms, median of 20). */
  bruteForceMs: number;
}

const log = (s: string) => process.stderr.write(`${s}\n`);

async function cached<T>(path: string, make: () => Promise<T>): Promise<T> {
  if (existsSync(path)) return JSON.parse(await readFile(path, 'utf8')) as T;
  const v = await make();
  await writeFile(path, JSON.stringify(v));
  return v;
}

export async function dataset(spec: DatasetSpec): Promise<Dataset> {
  const dir = join(CACHE_DIR, `${spec.n}x${spec.dims}-c${spec.clusters}-s${spec.seed}`);
  await mkdir(dir, { recursive: true });
  const vecPath = join(dir, 'vectors.f32');
  let all: Float32Array;
  if (existsSync(vecPath)) {
    const buf = await readFile(vecPath);
    all = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  } else {
    log(`${spec.name}: generating ${spec.n + QUERIES} vectors`);
    all = clusteredVectors(spec.n + QUERIES, spec.dims, spec.clusters, spec.seed).vectors;
    await writeFile(vecPath, Buffer.from(all.buffer, all.byteOffset, all.byteLength));
  }
  const { n, dims } = spec;
  const vectors = all.subarray(0, n * dims);
  const queries = Array.from({ length: QUERIES }, (_, j) =>
    Array.from(all.subarray((n + j) * dims, (n + j + 1) * dims)),
  );
  const ids = Array.from({ length: n }, (_, i) => String(i));
  const meta = Array.from({ length: n }, (_, i) => ({ b: i % 1000 }));

  const indexPath = join(dir, `index-M${M}-efc${EF_CONSTRUCTION}.hnsw`);
  const build = await cached(join(dir, `index-M${M}-efc${EF_CONSTRUCTION}.json`), async () => {
    log(`${spec.name}: building HNSW (M=${M}, efConstruction=${EF_CONSTRUCTION}) — cached afterwards`);
    const t0 = performance.now();
    const b = hnswEngine.create('cosine', dims, n, M, EF_CONSTRUCTION);
    let last = t0;
    for (let i = 0; i < n; i++) {
      b.add(Array.from(vectors.subarray(i * dims, (i + 1) * dims)), i);
      if (performance.now() - last > 15_000) {
        last = performance.now();
        log(`  ${Math.round((100 * i) / n)}%`);
      }
    }
    const ms = performance.now() - t0;
    await b.write(indexPath);
    return { buildMs: ms };
  });

  const truth = await cached(join(dir, `truth-${QUERIES}.json`), async () => {
    log(`${spec.name}: exact top-10 of ${QUERIES} queries`);
    return queries.map((q) => bruteForce('cosine', dims, vectors, ids, q, 10).map((h) => h.id));
  });
  const times: number[] = [];
  for (const q of queries.slice(0, 20)) {
    const t = performance.now();
    bruteForce('cosine', dims, vectors, ids, q, 10);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return {
    ...spec,
    dir,
    vectors,
    queries,
    ids,
    meta,
    indexPath,
    indexBuildMs: build.buildMs,
    truth,
    bruteForceMs: times[10] as number,
  };
}

/**
 * recall@10 counting ties (docs/contract.md, "Ties and duplicate vectors"): a returned id is a hit when
 * its exact distance to the query is at most the exact 10th distance + ε. Ids are row numbers.
 */
export function recallAt10(
  d: Pick<Dataset, 'vectors' | 'dims' | 'queries' | 'truth'>,
  got: string[][],
): number {
  const dist = (q: number[], id: string) => {
    const r = Number(id);
    return distance('cosine', q, d.vectors.subarray(r * d.dims, (r + 1) * d.dims));
  };
  let sum = 0;
  got.forEach((g, i) => {
    const q = d.queries[i] as number[];
    const truth = (d.truth[i] as string[]).map((id) => dist(q, id)).sort((a, b) => a - b);
    sum += tieAwareRecall(
      g.slice(0, 10).map((id) => dist(q, id)),
      truth,
      10,
    );
  });
  return got.length ? sum / got.length : 1;
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number;
}

if (process.argv[1]?.endsWith('query-data.ts')) {
  // `tsx bench/query-data.ts [--quick]`: build the caches only.
  const quick = process.argv.includes('--quick');
  for (const spec of quick ? DATASETS.slice(0, 1) : DATASETS) {
    const d = await dataset(spec);
    log(
      `${d.name}: ready (build ${(d.indexBuildMs / 1000).toFixed(1)} s, brute force ${d.bruteForceMs.toFixed(1)} ms/query)`,
    );
  }
}
