import { availableParallelism } from 'node:os';
import { type ExactList, exactDistance, exactNeighbours } from '../adapters/exact-workers';
import { ReleaseInvalidError } from '../core/errors';
import type { CollectionSpec } from '../core/release';
import { distance, mergeNeighbours, type Neighbour, tieAwareOverlap, tieAwareRecall } from '../core/search';
import type { CollectionReport, VersionRecord } from '../core/version';
import type { LoadedCollection } from '../snapshot/cache';
import type { BuildContext, BuildDeps } from './deps';
import { type BuiltSegment, rowOf } from './index-build';
import type { PreviousCollection } from './previous-version';
import type { VectorTable } from './vector-table';

export type QualityGate = Required<VersionRecord>['quality'];

/** A deterministic sample of rows (a fixed-stride walk), so the same release measures the same recall. */
export function sampleRows(count: number, sample: number): number[] {
  const n = Math.min(count, sample);
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(Math.floor((i * count) / n));
  return out;
}

interface Quality {
  recall: number;
  overlap?: number;
  /** Why overlap was not measured although the previous version's collection was loaded. */
  noOverlap?: string;
}

/**
 * recall@10 of the built segments, searched together and merged exactly as the query side does,
 * against exact search, excluding each sampled item itself; and, when a previous version serves the
 * same collection, the overlap@10 of the new exact neighbour lists with the previous version's answers.
 * Both count ties (core/search.ts tieAwareRecall, tieAwareOverlap): a returned item exactly as near as
 * the true k-th neighbour is a hit, whichever of the tied items the exact search happened to list.
 */
async function measureQuality(
  deps: Pick<BuildDeps, 'engine' | 'config'>,
  c: CollectionSpec,
  table: VectorTable,
  built: BuiltSegment[],
  sample: number,
  previous: LoadedCollection | undefined,
): Promise<Quality> {
  const k = Math.min(10, table.count - 1);
  if (k <= 0) return { recall: 1, noOverlap: 'the collection has a single item' };
  const rows = sampleRows(table.count, sample);
  const exact = await exactNeighbours(
    table.buffer,
    table.count,
    table.dims,
    c.metric,
    rows,
    k,
    Math.max(1, deps.config.buildWorkers || availableParallelism()),
  );
  const indexes = await Promise.all(
    built.map((s) => deps.engine.load(s.indexPath, c.metric, table.dims, s.count, c.M, c.ef)),
  );
  const vectors = table.vectors();
  const l2 = c.metric === 'l2';
  let recallSum = 0;
  let overlapSum = 0;
  let overlapN = 0;
  rows.forEach((row, i) => {
    const q = table.vector(row);
    const truth = exact[i] as ExactList;
    const truthList: Neighbour[] = [];
    truth.rows.forEach((r, j) => {
      if (r >= 0) truthList.push({ id: table.ids[r] as string, distance: truth.distances[j] as number });
    });
    const lists = indexes.map((index, s) =>
      index.search(q, k + 1, c.ef).map((h) => {
        const r = rowOf(built[s] as BuiltSegment, h.label);
        return { id: table.ids[r] as string, row: r, distance: h.distance };
      }),
    );
    const self = table.ids[row] as string;
    const approx = mergeNeighbours(lists, k + 1)
      .filter((n) => n.id !== self)
      .slice(0, k);
    recallSum += tieAwareRecall(
      approx.map((n) => exactDistance(vectors, table.dims, l2, row, n.row)),
      truthList.map((n) => n.distance),
      k,
    );
    const before = previous && neighboursIn(previous, self, k);
    if (before) {
      overlapSum += tieAwareOverlap(before, truthList, k);
      overlapN++;
    }
  });
  return {
    recall: rows.length === 0 ? 1 : recallSum / rows.length,
    ...(overlapN ? { overlap: overlapSum / overlapN } : { noOverlap: 'no sampled item is in both versions' }),
  };
}

/**
 * An item's k nearest in a loaded (previous) version, itself left out, with their distances recomputed
 * in float64 as the exact workers compute them (so tied items compare equal across the two versions);
 * undefined if it is not there.
 */
function neighboursIn(c: LoadedCollection, id: string, k: number): Neighbour[] | undefined {
  const ref = c.lookup(id);
  if (!ref) return undefined;
  const v = (c.segments[ref.segment] as LoadedCollection['segments'][number]).index.getVector(ref.label);
  const lists = c.segments.map((s) =>
    s.index
      .search(v, k + 1, c.manifest.ef)
      .map((h) => ({ id: s.ids[h.label] as string, distance: h.distance, seg: s, label: h.label })),
  );
  const metric = c.manifest.metric;
  return mergeNeighbours(lists, k + 1)
    .filter((n) => n.id !== id)
    .slice(0, k)
    .map((n) => ({ id: n.id, distance: distance(metric, v, n.seg.index.getVector(n.label)) }));
}

type QualityReport = Pick<CollectionReport, 'recallAt10' | 'overlapAt10' | 'overlapWith' | 'overlapSkipped'>;

/**
 * Measures the collection and refuses it (ReleaseInvalidError) below `minRecall`, or below `minOverlap`
 * against the version serving now. An overlap that could not be measured is never a silent pass: when
 * the release asked for `minOverlap`, or when the previous snapshot could not be read, the reason is
 * logged (WARN) and kept in the build report as `overlapSkipped`.
 */
export async function qualityGate(
  deps: Pick<BuildDeps, 'engine' | 'config' | 'log'>,
  c: CollectionSpec,
  table: VectorTable,
  built: BuiltSegment[],
  gate: QualityGate,
  previous: PreviousCollection,
  ctx: BuildContext,
): Promise<QualityReport & { overlap?: number; recall: number }> {
  const prev = 'collection' in previous ? previous.collection : undefined;
  const q = await measureQuality(deps, c, table, built, gate.sample, prev);
  const where = c.files[0] as string;
  if (q.recall < gate.minRecall) {
    throw new ReleaseInvalidError([
      {
        file: where,
        message: `collection ${c.name}: recall@10 ${q.recall.toFixed(3)} is below the minimum ${gate.minRecall} (M=${c.M}, efConstruction=${c.efConstruction}, ef=${c.ef}); raise M, efConstruction or ef`,
      },
    ]);
  }
  const report: QualityReport & { overlap?: number; recall: number } = {
    recall: q.recall,
    recallAt10: Number(q.recall.toFixed(4)),
  };
  if (q.overlap !== undefined) {
    if (gate.minOverlap != null && q.overlap < gate.minOverlap) {
      throw new ReleaseInvalidError([
        {
          file: where,
          message: `collection ${c.name}: overlap@10 with ${previous.version} is ${q.overlap.toFixed(3)}, below the release's minOverlap ${gate.minOverlap}`,
        },
      ]);
    }
    return {
      ...report,
      overlap: q.overlap,
      overlapAt10: Number(q.overlap.toFixed(4)),
      overlapWith: previous.version,
    };
  }
  const failed = 'failed' in previous && previous.failed;
  if (!failed && gate.minOverlap == null) return report;
  const reason = 'skipped' in previous ? previous.skipped : (q.noOverlap ?? 'not measured');
  deps.log.warn(gate.minOverlap == null ? 'overlap not measured' : 'minOverlap gate skipped', {
    ...ctx,
    collection: c.name,
    previous: previous.version,
    minOverlap: gate.minOverlap,
    reason,
  });
  return { ...report, overlapSkipped: reason };
}
