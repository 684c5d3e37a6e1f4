import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { buildSegmentsInWorkers, segmentRanges } from '../adapters/hnsw-workers';
import type { CollectionSpec } from '../core/release';
import type { LocalSegment } from '../snapshot/writer';
import { type BuildContext, type BuildDeps, PROGRESS_MS } from './deps';
import { findDuplicates, segmentLayout } from './duplicates';
import type { VectorTable } from './vector-table';

/** A segment built on local disk: rows [start, start + count) of the table. */
export interface BuiltSegment extends LocalSegment {
  start: number;
  /** Label → table row when the segment was deduplicated (duplicates.ts); else the row is start + label. */
  rows?: Int32Array;
  /** Elements in its HNSW index: one per distinct vector. */
  indexed: number;
}

/** The table row behind a label of a built segment. */
export function rowOf(s: BuiltSegment, label: number): number {
  return s.rows ? (s.rows[label] as number) : s.start + label;
}

export interface BuiltIndex {
  segments: BuiltSegment[];
  /** Groups of two or more items with identical vectors, and the size of the largest (1 if none). */
  duplicateGroups: number;
  largestDuplicateGroup: number;
}

/** Segments for a collection: one below 100k rows, else one per core (at most one per 250k rows). */
export function segmentCount(rows: number, requested: number | undefined, workers: number): number {
  if (requested) return Math.max(1, Math.min(requested, rows));
  if (rows < 100_000) return 1;
  const cores = workers > 0 ? workers : availableParallelism();
  return Math.max(1, Math.min(cores, Math.ceil(rows / 250_000)));
}

/**
 * Builds the collection's HNSW segments in worker threads and writes each one's ids and metadata beside
 * it in `dir`. Items with identical vectors are indexed once per segment (duplicates.ts): their labels
 * are laid out as a group, in id order, and only the group's first label goes into the graph.
 */
export async function buildIndex(
  deps: Pick<BuildDeps, 'config' | 'log'>,
  c: CollectionSpec,
  table: VectorTable,
  dir: string,
  ctx: BuildContext,
): Promise<BuiltIndex> {
  await mkdir(dir, { recursive: true });
  const ranges = segmentRanges(table.count, segmentCount(table.count, c.segments, deps.config.buildWorkers));
  const dup = findDuplicates(table.vectors(), table.dims, table.count);
  const layouts = ranges.map((r) =>
    dup.groups > 0 ? segmentLayout(dup, table.ids, r.start, r.end) : undefined,
  );
  const segments: BuiltSegment[] = ranges.map((r, i) => {
    const layout = layouts[i];
    return {
      count: r.end - r.start,
      start: r.start,
      indexed: layout ? layout.indexed.length : r.end - r.start,
      ...(layout ? { rows: layout.rows } : {}),
      indexPath: join(dir, `seg-${i}.hnsw`),
      idsPath: join(dir, `seg-${i}.ids.json`),
      ...(table.hasMetadata ? { metaPath: join(dir, `seg-${i}.meta.json`) } : {}),
    };
  });
  let lastLog = Date.now();
  await buildSegmentsInWorkers({
    metric: c.metric,
    dims: table.dims,
    M: c.M,
    efConstruction: c.efConstruction,
    buffer: table.buffer,
    rows: table.count,
    jobs: segments.map((s, i) => {
      const layout = layouts[i];
      return {
        start: s.start,
        end: s.start + s.count,
        path: s.indexPath,
        ...(layout
          ? { points: { labels: layout.indexed, rows: layout.indexed.map((l) => layout.rows[l] as number) } }
          : {}),
      };
    }),
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
    const pick = <T>(all: readonly T[]): T[] =>
      s.rows ? Array.from(s.rows, (r) => all[r] as T) : all.slice(s.start, s.start + s.count);
    await writeFile(s.idsPath, JSON.stringify(pick(table.ids)));
    if (s.metaPath) await writeFile(s.metaPath, JSON.stringify(pick(table.metadata)));
  }
  return { segments, duplicateGroups: dup.groups, largestDuplicateGroup: dup.largest };
}
