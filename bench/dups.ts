/**
 * npm run bench:dups [-- --n 20000 --dims 16] — duplicate vectors and the HNSW graph. Collections of n
 * random vectors (uniform in [-1, 1]^dims, cosine) where 0%, 25% and 90% of the items share one
 * vector, built with the defaults (M=16, efConstruction=200, ef=80), one segment, one worker thread.
 *
 * - before: main's code path — every row added to hnswlib; recall as main's gate measured it (ids of
 *   the exact top-10 found) and tie-aware (docs/contract.md, "Ties and duplicate vectors").
 * - after: buildIndex as the builder runs it now — one element per distinct vector, expanded into its
 *   items in id order (adapters/grouped-index.ts); tie-aware recall.
 *
 * Queries: 200 items sampled with the gate's stride, each item itself left out, k=10. p50 is one
 * search (hnswlib + expansion + merge, no HTTP). Writes bench/results/dups.json and prints a table.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exactDistance, exactNeighbours } from '../functions/adapters/exact-workers';
import { hnswEngine } from '../functions/adapters/hnsw-index';
import { buildSegmentsInWorkers } from '../functions/adapters/hnsw-workers';
import { buildIndex, rowOf } from '../functions/builder/index-build';
import { sampleRows } from '../functions/builder/quality-gate';
import { VectorTable } from '../functions/builder/vector-table';
import type { Config } from '../functions/common/config';
import { silentLog } from '../functions/core/ports';
import { mulberry32 } from '../functions/core/random';
import type { CollectionSpec } from '../functions/core/release';
import { mergeNeighbours, tieAwareRecall } from '../functions/core/search';

const argAfter = (flag: string) => {
  const i = process.argv.indexOf(flag);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const N = Number(argAfter('--n') ?? 20_000);
const DIMS = Number(argAfter('--dims') ?? 16);
const SHARES = [0, 0.25, 0.9];
const K = 10;
const M = 16;
const EFC = 200;
const EF = 80;
const SAMPLE = 200;

const log = (s: string) => process.stderr.write(`${s}\n`);
const r3 = (x: number) => Math.round(x * 1000) / 1000;
const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

function table(share: number): VectorTable {
  const rand = mulberry32(1234);
  const common = Array.from({ length: DIMS }, () => rand() * 2 - 1);
  const t = new VectorTable(DIMS, true, N);
  for (let i = 0; i < N; i++) {
    const dup = rand() < share;
    const vector = dup ? common : Array.from({ length: DIMS }, () => rand() * 2 - 1);
    t.push({
      id: `item-${String(i).padStart(6, '0')}`,
      vector: Float32Array.from(vector),
      metadata: null,
      file: 'bench',
      line: i + 1,
    });
  }
  return t;
}

interface Measured {
  idRecall: number;
  recall: number;
  p50us: number;
  buildMs: number;
}

async function run(share: number, dir: string) {
  const t = table(share);
  const rows = sampleRows(t.count, SAMPLE);
  const exact = await exactNeighbours(t.buffer, t.count, t.dims, 'cosine', rows, K, 1);
  const vectors = t.vectors();

  // One search per sampled item, as the gate does; `rowOfLabel` maps the index's labels to table rows.
  const measure = async (
    path: string,
    count: number,
    rowOfLabel: (label: number) => number,
    buildMs: number,
  ): Promise<Measured> => {
    const index = await hnswEngine.load(path, 'cosine', DIMS, count, M, EF);
    for (const row of rows.slice(0, 50)) index.search(t.vector(row), K + 1, EF);
    let idHits = 0;
    let recall = 0;
    const lat: number[] = [];
    rows.forEach((row, i) => {
      const q = t.vector(row);
      const t0 = performance.now();
      const got = mergeNeighbours(
        [
          index.search(q, K + 1, EF).map((h) => ({
            id: t.ids[rowOfLabel(h.label)] as string,
            row: rowOfLabel(h.label),
            distance: h.distance,
          })),
        ],
        K + 1,
      )
        .filter((h) => h.row !== row)
        .slice(0, K);
      lat.push(performance.now() - t0);
      const truth = exact[i] as { rows: Int32Array; distances: Float64Array };
      const truthRows = new Set(truth.rows);
      idHits += got.filter((h) => truthRows.has(h.row)).length / K;
      recall += tieAwareRecall(
        got.map((h) => exactDistance(vectors, DIMS, false, row, h.row)),
        Array.from(truth.distances),
        K,
      );
    });
    return {
      idRecall: r3(idHits / rows.length),
      recall: r3(recall / rows.length),
      p50us: Math.round(p50(lat) * 1000),
      buildMs: Math.round(buildMs),
    };
  };

  // before: every row in the graph.
  const plainPath = join(dir, `plain-${share}.hnsw`);
  const b0 = performance.now();
  await buildSegmentsInWorkers({
    metric: 'cosine',
    dims: DIMS,
    M,
    efConstruction: EFC,
    buffer: t.buffer,
    rows: t.count,
    jobs: [{ start: 0, end: t.count, path: plainPath }],
  });
  const before = await measure(plainPath, t.count, (l) => l, performance.now() - b0);

  // after: the builder's buildIndex (one element per distinct vector).
  const spec = {
    name: 'items',
    metric: 'cosine',
    M,
    efConstruction: EFC,
    ef: EF,
    segments: 1,
  } as CollectionSpec;
  const config = { buildWorkers: 1 } as Config;
  const b1 = performance.now();
  const built = await buildIndex({ config, log: silentLog }, spec, t, join(dir, `dedup-${share}`), {
    space: 'bench',
    version: 'v1',
  } as Parameters<typeof buildIndex>[4]);
  const seg = built.segments[0];
  if (!seg) throw new Error('no segment');
  const after = await measure(seg.indexPath, seg.count, (l) => rowOf(seg, l), performance.now() - b1);
  return {
    share,
    n: N,
    dims: DIMS,
    duplicateGroups: built.duplicateGroups,
    largestDuplicateGroup: built.largestDuplicateGroup,
    indexed: seg.indexed,
    before,
    after,
  };
}

const dir = await mkdtemp(join(tmpdir(), 'vicinity-bench-dups-'));
try {
  const results = [];
  for (const share of SHARES) {
    log(`${Math.round(share * 100)}% sharing one vector…`);
    results.push(await run(share, dir));
  }
  await mkdir(join(import.meta.dirname, 'results'), { recursive: true });
  await writeFile(join(import.meta.dirname, 'results', 'dups.json'), `${JSON.stringify(results, null, 2)}\n`);
  const lines = [
    `${N.toLocaleString('en')} × ${DIMS} random vectors, cosine, M=${M}, efConstruction=${EFC}, ef=${EF}; ${SAMPLE} sampled items, k=${K}`,
    '',
    '| sharing one vector | groups / largest | indexed | before: recall@10 by ids | before: tie-aware recall@10 | before: p50 µs | before: build ms | after: tie-aware recall@10 | after: p50 µs | after: build ms |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...results.map(
      (r) =>
        `| ${Math.round(r.share * 100)}% | ${r.duplicateGroups} / ${r.largestDuplicateGroup} | ${r.indexed} | ${r.before.idRecall.toFixed(3)} | ${r.before.recall.toFixed(3)} | ${r.before.p50us} | ${r.before.buildMs} | ${r.after.recall.toFixed(3)} | ${r.after.p50us} | ${r.after.buildMs} |`,
    ),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
