import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Metric } from '../core/release';

/**
 * hnswlib-node builds single-threaded per index object, so a large collection is built as segments,
 * one worker thread each, reading the vectors from one SharedArrayBuffer (no copy). The worker is
 * plain CommonJS passed as a string, so it needs no bundling of its own in Lambda.
 */
const WORKER_SOURCE = `
const { parentPort, workerData: w } = require('node:worker_threads');
const hnswlib = require(w.modulePath);
const data = new Float32Array(w.buffer, 0, w.rows * w.dims);
const index = new hnswlib.HierarchicalNSW(w.metric, w.dims);
const n = w.pointLabels ? w.pointLabels.length : w.end - w.start;
index.initIndex({ maxElements: Math.max(1, n), m: w.M, efConstruction: w.efConstruction, randomSeed: w.seed });
let last = Date.now();
for (let i = 0; i < n; i++) {
  const r = w.pointLabels ? w.pointRows[i] : w.start + i;
  index.addPoint(Array.from(data.subarray(r * w.dims, (r + 1) * w.dims)), w.pointLabels ? w.pointLabels[i] : i);
  if (Date.now() - last > 2000) { last = Date.now(); parentPort.postMessage({ added: i }); }
}
index.writeIndexSync(w.path);
parentPort.postMessage({ added: w.end - w.start, done: true });
`;

const modulePath = createRequire(import.meta.url).resolve('hnswlib-node');

export interface SegmentJob {
  start: number;
  end: number;
  path: string;
  /**
   * Only these points, when given: `rows[i]` of the table under label `labels[i]` (a deduplicated
   * segment indexes one row per distinct vector; adapters/grouped-index.ts). Otherwise rows
   * [start, end) under labels 0….
   */
  points?: { labels: Int32Array; rows: Int32Array };
}

export interface ParallelBuild {
  metric: Metric;
  dims: number;
  M: number;
  efConstruction: number;
  seed?: number;
  /** Row-major vectors in shared memory: rows × dims float32. */
  buffer: SharedArrayBuffer;
  rows: number;
  jobs: SegmentJob[];
  /** Points added so far, over all segments. */
  onProgress?: (added: number) => void;
}

export async function buildSegmentsInWorkers(b: ParallelBuild): Promise<void> {
  const added = new Array<number>(b.jobs.length).fill(0);
  const workers: Worker[] = [];
  try {
    await Promise.all(
      b.jobs.map(
        (job, i) =>
          new Promise<void>((resolve, reject) => {
            const worker = new Worker(WORKER_SOURCE, {
              eval: true,
              workerData: {
                modulePath,
                metric: b.metric,
                dims: b.dims,
                M: b.M,
                efConstruction: b.efConstruction,
                seed: (b.seed ?? 100) + i,
                buffer: b.buffer,
                rows: b.rows,
                start: job.start,
                end: job.end,
                path: job.path,
                ...(job.points ? { pointLabels: job.points.labels, pointRows: job.points.rows } : {}),
              },
            });
            workers.push(worker);
            worker.on('message', (m: { added: number; done?: boolean }) => {
              added[i] = m.added;
              b.onProgress?.(added.reduce((a, x) => a + x, 0));
              if (m.done) resolve();
            });
            worker.on('error', reject);
            worker.on('exit', (code) => {
              if (code !== 0)
                reject(new Error(`index worker for rows ${job.start}-${job.end} exited with code ${code}`));
            });
          }),
      ),
    );
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

/** Splits rows into `segments` contiguous ranges of nearly equal size. */
export function segmentRanges(rows: number, segments: number): { start: number; end: number }[] {
  const n = Math.max(1, Math.min(segments, rows));
  return Array.from({ length: n }, (_, i) => ({
    start: Math.floor((i * rows) / n),
    end: Math.floor(((i + 1) * rows) / n),
  }));
}
