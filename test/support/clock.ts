/** A clock a test moves by hand: time-based rules (TTLs, windows, graces) tested without sleeping. */
export function manualClock(start = Date.now()) {
  let t = start;
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
  };
}
