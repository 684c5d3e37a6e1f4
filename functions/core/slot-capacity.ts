/**
 * Whether a sharded collection fits the shard slots that will serve it: slot i holds shards j ≡ i mod
 * shardSlots, so the busiest slot holds ceil(shards / shardSlots) shards, each about rows / shards items
 * of indexBytesPerItem. A build refuses a release whose busiest slot would not fit its memory budget —
 * a slot that cannot load its shards would answer every query of the version with a 503. Pure.
 */
import { indexBytesPerItem } from './shard';

export interface SlotCapacityInput {
  collection: string;
  /** Rows in the collection: exact when known, estimated otherwise. */
  rows: number;
  shards: number;
  shardSlots: number;
  dims: number;
  M: number;
  /** The memory budget of one slot instance for loaded shards, bytes. */
  slotBudgetBytes: number;
}

const MB = 1024 * 1024;

/** The problem, in the producer's words, or undefined when the busiest slot fits. */
export function slotCapacityProblem(p: SlotCapacityInput): string | undefined {
  if (p.shards <= 1 || p.shardSlots < 1) return undefined;
  const perShard = Math.ceil(p.rows / p.shards) * indexBytesPerItem(p.dims, p.M);
  const shardsPerSlot = Math.ceil(p.shards / p.shardSlots);
  const need = perShard * shardsPerSlot;
  if (need <= p.slotBudgetBytes) return undefined;
  return (
    `collection ${p.collection}: ${p.shards} shards over ${p.shardSlots} shard slots put ${shardsPerSlot} shard(s) of about ` +
    `${Math.ceil(perShard / MB)} MB each (≈${p.rows} rows, ${p.dims} dims, M ${p.M}) in one slot, ${Math.ceil(need / MB)} MB, ` +
    `over a slot's memory budget of ${Math.floor(p.slotBudgetBytes / MB)} MB; use fewer, smaller shards per slot ` +
    `(more shardSlots, or "shards" a multiple of them) or larger slot functions`
  );
}
