/** The explore routes' parameter limits: checked before the maths (loaded on first use) is needed. */
export const PROJECTION_DEFAULT_SAMPLE = 3000;
export const PROJECTION_MAX_SAMPLE = 10_000;
/** The sample is cut so that sample × dims stays under this many numbers (a 4096-d space gets ~2,000 points). */
export const PROJECTION_MAX_CELLS = 8_000_000;
export const PROJECTION_MAX_IDS = 100;
