import { describe, expect, it } from 'vitest';
import {
  PURGE_BUILD_MS_PER_ITEM_DIM,
  PURGE_MARGIN_MS,
  pieceRanges,
  rebuildEstimateMs,
  rebuildRefusal,
} from '../../functions/core/purge-budget';

describe('purge budget', () => {
  it('cuts rows into contiguous pieces of at most the piece size, covering every row once', () => {
    expect(pieceRanges(399, 100)).toEqual([
      { start: 0, end: 99 },
      { start: 99, end: 199 },
      { start: 199, end: 299 },
      { start: 299, end: 399 },
    ]);
    expect(pieceRanges(100, 100)).toEqual([{ start: 0, end: 100 }]);
    expect(pieceRanges(101, 100).map((p) => p.end - p.start)).toEqual([50, 51]);
  });

  it('estimates a rebuild as rounds of parallel pieces, each as long as the biggest piece', () => {
    const piece = 250_000 * 64 * PURGE_BUILD_MS_PER_ITEM_DIM;
    expect(rebuildEstimateMs(1_000_000, 64, 250_000, 2)).toBeCloseTo(2 * piece);
    expect(rebuildEstimateMs(1_000_000, 64, 250_000, 6)).toBeCloseTo(piece);
    expect(rebuildEstimateMs(1_000_000, 128, 250_000, 6)).toBeCloseTo(2 * piece);
    // Never below the measured rate: 500k × 64 took 285 s on one core.
    expect(rebuildEstimateMs(500_000, 64, 500_000, 1)).toBeGreaterThan(285_000);
  });

  it('refuses a rebuild that cannot end before the deadline less the margin, and never without a deadline', () => {
    expect(rebuildRefusal(10_000, 0, undefined)).toBeUndefined();
    expect(rebuildRefusal(10_000, 0, 10_000 + PURGE_MARGIN_MS)).toBeUndefined();
    expect(rebuildRefusal(10_001, 0, 10_000 + PURGE_MARGIN_MS)).toMatch(/does not fit/);
    expect(rebuildRefusal(1, 0, 5_000)).toMatch(/does not fit in the 0 s left/);
  });
});
