/**
 * Whether the instances that will serve a collection can load it, as the build plans and builds it: the
 * query function loads an unsharded collection whole, a shard slot its share of a sharded one. Each
 * budget is the one their snapshot caches apply (common/config.ts), known when infra tells the build
 * the functions' memory (ENV.queryMemoryMb, ENV.slotMemoryMb). A version nobody can load would be
 * READY and answer every query with a 503: `"shards": "auto"` shards further instead, and what still
 * does not fit is refused, naming the numbers.
 */
import { type Config, cacheBudgetMb } from '../common/config';
import { ReleaseInvalidError } from '../core/errors';
import type { CollectionSpec } from '../core/release';
import { slotCapacityProblem, wholeCapacityProblem } from '../core/serving-capacity';
import { MAX_SHARDS } from '../core/shard';
import { estimatePlannedBytes } from '../snapshot/budget';

type Sizes = Pick<Config, 'queryMemoryMb' | 'slotMemoryMb' | 'shardSlots'>;
type Shape = Pick<CollectionSpec, 'name' | 'M'> & { dims: number };

const MiB = 1024 * 1024;

/** What one of `shards` equal pieces of a collection of `rows` takes an instance once loaded (1: the whole). */
function pieceBytes(c: Shape, rows: number, shards = 1): number {
  return estimatePlannedBytes(Math.ceil(rows / shards), c.dims, c.M);
}

/** Why the collection of `rows` in `shards` shards could not be loaded where it is served, or undefined (also when the size is not known). */
export function servingProblem(config: Sizes, c: Shape, rows: number, shards: number): string | undefined {
  const base = { collection: c.name, rows, dims: c.dims, M: c.M };
  if (shards <= 1) {
    if (!config.queryMemoryMb) return undefined;
    return wholeCapacityProblem({
      ...base,
      bytes: pieceBytes(c, rows),
      budgetBytes: cacheBudgetMb(config.queryMemoryMb) * MiB,
    });
  }
  if (!config.slotMemoryMb) return undefined;
  return slotCapacityProblem({
    ...base,
    shards,
    shardSlots: config.shardSlots,
    shardBytes: pieceBytes(c, rows, shards),
    slotBudgetBytes: cacheBudgetMb(config.slotMemoryMb) * MiB,
  });
}

/** `"shards": "auto"`: from the count the build tasks need, the fewest shards the serving side can load (else that count). */
export function servableShards(config: Sizes, c: Shape, rows: number, planned: number): number {
  for (let n = planned; n <= MAX_SHARDS; n++) if (!servingProblem(config, c, rows, n)) return n;
  return planned;
}

export interface PlannedCollection {
  shape: Shape;
  rows: number;
  shards: number;
  /** `"shards": "auto"`: the plan may shard it further. */
  auto: boolean;
}

/**
 * The query function holds every unsharded collection of the active version at once: a `target` search
 * reads an item of one and searches another, and steady traffic uses them all. While their estimates do
 * not fit its budget together, the largest `"auto"` one is sharded (onto the slots). Explicit counts are
 * kept (each is still checked alone once ingested), and when they alone outgrow the budget nothing is.
 */
export function fitWholeTogether(config: Sizes, plan: readonly PlannedCollection[]): PlannedCollection[] {
  const out = plan.map((p) => ({ ...p }));
  if (!config.queryMemoryMb) return out;
  const budget = cacheBudgetMb(config.queryMemoryMb) * MiB;
  const bytes = (p: PlannedCollection) => pieceBytes(p.shape, p.rows);
  // Explicit ones that alone outgrow the budget: sharding the others would not help (they are refused).
  const fixed = out.filter((p) => p.shards <= 1 && !p.auto).reduce((a, p) => a + bytes(p), 0);
  if (fixed > budget) return out;
  for (;;) {
    const whole = out.filter((p) => p.shards <= 1);
    if (whole.reduce((a, p) => a + bytes(p), 0) <= budget) return out;
    const largest = whole.filter((p) => p.auto).sort((a, b) => bytes(b) - bytes(a))[0];
    if (!largest) return out;
    largest.shards = servableShards(config, largest.shape, largest.rows, 2);
  }
}

/**
 * Slot i holds shards j ≡ i (mod shardSlots) of every sharded collection, so slot 0 holds the first
 * shard of each: steady traffic over a version's sharded collections keeps them loaded together there.
 * While the busiest slot's share of them all outgrows a slot's budget, the `"auto"` collection with the
 * largest share takes the next count that shrinks it (toward shardSlots: past it a slot holds more,
 * smaller shards, no fewer bytes). Explicit counts stay. What still does not fit together is built and
 * served (each collection alone fits a slot), its slots reloading shards as traffic moves between
 * collections.
 */
export function fitSlotsTogether(config: Sizes, plan: readonly PlannedCollection[]): PlannedCollection[] {
  const out = plan.map((p) => ({ ...p }));
  if (!config.slotMemoryMb || config.shardSlots < 1) return out;
  const budget = cacheBudgetMb(config.slotMemoryMb) * MiB;
  // The busiest slot's shards of the collection (none when it is kept whole).
  const share = (p: PlannedCollection, shards = p.shards) =>
    shards <= 1 ? 0 : Math.ceil(shards / config.shardSlots) * pieceBytes(p.shape, p.rows, shards);
  const smaller = (p: PlannedCollection) => {
    for (let n = p.shards + 1; n <= MAX_SHARDS; n++) if (share(p, n) < share(p)) return n;
    return undefined;
  };
  for (;;) {
    if (out.reduce((a, p) => a + share(p), 0) <= budget) return out;
    const next = out
      .filter((p) => p.auto && p.shards > 1)
      .map((p) => ({ p, n: smaller(p) }))
      .filter((x): x is { p: PlannedCollection; n: number } => x.n !== undefined)
      .sort((a, b) => share(b.p) - share(a.p))[0];
    if (!next) return out;
    next.p.shards = next.n;
  }
}

/** Refuses (FAILED, naming release.json) a collection the serving side could not load. */
export function refuseUnservable(config: Sizes, c: Shape, rows: number, shards: number): void {
  const problem = servingProblem(config, c, rows, shards);
  if (problem) throw new ReleaseInvalidError([{ file: 'release.json', message: problem }]);
}
