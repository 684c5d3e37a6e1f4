/**
 * Sharded collections: which shard an item lives in, and how many shards a collection gets. Pure.
 *
 * item → shard = FNV-1a 64 of the id's UTF-8 bytes (offset basis 0xcbf29ce484222325, prime
 * 0x100000001b3), modulo the collection's shard count N (docs/contract.md), so any client can compute
 * where an id lives from the manifest's `sharding.shards`.
 */

export const FNV64_OFFSET = 0xcbf29ce484222325n;
export const FNV64_PRIME = 0x100000001b3n;
const MASK64 = 0xffffffffffffffffn;

export const SHARD_HASH = 'fnv1a64-utf8-mod' as const;
export const MAX_SHARDS = 256;

/** FNV-1a 64 of the UTF-8 bytes of `id`, as an unsigned 64-bit bigint. */
export function fnv1a64(id: string): bigint {
  const bytes = new TextEncoder().encode(id);
  // Two 32-bit halves in numbers: BigInt per byte is ~20x slower, and partition tasks hash every row.
  let hi = 0xcbf29ce4;
  let lo = 0x84222325;
  for (const b of bytes) {
    lo ^= b;
    // (hi·2^32 + lo) · (2^40 + 0x1b3) mod 2^64, in 16-bit limbs to stay exact in doubles.
    const l0 = lo & 0xffff;
    const l1 = lo >>> 16;
    const h0 = hi & 0xffff;
    const h1 = hi >>> 16;
    const p = 0x1b3;
    let t0 = l0 * p;
    let t1 = l1 * p + (t0 >>> 16);
    t0 &= 0xffff;
    let t2 = h0 * p + (t1 >>> 16);
    t1 &= 0xffff;
    let t3 = h1 * p + (t2 >>> 16);
    t2 &= 0xffff;
    // + (lo << 40): lo's low 24 bits land in bits 40..63, i.e. limbs 2 and 3.
    t2 += (l0 << 8) & 0xffff;
    t3 += ((l0 >>> 8) | (l1 << 8)) & 0xffff;
    t3 += t2 >>> 16;
    t2 &= 0xffff;
    t3 &= 0xffff;
    lo = ((t1 << 16) | t0) >>> 0;
    hi = ((t3 << 16) | t2) >>> 0;
  }
  return (BigInt(hi) << 32n) | BigInt(lo);
}

/** The reference implementation (BigInt), for tests and for anyone porting the rule. */
export function fnv1a64Reference(id: string): bigint {
  let h = FNV64_OFFSET;
  for (const b of new TextEncoder().encode(id)) {
    h ^= BigInt(b);
    h = (h * FNV64_PRIME) & MASK64;
  }
  return h;
}

/** The shard of an id in a collection of `shards` shards. */
export function shardOf(id: string, shards: number): number {
  if (shards <= 1) return 0;
  return Number(fnv1a64(id) % BigInt(shards));
}

export interface ShardPlanInput {
  /** `"auto"` or 1–256, from release.json (default auto). */
  requested: number | 'auto';
  /** Rows in the collection: exact when known (raw, Parquet footers), estimated otherwise. */
  rows: number;
  dims: number;
  M: number;
  /** Most items one shard may hold (default 2,000,000). */
  maxShardItems: number;
  /** Memory of the shard task function, MB: its index must fit in about half of it. */
  taskMemoryMb: number;
}

/** Bytes of one item in an HNSW index: vector, level-0 links, header, plus ~40 for its id and label map. */
export function indexBytesPerItem(dims: number, M: number): number {
  return 4 * dims + 8 * M + 12 + 40;
}

/** The index bytes one shard may hold: half the task's memory (the rest holds the input rows and the runtime). */
export function shardIndexBudget(taskMemoryMb: number): number {
  return Math.floor(taskMemoryMb * 0.5 * 1024 * 1024);
}

/**
 * The shard count: an explicit N is kept (clamped to 1–256); auto keeps one shard while the collection
 * fits both `maxShardItems` and the index budget, else the fewest shards that fit both.
 */
export function planShards(p: ShardPlanInput): number {
  if (p.requested !== 'auto') return Math.max(1, Math.min(MAX_SHARDS, Math.floor(p.requested)));
  const rows = Math.max(0, p.rows);
  const byItems = Math.ceil(rows / Math.max(1, p.maxShardItems));
  const perShardBytes = shardIndexBudget(p.taskMemoryMb);
  const byBytes = Math.ceil((rows * indexBytesPerItem(p.dims, p.M)) / Math.max(1, perShardBytes));
  return Math.max(1, Math.min(MAX_SHARDS, Math.max(byItems, byBytes)));
}

/** Row-count estimate for formats without a row count up front (JSONL: ~9 bytes per float in text). */
export function estimateJsonlRows(bytes: number, dims: number | undefined, gzip: boolean): number {
  const perRow = dims ? dims * 9 + 40 : 700;
  return Math.ceil((gzip ? bytes * 2.5 : bytes) / perRow);
}

/** The payload of one asynchronous invoke of the build-task function. */
export interface BuildTaskEvent {
  vicinity: 'build-task';
  kind: 'partition' | 'shard' | 'finalize';
  space: string;
  version: string;
  /** Partition and shard tasks: the collection. */
  collection?: string;
  /** Partition: the input part's index; shard: the shard. */
  index?: number;
}

export function isBuildTaskEvent(e: unknown): e is BuildTaskEvent {
  const t = e as Partial<BuildTaskEvent> | null;
  return !!t && t.vicinity === 'build-task' && typeof t.space === 'string' && typeof t.version === 'string';
}

/** The fan-in key of a task: `p:{collection}:{i}` (partition), `s:{collection}:{j}` (shard). */
export function taskKey(t: Pick<BuildTaskEvent, 'kind' | 'collection' | 'index'>): string {
  if (t.kind === 'finalize') return 'f';
  return `${t.kind === 'partition' ? 'p' : 's'}:${t.collection}:${t.index}`;
}
