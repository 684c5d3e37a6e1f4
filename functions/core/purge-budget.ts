/**
 * A purge's time budget (sweeper/purge.ts, snapshot/purge.ts): the sweeper is a Lambda killed at its
 * deadline, so a segment rebuild starts only when its estimated cost fits before the deadline less a
 * margin; a rebuild is cut into pieces of at most `pieceItems` items, built in parallel worker threads.
 * Pure rules only.
 */

/**
 * Estimated single-thread HNSW build cost, ms per item per dimension. Measured: one 500,000 × 64 segment
 * rebuilt in ≈285 s (the whole purge of one id from a 1M × 64 snapshot; loaded 2-core machine) =
 * 285,000 ms / 32M item·dims = 8.9e-3 ms (8.9 µs) per item·dim. Taken ×1.7 to be conservative (a
 * loaded or slower vCPU, M/efConstruction above the defaults, the download and upload around the
 * build): a 250,000 × 64 piece is estimated at 240 s, × 128 at 480 s.
 */
export const PURGE_BUILD_MS_PER_ITEM_DIM = 15e-3;

/** Time kept free before the deadline: the uploads, the manifest and the record switch after a rebuild. */
export const PURGE_MARGIN_MS = 60_000;

/** Default `VICINITY_PURGE_SEGMENT_ITEMS`: the most items one rebuilt piece (one worker) holds. */
export const DEFAULT_PURGE_SEGMENT_ITEMS = 250_000;

/** Purge attempts in a row without progress (cut short at the deadline, or killed) before an erasure shows `purgeError`. */
export const MAX_PURGE_ATTEMPTS = 3;

/** Contiguous piece ranges [start, end) of at most `pieceItems` rows, nearly equal. */
export function pieceRanges(rows: number, pieceItems: number): { start: number; end: number }[] {
  const n = Math.max(1, Math.ceil(rows / Math.max(1, pieceItems)));
  return Array.from({ length: n }, (_, i) => ({
    start: Math.floor((i * rows) / n),
    end: Math.floor(((i + 1) * rows) / n),
  }));
}

/**
 * Estimated wall time (ms) to rebuild `items` vectors of `dims` dimensions as pieces of at most
 * `pieceItems`, `workers` of them at a time: rounds of parallel pieces, each as long as its biggest piece.
 */
export function rebuildEstimateMs(items: number, dims: number, pieceItems: number, workers: number): number {
  const pieces = pieceRanges(items, pieceItems);
  const biggest = Math.max(...pieces.map((p) => p.end - p.start));
  const rounds = Math.ceil(pieces.length / Math.max(1, workers));
  return rounds * biggest * dims * PURGE_BUILD_MS_PER_ITEM_DIM;
}

/**
 * Why a rebuild estimated at `estimateMs` must not start at `nowMs` before `deadlineMs`, or undefined
 * when it fits (no deadline: always fits).
 */
export function rebuildRefusal(
  estimateMs: number,
  nowMs: number,
  deadlineMs: number | undefined,
  marginMs = PURGE_MARGIN_MS,
): string | undefined {
  if (deadlineMs === undefined) return undefined;
  const left = deadlineMs - nowMs - marginMs;
  if (estimateMs <= left) return undefined;
  return `a segment rebuild estimated at ${Math.ceil(estimateMs / 1000)} s does not fit in the ${Math.max(0, Math.floor(left / 1000))} s left before the deadline (less a ${Math.round(marginMs / 1000)} s margin)`;
}

/** The `purgeError` of an erasure whose purge made no progress in `attempts` attempts in a row. */
export function purgeStalledReason(attempts: number, last: string | undefined): string {
  return `${attempts} purge attempts in a row ended without progress (cut short before the deadline or killed)${last ? `: ${last}` : ''}; the id is still hidden from every answer but remains in stored snapshots — raise the sweeper's memory (vCPUs) or lower VICINITY_PURGE_SEGMENT_ITEMS`;
}
