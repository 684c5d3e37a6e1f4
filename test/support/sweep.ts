import { noEvents, silentLog } from '../../functions/core/ports';
import { type SweepDeps, type SweepReport, sweep } from '../../functions/sweeper/sweep';

/**
 * One sweep, now, against the given store and registry: no build counts as stale yet (1 h), and what
 * a purge, a retention run or a deletion replaced goes at once (no grace). `more` adds or overrides
 * deps (a work directory, the purge's piece size, a clock).
 */
export function sweepNow(
  store: SweepDeps['store'],
  registry: SweepDeps['registry'],
  more: Partial<SweepDeps> = {},
): Promise<SweepReport> {
  return sweep({
    store,
    registry,
    log: silentLog,
    events: noEvents,
    staleMs: 3_600_000,
    graceMs: 0,
    ...more,
  });
}
