import { availableParallelism } from 'node:os';
import { type ExactList, exactDistance, exactNeighbours } from '../adapters/exact-workers';
import { ReleaseInvalidError } from '../core/errors';
import { type CollectionSpec, EF_LADDER, INDEX_DEFAULTS, QUALITY_DEFAULTS } from '../core/release';
import { distance, mergeNeighbours, type Neighbour, tieAwareOverlap, tieAwareRecall } from '../core/search';
import type { CollectionReport, RecallPoint, VersionRecord } from '../core/version';
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
  /** Recall at the serving ef chosen (the release's, or the tuned one). */
  recall: number;
  ef: number;
  /** Ascending ef; for a release's own ef, that one point. */
  curve: RecallPoint[];
  /** Whether the chosen ef reaches the recall target (always true for a release's own ef). */
  met: boolean;
  overlap?: number;
  /** Why overlap was not measured although the previous version's collection was loaded. */
  noOverlap?: string;
}

/** The ef values the gate tries for a collection of `count` items: the ladder, capped where ef ≥ count. */
export function efLadder(count: number, ladder: readonly number[] = EF_LADDER): number[] {
  const out: number[] = [];
  for (const ef of ladder) {
    out.push(ef);
    // A beam as wide as the collection already visits everything reachable: wider adds nothing.
    if (ef >= count) break;
  }
  return out;
}

/**
 * The serving ef for a measured curve: the smallest that reaches `target`; when none does, the
 * smallest with the best recall measured (the curve has flattened there).
 */
export function chooseEf(curve: readonly RecallPoint[], target: number): { ef: number; met: boolean } {
  const hit = curve.find((p) => p.recall >= target);
  if (hit) return { ef: hit.ef, met: true };
  let best = curve[0] as RecallPoint;
  for (const p of curve) if (p.recall > best.recall) best = p;
  return { ef: best.ef, met: false };
}

/**
 * recall@10 of the built segments, searched together and merged exactly as the query side does,
 * against exact search, excluding each sampled item itself; and, when a previous version serves the
 * same collection, the overlap@10 of the new exact neighbour lists with the previous version's answers.
 * Both count ties (core/search.ts tieAwareRecall, tieAwareOverlap): a returned item exactly as near as
 * the true k-th neighbour is a hit, whichever of the tied items the exact search happened to list.
 *
 * Without an ef in the release, recall is measured along the ef ladder (the exact answers computed
 * once): it stops at the first ef reaching `target`, plus one step to show where the curve bends, or
 * at the cap. With the release's ef, at that ef only.
 */
async function measureQuality(
  deps: Pick<BuildDeps, 'engine' | 'config'>,
  c: CollectionSpec,
  table: VectorTable,
  built: BuiltSegment[],
  sample: number,
  target: number,
  previous: LoadedCollection | undefined,
): Promise<Quality> {
  const k = Math.min(10, table.count - 1);
  if (k <= 0) {
    return {
      recall: 1,
      ef: c.ef,
      curve: [{ ef: c.ef, recall: 1, usPerQuery: 0 }],
      met: true,
      noOverlap: 'the collection has a single item',
    };
  }
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
  const queries = rows.map((row) => table.vector(row));
  const truths = rows.map((_, i) => {
    const truth = exact[i] as ExactList;
    const list: Neighbour[] = [];
    truth.rows.forEach((r, j) => {
      if (r >= 0) list.push({ id: table.ids[r] as string, distance: truth.distances[j] as number });
    });
    return list;
  });
  const truthDistances = truths.map((t) => t.map((n) => n.distance));

  /** recall@10 over the sample at one ef, and the mean search time per query (µs). */
  const at = (ef: number): RecallPoint => {
    let recallSum = 0;
    let searchMs = 0;
    rows.forEach((row, i) => {
      const q = queries[i] as number[];
      const t0 = performance.now();
      const lists = indexes.map((index, s) =>
        index.search(q, k + 1, ef).map((h) => {
          const r = rowOf(built[s] as BuiltSegment, h.label);
          return { id: table.ids[r] as string, row: r, distance: h.distance };
        }),
      );
      const self = table.ids[row] as string;
      const approx = mergeNeighbours(lists, k + 1)
        .filter((n) => n.id !== self)
        .slice(0, k);
      searchMs += performance.now() - t0;
      recallSum += tieAwareRecall(
        approx.map((n) => exactDistance(vectors, table.dims, l2, row, n.row)),
        truthDistances[i] as number[],
        k,
      );
    });
    const n = Math.max(1, rows.length);
    return {
      ef,
      recall: rows.length === 0 ? 1 : Number((recallSum / n).toFixed(4)),
      usPerQuery: Number(((searchMs * 1000) / n).toFixed(1)),
    };
  };

  const curve: RecallPoint[] = [];
  let ef = c.ef;
  let met = true;
  if (c.efExplicit) {
    curve.push(at(c.ef));
  } else {
    for (const step of efLadder(table.count)) {
      const p = at(step);
      curve.push(p);
      const reached = curve.filter((x) => x.recall >= target).length;
      // The first ef reaching the target, and one step past it to show the curve bends.
      if (reached >= 2 || (reached === 1 && p.recall >= 1)) break;
    }
    ({ ef, met } = chooseEf(curve, target));
  }
  const recall = (curve.find((p) => p.ef === ef) as RecallPoint).recall;

  let overlapSum = 0;
  let overlapN = 0;
  if (previous) {
    rows.forEach((row, i) => {
      const before = neighboursIn(previous, table.ids[row] as string, k);
      if (before) {
        overlapSum += tieAwareOverlap(before, truths[i] as Neighbour[], k);
        overlapN++;
      }
    });
  }
  return {
    recall,
    ef,
    curve,
    met,
    ...(overlapN ? { overlap: overlapSum / overlapN } : { noOverlap: 'no sampled item is in both versions' }),
  };
}

/**
 * An item's k nearest in a loaded (previous) version, itself left out, with their distances recomputed
 * in float64 as the exact workers compute them (so tied items compare equal across the two versions);
 * undefined if it is not there.
 */
export function neighboursIn(c: LoadedCollection, id: string, k: number): Neighbour[] | undefined {
  const ref = c.lookup(id);
  if (!ref) return undefined;
  const v = (c.segments[ref.segment] as LoadedCollection['segments'][number]).index.getVector(ref.label);
  const lists = c.segments.map((s) =>
    s.index
      // At least the default ef: overlap measures how the data moved, not a tuned ef's approximation.
      .search(v, k + 1, Math.max(c.manifest.ef, INDEX_DEFAULTS.ef))
      .map((h) => ({ id: s.ids[h.label] as string, distance: h.distance, seg: s, label: h.label })),
  );
  const metric = c.manifest.metric;
  return mergeNeighbours(lists, k + 1)
    .filter((n) => n.id !== id)
    .slice(0, k)
    .map((n) => ({ id: n.id, distance: distance(metric, v, n.seg.index.getVector(n.label)) }));
}

type QualityReport = Pick<
  CollectionReport,
  | 'recallAt10'
  | 'overlapAt10'
  | 'overlapWith'
  | 'overlapSkipped'
  | 'ef'
  | 'efSource'
  | 'recallTarget'
  | 'recallTargetMet'
  | 'recallCurve'
>;

/** `ef 10 → 0.612, ef 16 → 0.744, …` */
export function formatCurve(curve: readonly RecallPoint[]): string {
  return curve.map((p) => `ef ${p.ef} → ${p.recall.toFixed(3)}`).join(', ');
}

/**
 * Measures the collection, tunes its serving ef to the recall target (unless the release set ef), and
 * refuses it (ReleaseInvalidError) when even the ladder's cap (or the release's ef) stays below
 * `minRecall`, or below `minOverlap` against the version serving now. An overlap that could not be
 * measured is never a silent pass: when the release asked for `minOverlap`, or when the previous
 * snapshot could not be read, the reason is logged (WARN) and kept in the build report as `overlapSkipped`.
 */
export async function qualityGate(
  deps: Pick<BuildDeps, 'engine' | 'config' | 'log'>,
  c: CollectionSpec,
  table: VectorTable,
  built: BuiltSegment[],
  gate: QualityGate,
  previous: PreviousCollection,
  ctx: BuildContext,
): Promise<QualityReport & { overlap?: number; recall: number; ef: number }> {
  const prev = 'collection' in previous ? previous.collection : undefined;
  const target = c.recallTarget ?? gate.recallTarget ?? QUALITY_DEFAULTS.recallTarget;
  const q = await measureQuality(deps, c, table, built, gate.sample, target, prev);
  const where = c.files[0] as string;
  if (q.recall < gate.minRecall) {
    const cap = q.curve.at(-1) as RecallPoint;
    const advice = c.efExplicit
      ? `raise ef, or leave ef out of release.json so the build tunes it (recall target ${target}); if that is not enough, raise M or efConstruction`
      : `even ef ${cap.ef} (the cap) stays below it: the graph limits recall, so raise M (now ${c.M}, e.g. ${Math.min(128, c.M * 2)}) or efConstruction (now ${c.efConstruction}, e.g. ${Math.min(2000, c.efConstruction * 2)})`;
    throw new ReleaseInvalidError([
      {
        file: where,
        message: `collection ${c.name}: recall@10 ${q.recall.toFixed(3)} is below the minimum ${gate.minRecall} (ef=${q.ef}, M=${c.M}, efConstruction=${c.efConstruction}; ${formatCurve(q.curve)}); ${advice}`,
      },
    ]);
  }
  if (!q.met) {
    deps.log.warn('recall target not reached; serving the best ef measured', {
      ...ctx,
      collection: c.name,
      recallTarget: target,
      ef: q.ef,
      recall: q.recall,
      curve: formatCurve(q.curve),
    });
  }
  const report: QualityReport & { overlap?: number; recall: number; ef: number } = {
    recall: q.recall,
    ef: q.ef,
    recallAt10: Number(q.recall.toFixed(4)),
    efSource: c.efExplicit ? 'release' : 'tuned',
    ...(c.efExplicit ? {} : { recallTarget: target, recallTargetMet: q.met }),
    recallCurve: q.curve,
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
