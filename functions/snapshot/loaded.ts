import { readIndexVectors } from '../adapters/hnsw-index';
import type { VectorIndex } from '../core/ports';
import { LOOKUP_BYTES_PER_ITEM } from './budget';
import type { CollectionManifest } from './manifest';

// A collection as loaded in memory, and what readers derive from its segments (budgeted with it).

export interface LoadedSegment {
  index: VectorIndex;
  ids: string[];
  meta?: (Record<string, unknown> | null)[];
  /** The verified index file in the local cache (the exact scan reads its vectors from there). */
  indexPath: string;
  /** What readers derive from the segment on first use (the query side's filter postings), by key. */
  derived?: Map<string, Derived>;
  /** Read on first use: every vector by label, for exact scans. */
  vectors?: Promise<Float32Array>;
  vectorBytes?: number;
}

export interface ItemRef {
  segment: number;
  label: number;
}

export interface LoadedCollection {
  space: string;
  version: string;
  name: string;
  manifest: CollectionManifest;
  segments: LoadedSegment[];
  /** Bytes of the snapshot files it was loaded from. */
  bytes: number;
  /**
   * Memory it holds now: hnswlib's native indexes (estimated from their parameters), the parsed ids and
   * metadata (measured once at load), the id map once built, and what filters and exact scans built since.
   */
  memoryBytes(): number;
  lookup(id: string): ItemRef | undefined;
}

/** id → segment and label, built on first use: a vector query never needs it, and 1M ids take ~0.3 s. */
export function lazyLookup(segments: LoadedSegment[]): ((id: string) => ItemRef | undefined) & {
  /** Heap the map takes once built (0 before). */
  bytes(): number;
} {
  let map: Map<string, number> | undefined;
  const lookup = (id: string) => {
    if (!map) {
      const m = new Map<string, number>();
      // Packs segment and label into one number so a 1M-item map stays small.
      segments.forEach((s, seg) => {
        for (let label = 0; label < s.ids.length; label++)
          m.set(s.ids[label] as string, seg * 2 ** 32 + label);
      });
      map = m;
    }
    const v = map.get(id);
    return v === undefined ? undefined : { segment: Math.floor(v / 2 ** 32), label: v % 2 ** 32 };
  };
  return Object.assign(lookup, { bytes: () => (map ? 64 + map.size * LOOKUP_BYTES_PER_ITEM : 0) });
}

/** The vectors of a segment as one flat array, read once from its index file; counted in the memory budget. */
export function segmentVectors(seg: LoadedSegment, dims: number): Promise<Float32Array> {
  if (!seg.vectors) {
    seg.vectorBytes = seg.ids.length * dims * 4;
    seg.vectors = readIndexVectors(seg.indexPath, dims, seg.ids.length);
    // Not a swallow: the caller awaits the same promise and sees the error; this only forgets the
    // failed read so the next request tries again.
    seg.vectors.catch(() => {
      seg.vectors = undefined;
      seg.vectorBytes = undefined;
    });
  }
  return seg.vectors;
}

/** Data derived from a loaded segment; its `bytes` (read each time, it may grow) count in the memory budget. */
export interface Derived {
  readonly bytes: number;
}

/**
 * The segment's derived data under `key`, made on first use and kept as long as the segment stays
 * loaded — so the cache budgets memory it knows nothing else about (it never imports its readers).
 */
export function segmentDerived<T extends Derived>(seg: LoadedSegment, key: string, make: () => T): T {
  seg.derived ??= new Map();
  let d = seg.derived.get(key);
  if (!d) {
    d = make();
    seg.derived.set(key, d);
  }
  return d as T;
}

export function derivedBytes(seg: LoadedSegment): number {
  let b = 0;
  for (const d of seg.derived?.values() ?? []) b += d.bytes;
  return b;
}
