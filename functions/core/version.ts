import type { ReleaseProblem } from './errors';
import type { Metric } from './release';

export const VERSION_STATUSES = ['BUILDING', 'READY', 'FAILED', 'DELETED'] as const;
export type VersionStatus = (typeof VERSION_STATUSES)[number];

/** One point of a collection's recall curve, as the quality gate measured it on its sample. */
export interface RecallPoint {
  ef: number;
  /** Tie-aware recall@10 at this ef. */
  recall: number;
  /** Mean search time per sampled query at this ef (all segments, merged), in microseconds. */
  usPerQuery: number;
}

/** How the serving ef was chosen: tuned by the gate to the recall target, or set by the release. */
export type EfSource = 'tuned' | 'release';

export interface CollectionReport {
  count: number;
  dims: number;
  metric: Metric;
  M: number;
  efConstruction: number;
  ef: number;
  segments: number;
  /** Sharded collections: the shard count (absent when unsharded). */
  shards?: number;
  /**
   * Groups of two or more items with identical vectors (after normalisation for cosine), and the size
   * of the largest (1 when every vector is distinct). Each group is indexed once and expanded to its
   * items, in id order, at query time. Absent in versions built before it was reported.
   */
  duplicateGroups?: number;
  largestDuplicateGroup?: number;
  /** Tie-aware: a returned item as near as the exact 10th neighbour (within ε) is a hit. At `ef`. */
  recallAt10?: number;
  /** Whether `ef` was tuned by the quality gate or set by the release. Absent in older versions. */
  efSource?: EfSource;
  /** The recall the gate tuned `ef` for (absent when the release set `ef`). */
  recallTarget?: number;
  /** False when even the ladder's cap stayed below recallTarget (it still reached minRecall). */
  recallTargetMet?: boolean;
  /** ef → recall@10 and µs per query on the gate's sample, ascending ef. Absent in older versions. */
  recallCurve?: RecallPoint[];
  /** Tie-aware: tied neighbours count as shared (core/search.ts tieAwareOverlap). */
  overlapAt10?: number;
  /** The version the overlap was measured against. */
  overlapWith?: string;
  /**
   * Why overlap@10 was not measured, when that matters: the release set `minOverlap` (so that gate
   * was not applied), or the previous version's snapshot could not be read.
   */
  overlapSkipped?: string;
  /** Items of the release left out because their ids are erased (core/erasure.ts). */
  erasedDropped?: number;
}

export interface VersionRecord {
  space: string;
  version: string;
  number: number;
  status: VersionStatus;
  release: string;
  releaseKey: string;
  releaseEtag?: string;
  sequencer: string;
  createdAt: string;
  finishedAt?: string;
  manifestKey?: string;
  /** How many times a purge rewrote this version's snapshot (absent: never); its manifest is then `manifestKey`. */
  manifestGeneration?: number;
  /** The space's `erasureAdded` counter this version was last checked and purged against. */
  purgedThrough?: number;
  /** When a purge last switched the manifest (objects it no longer names go a grace period later). */
  purgeSwitchedAt?: string;
  collections?: Record<string, CollectionReport>;
  timings?: Record<string, number>;
  quality?: { minRecall: number; sample: number; minOverlap?: number | null; recallTarget?: number };
  reason?: string;
  problems?: ReleaseProblem[];
  problemCount?: number;
  /** Builder lease: whoever holds an unexpired lease is the one building this version. */
  leaseOwner?: string;
  leaseUntil?: number;
  attempts?: number;
  /** From release.json: whether the build activates this version when READY. */
  autoActivate?: boolean;
  /**
   * The ETag of each input file (relative to the release folder, `release.json` included) when a build
   * first saw it; every read, by every attempt, is of that ETag, so a file replaced mid-build fails it.
   */
  inputEtags?: Record<string, string>;
  /**
   * Sharded builds: when the build finished dispatching the partition tasks (after handing its lease to
   * them). A task phase without it long after the hand-off had its build die in between: the sweeper FAILS it.
   */
  tasksDispatchedAt?: string;
  /** Why a READY version whose release asked to be activated was not (e.g. it would need `force`). */
  notActivatedReason?: string;
  /** When the status last changed by transitionStatus (retention, the sweeper). */
  statusChangedAt?: string;
  /** When retention (or the sweeper finishing it) deleted the files of a DELETED version. */
  filesDeletedAt?: string;
  /**
   * Sharded builds: when the sweeper found the version's staging prefix empty (or emptied it) after it
   * settled and past the quiet period in which a task that began before it settled may still write.
   * The sweeper no longer looks at a version that has it (bounded work per sweep).
   */
  stagingDeletedAt?: string;
  /** What went wrong after READY (event, activation, retention); the version stays READY. */
  afterReadyErrors?: string[];
  /** Sharded builds: the fan-in state and progress while BUILDING (functions/builder/sharded/). */
  tasks?: TaskState;
}

/**
 * The fan-in of a sharded build, on its version record: totals, counters, and which tasks are done
 * (task key → rows), each recorded once by a conditional update. Task keys: `p:{collection}:{i}` for
 * partition i, `s:{collection}:{j}` for shard j.
 */
export interface TaskState {
  partitions: number;
  partitionsDone: number;
  shards: number;
  shardsDone: number;
  /** Rows written by the partition tasks done so far. */
  rows: number;
  done: Record<string, number>;
  attempts: Record<string, number>;
  /** When the build handed the version's lease to the task phase (ms since the epoch). */
  startedAt?: number;
}

/**
 * Build attempts of one version: the attempt that takes the lease past this many marks the version
 * FAILED at once, and the sweeper fails a version whose last attempt's lease expired at this count —
 * however the attempts ended (error, deadline, kill, OOM).
 */
export const MAX_BUILD_ATTEMPTS = 3;

/** The identity of one release event: the same key and sequencer always map to one version. */
export interface ReleaseEvent {
  space: string;
  release: string;
  key: string;
  sequencer: string;
  etag?: string;
}

export function isServable(v: Pick<VersionRecord, 'status'>): boolean {
  return v.status === 'READY';
}

/** A version as the list routes show it (no lease, no problems list). */
export interface VersionSummary {
  version: string;
  status: VersionStatus;
  release: string;
  createdAt: string;
  finishedAt?: string;
  collections?: Record<string, CollectionReport>;
  buildMs?: number;
  reason?: string;
}

export function versionSummary(v: VersionRecord): VersionSummary {
  return {
    version: v.version,
    status: v.status,
    release: v.release,
    createdAt: v.createdAt,
    ...(v.finishedAt ? { finishedAt: v.finishedAt } : {}),
    ...(v.collections ? { collections: v.collections } : {}),
    ...(v.timings?.totalMs !== undefined ? { buildMs: v.timings.totalMs } : {}),
    ...(v.reason ? { reason: v.reason } : {}),
  };
}
