import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { buildSegmentsInWorkers, segmentRanges } from '../adapters/hnsw-workers';
import type { CollectionSpec } from '../core/release';
import type { LocalSegment } from '../snapshot/writer';
import { type BuildContext, type BuildDeps, PROGRESS_MS } from './deps';
import type { VectorTable } from './vector-table';

/** A segment built on local disk: rows [start, start + count) of the table. */
export interface BuiltSegment extends LocalSegment {
  start: number;
}

/** Segments for a collection: one below 100k rows, else one per core (at most one per 250k rows). */
export function segmentCount(rows: number, requested: number | undefined, workers: number): number {
  if (requested) return Math.max(1, Math.min(requested, rows));
  if (rows < 100_000) return 1;
  const cores = workers > 0 ? workers : availableParallelism();
  return Math.max(1, Math.min(cores, Math.ceil(rows / 250_000)));
}

/** Builds the collection's HNSW segments in worker threads and writes each one's ids and metadata beside it in `dir`. */
export async function buildIndex(
  deps: Pick<BuildDeps, 'config' | 'log'>,
  c: CollectionSpec,
  table: VectorTable,
  dir: string,
  ctx: BuildContext,
): Promise<BuiltSegment[]> {
  await mkdir(dir, { recursive: true });
  const ranges = segmentRanges(table.count, segmentCount(table.count, c.segments, deps.config.buildWorkers));
  const segments: BuiltSegment[] = ranges.map((r, i) => ({
    count: r.end - r.start,
    start: r.start,
    indexPath: join(dir, `seg-${i}.hnsw`),
    idsPath: join(dir, `seg-${i}.ids.json`),
    ...(table.hasMetadata ? { metaPath: join(dir, `seg-${i}.meta.json`) } : {}),
  }));
  let lastLog = Date.now();
  await buildSegmentsInWorkers({
    metric: c.metric,
    dims: table.dims,
    M: c.M,
    efConstruction: c.efConstruction,
    buffer: table.buffer,
    rows: table.count,
    jobs: segments.map((s) => ({ start: s.start, end: s.start + s.count, path: s.indexPath })),
    onProgress: (added) => {
      if (Date.now() - lastLog < PROGRESS_MS) return;
      lastLog = Date.now();
      deps.log.info('indexing', {
        ...ctx,
        collection: c.name,
        added,
        percent: Math.round((100 * added) / table.count),
        segments: segments.length,
      });
    },
  });
  for (const s of segments) {
    await writeFile(s.idsPath, JSON.stringify(table.ids.slice(s.start, s.start + s.count)));
    if (s.metaPath)
      await writeFile(s.metaPath, JSON.stringify(table.metadata.slice(s.start, s.start + s.count)));
  }
  return segments;
}
