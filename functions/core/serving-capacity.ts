/**
 * Whether a collection fits the instances that will serve it, decided at build time. Pure: the caller
 * estimates what one shard (or the whole collection) takes loaded.
 * - Sharded: slot i holds shards j ≡ i mod shardSlots, so the busiest slot holds ceil(shards /
 *   shardSlots) shards. A slot that cannot load its shards would answer every query of the version with
 *   a 503.
 * - Unsharded: the query function loads the collection whole.
 */

export interface SlotCapacityInput {
  collection: string;
  /** Rows in the collection: exact when known, estimated otherwise. */
  rows: number;
  shards: number;
  shardSlots: number;
  dims: number;
  M: number;
  /** What one shard of about rows / shards items takes a slot once loaded, bytes. */
  shardBytes: number;
  /** The memory budget of one slot instance for loaded shards, bytes. */
  slotBudgetBytes: number;
}

const MB = 1024 * 1024;

/** The problem, in the producer's words, or undefined when the busiest slot fits. */
export function slotCapacityProblem(p: SlotCapacityInput): string | undefined {
  if (p.shards <= 1 || p.shardSlots < 1) return undefined;
  const shardsPerSlot = Math.ceil(p.shards / p.shardSlots);
  const need = p.shardBytes * shardsPerSlot;
  if (need <= p.slotBudgetBytes) return undefined;
  return (
    `collection ${p.collection}: ${p.shards} shards over ${p.shardSlots} shard slots put ${shardsPerSlot} shard(s) of about ` +
    `${Math.ceil(p.shardBytes / MB)} MB each (≈${p.rows} rows, ${p.dims} dims, M ${p.M}) in one slot, ${Math.ceil(need / MB)} MB, ` +
    `over a slot's memory budget of ${Math.floor(p.slotBudgetBytes / MB)} MB; use fewer, smaller shards per slot ` +
    `(more shardSlots, or "shards" a multiple of them) or larger slot functions`
  );
}

export interface WholeCapacityInput {
  collection: string;
  rows: number;
  dims: number;
  M: number;
  /** What the whole collection takes the query function once loaded, bytes. */
  bytes: number;
  /** The query function's memory budget for loaded collections, bytes. */
  budgetBytes: number;
}

/** The problem of a collection built in one piece that the query function could not load, or undefined. */
export function wholeCapacityProblem(p: WholeCapacityInput): string | undefined {
  if (p.bytes <= p.budgetBytes) return undefined;
  return (
    `collection ${p.collection}: about ${Math.ceil(p.bytes / MB)} MB once loaded (${p.rows} rows, ${p.dims} dims, M ${p.M}) ` +
    `in one piece, over the query function's memory budget of ${Math.floor(p.budgetBytes / MB)} MB; set "shards" ` +
    `to a count over 1 (shard slots serve it) or give the query function more memory (queryMemoryMb)`
  );
}
