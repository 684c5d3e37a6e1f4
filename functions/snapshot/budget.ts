// What a loaded collection costs an instance — native hnswlib memory, heap for its ids and metadata —
// estimated from the manifest before a load and measured once after it; and the 503 an instance
// answers when a load cannot fit its budgets. No I/O here.
import { HNSW_HEADER_BYTES, hnswBytesPerElement } from '../adapters/hnsw-index';
import { SnapshotUnavailableError } from '../core/errors';
import type { CollectionManifest, Segment } from './manifest';

/**
 * hnswlib 0.8 (hnswlib-node 3.0) allocates, per index object: 65,536 label-operation mutexes (40 bytes
 * each on x86_64 glibc) whatever its size, and per element of its capacity (= the segment's count, as
 * the builder sizes it): the level-0 block (4·dims + 8·M + 12), a link-list mutex (40), a link-list
 * pointer (8), its level (4), a label_lookup_ hash node and bucket (~40) and a visited-list slot (2);
 * plus, on average, 1/(M−1) upper-level link lists of 4·M + 4 bytes (each one malloc, ~16 overhead).
 * V8 sees none of it (the addon never reports external memory).
 */
const NATIVE_FIXED_BYTES = 65_536 * 40 + 64 * 1024;
const NATIVE_PER_ELEMENT_BYTES = 40 + 8 + 4 + 40 + 2;

export function nativeIndexBytes(count: number, dims: number, M: number): number {
  const upper = (4 * M + 4 + 16) / Math.max(1, M - 1);
  return Math.ceil(
    NATIVE_FIXED_BYTES +
      HNSW_HEADER_BYTES +
      count * (hnswBytesPerElement(dims, M) + NATIVE_PER_ELEMENT_BYTES + upper),
  );
}

/** A V8 Map entry (key, value, chain: 3 slots) plus its share of the bucket array and a boxed double value. */
export const LOOKUP_BYTES_PER_ITEM = 48;

/**
 * Heap a segment's parsed ids and metadata will take, from its files' sizes (before they are parsed):
 * an id costs its text plus a string header and an array slot; metadata objects take about twice their
 * JSON text plus an object header. Replaced by `measureHeapBytes` once the files are parsed.
 */
export function heapBytesFromFiles(s: Segment): number {
  const ids = s.files.ids.bytes + 28 * s.count;
  const meta = s.files.meta ? 2 * s.files.meta.bytes + 32 * s.count : 0;
  return ids + meta;
}

/**
 * Heap per item of a collection not built yet (no files to measure): an id of ~16 characters with its
 * string header and array slot (as heapBytesFromFiles counts it) and its entry in the id map. Metadata
 * is not counted: the build plans before it has read any.
 */
const PLANNED_HEAP_BYTES_PER_ITEM = 16 + 28 + LOOKUP_BYTES_PER_ITEM;

/** What loading `count` items of `dims` at `M` in one index will take an instance, before they are built. */
export function estimatePlannedBytes(count: number, dims: number, M: number): number {
  return nativeIndexBytes(count, dims, M) + count * PLANNED_HEAP_BYTES_PER_ITEM;
}

/** What loading the collection will take before anything is downloaded: native indexes plus parsed files. */
export function estimateCollectionBytes(cm: CollectionManifest): number {
  let total = 0;
  for (const s of cm.segments) total += nativeIndexBytes(s.count, cm.dims, cm.M) + heapBytesFromFiles(s);
  return total;
}

/** Approximate V8 heap bytes of a parsed JSON value (pointer compression off: 8-byte slots). */
export function jsonHeapBytes(v: unknown): number {
  if (typeof v === 'string') {
    // One-byte strings take a byte a character, two-byte strings two.
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the test is for characters above Latin-1.
    const wide = /[^\u0000-\u00ff]/.test(v);
    return (16 + v.length * (wide ? 2 : 1) + 7) & ~7;
  }
  if (typeof v === 'number') return Number.isInteger(v) && Math.abs(v) < 2 ** 30 ? 0 : 16;
  if (v === null || typeof v !== 'object') return 0;
  if (Array.isArray(v)) {
    let b = 16 + 8 * v.length;
    for (const x of v) b += jsonHeapBytes(x);
    return b;
  }
  let b = 24;
  for (const x of Object.values(v)) b += 8 + jsonHeapBytes(x);
  return b;
}

/**
 * Heap of the parsed ids and metadata of a segment, measured once per load on an even sample of at
 * most `sample` items and scaled to the whole (a walk over a million objects would cost a load ~0.1 s).
 */
export function measureHeapBytes(
  ids: readonly string[],
  meta: readonly (Record<string, unknown> | null)[] | undefined,
  sample = 2000,
): number {
  const n = ids.length;
  if (n === 0) return 32;
  const step = Math.max(1, Math.floor(n / sample));
  let seen = 0;
  let bytes = 0;
  for (let i = 0; i < n; i += step) {
    seen++;
    bytes += 8 + jsonHeapBytes(ids[i]);
    if (meta) bytes += 8 + jsonHeapBytes(meta[i]);
  }
  return Math.ceil(32 + (bytes / seen) * n);
}

/** Why an instance cannot take a load now (the `reason` of its 503). */
export type CapacityReason = 'memory-budget' | 'disk-budget' | 'disk-full' | 'pinned-versions';

/**
 * This instance cannot hold the snapshot right now — not a fault of the version: never cached as a
 * broken snapshot, never a reason to fall back; a 503 with Retry-After and `reason` in the problem.
 */
export class CapacityError extends SnapshotUnavailableError {
  static override readonly errorName: string = 'CapacityError';
  readonly reason: CapacityReason;
  constructor(
    reason: CapacityReason,
    detail: string,
    retryAfter: number,
    extras: Record<string, unknown> = {},
  ) {
    super(detail, { extras: { ...extras, reason, retryAfter: Math.max(1, Math.ceil(retryAfter)) } });
    this.reason = reason;
  }
}

export function isNoSpace(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

export function mb(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}
