/**
 * Data for `npm run bench:cold`: a clustered, L2-normalised synthetic collection, its HNSW index, ids
 * and metadata files, cached under os.tmpdir() so reruns skip the build (1M × 64 takes minutes).
 * Only the first answer's cost is measured, so the index is built with efConstruction 100 (the file,
 * hence download and readIndex, is the same size as with 200: it depends on n, dims and M only).
 *
 * `tsx bench/cold-data.ts [--quick]` builds the caches only.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hnswEngine } from '../functions/adapters/hnsw-index';
import { clusteredVectors } from '../local/synthetic';

export const COLD_CACHE_DIR = process.env.VICINITY_BENCH_CACHE ?? join(tmpdir(), 'vicinity-bench-cold');
export const COLD_M = 16;
export const COLD_EF_CONSTRUCTION = 100;

export interface ColdSpec {
  /** Collection name in the snapshot. */
  name: string;
  label: string;
  n: number;
  dims: number;
  clusters: number;
  seed: number;
}

/** Demo-sized: the Last.fm demo's artists collection (17,632 artists, 64 factors). */
export const DEMO_SPEC: ColdSpec = {
  name: 'demo',
  label: 'demo-sized (17,632 × 64)',
  n: 17_632,
  dims: 64,
  clusters: 50,
  seed: 17,
};
export const QUICK_SPEC: ColdSpec = {
  name: 'n100k',
  label: '100k × 64',
  n: 100_000,
  dims: 64,
  clusters: 100,
  seed: 100,
};
export const FULL_SPEC: ColdSpec = {
  name: 'n1m',
  label: '1M × 64',
  n: 1_000_000,
  dims: 64,
  clusters: 1000,
  seed: 64,
};

export interface ColdData {
  spec: ColdSpec;
  indexPath: string;
  idsPath: string;
  metaPath: string;
  /** A held-out vector from the same clusters (not in the index). */
  query: number[];
  buildMs: number;
}

const log = (s: string) => process.stderr.write(`${s}\n`);

export async function coldData(spec: ColdSpec): Promise<ColdData> {
  const dir = join(COLD_CACHE_DIR, `${spec.n}x${spec.dims}-c${spec.clusters}-s${spec.seed}`);
  await mkdir(dir, { recursive: true });
  const indexPath = join(dir, `index-M${COLD_M}-efc${COLD_EF_CONSTRUCTION}.hnsw`);
  const idsPath = join(dir, 'ids.json');
  const metaPath = join(dir, 'meta.json');
  const infoPath = join(dir, 'info.json');
  if (existsSync(infoPath) && existsSync(indexPath)) {
    const info = JSON.parse(await readFile(infoPath, 'utf8')) as { query: number[]; buildMs: number };
    return { spec, indexPath, idsPath, metaPath, ...info };
  }
  log(
    `${spec.label}: generating vectors and building HNSW (M=${COLD_M}, efConstruction=${COLD_EF_CONSTRUCTION})`,
  );
  const { n, dims } = spec;
  const all = clusteredVectors(n + 1, dims, spec.clusters, spec.seed).vectors;
  const t0 = performance.now();
  const b = hnswEngine.create('cosine', dims, n, COLD_M, COLD_EF_CONSTRUCTION);
  let last = t0;
  for (let i = 0; i < n; i++) {
    b.add(Array.from(all.subarray(i * dims, (i + 1) * dims)), i);
    if (performance.now() - last > 15_000) {
      last = performance.now();
      log(`  ${Math.round((100 * i) / n)}%`);
    }
  }
  const buildMs = performance.now() - t0;
  await b.write(indexPath);
  await writeFile(idsPath, JSON.stringify(Array.from({ length: n }, (_, i) => `i${i}`)));
  await writeFile(metaPath, JSON.stringify(Array.from({ length: n }, (_, i) => ({ b: i % 1000 }))));
  const query = Array.from(all.subarray(n * dims, (n + 1) * dims));
  await writeFile(infoPath, JSON.stringify({ query, buildMs }));
  log(`${spec.label}: built in ${(buildMs / 1000).toFixed(1)} s`);
  return { spec, indexPath, idsPath, metaPath, query, buildMs };
}

if (process.argv[1]?.endsWith('cold-data.ts')) {
  const quick = process.argv.includes('--quick');
  for (const s of [DEMO_SPEC, quick ? QUICK_SPEC : FULL_SPEC]) await coldData(s);
}
