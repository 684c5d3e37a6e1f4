// snapshot/: the snapshot format in one module — keys and manifest, writing, verified fetch, the instance cache.
// May import core/, contract.ts and adapters/hnsw-index (for the index file format); never builder/, query/ or admin/.
import { KEY_PREFIX } from '../contract';
import type { Metric } from '../core/release';
import type { EfSource, RecallPoint } from '../core/version';

/** Parts of at most this size are fetched with parallel ranged GETs and verified as each lands. */
export const PART_BYTES = 16 * 1024 * 1024;

export interface FilePart {
  offset: number;
  bytes: number;
  sha256: string;
}

export interface SnapshotFile {
  key: string;
  bytes: number;
  sha256: string;
  parts: FilePart[];
}

/** One HNSW index of a collection; a collection is searched across all its segments and merged. */
export interface Segment {
  count: number;
  files: {
    index: SnapshotFile;
    /** JSON array: label → id. */
    ids: SnapshotFile;
    /** JSON array: label → metadata object or null. Absent when no item had metadata. */
    meta?: SnapshotFile;
  };
}

export interface CollectionManifest {
  metric: Metric;
  dims: number;
  count: number;
  M: number;
  efConstruction: number;
  /** The serving ef (a request's own ef overrides it): tuned by the build, or the release's. */
  ef: number;
  /** How `ef` was chosen; absent in manifests written before the build tuned it (then: the release's). */
  efSource?: EfSource;
  /** The quality gate's ef → recall@10 curve on its sample; absent in older manifests. */
  recallCurve?: RecallPoint[];
  /** Every metadata field any item had, so a filter on a field that never existed is a 400. */
  metadataFields: string[];
  segments: Segment[];
  /**
   * Present when the collection was built sharded: which segments hold which shard. Part 1 serves a
   * sharded collection like any other (one instance loads every segment of every shard and merges);
   * part 2 moves shards to query slots. Absent for an unsharded collection.
   */
  sharding?: Sharding;
}

/** item → shard = FNV-1a 64 (UTF-8 bytes of the id) mod `shards` (functions/core/shard.ts). */
export interface Sharding {
  hash: 'fnv1a64-utf8-mod';
  shards: number;
  /** One entry per shard, in shard order: its item count and its segments (indexes into `segments`). */
  layout: ShardLayout[];
}

export interface ShardLayout {
  shard: number;
  count: number;
  segments: number[];
}

export interface Manifest {
  format: 1;
  space: string;
  version: string;
  createdAt: string;
  release: string;
  seenField?: string;
  collections: Record<string, CollectionManifest>;
}

export function manifestKey(space: string, version: string): string {
  return `${KEY_PREFIX.snapshots}${space}/${version}/manifest.json`;
}

/**
 * The manifest a version is served from, as its record says: the purged one (`manifestKey`) once a
 * purge switched it (`manifestGeneration` > 0), else the default key.
 */
export function servedManifestKey(v: {
  space: string;
  version: string;
  manifestKey?: string | undefined;
  manifestGeneration?: number | undefined;
}): string {
  return v.manifestGeneration && v.manifestKey ? v.manifestKey : manifestKey(v.space, v.version);
}

export function snapshotPrefix(space: string, version: string): string {
  return `${KEY_PREFIX.snapshots}${space}/${version}/`;
}

export function allFiles(manifest: Manifest, collection?: string): SnapshotFile[] {
  const out: SnapshotFile[] = [];
  for (const [name, c] of Object.entries(manifest.collections)) {
    if (collection !== undefined && name !== collection) continue;
    for (const s of c.segments) {
      out.push(s.files.index, s.files.ids);
      if (s.files.meta) out.push(s.files.meta);
    }
  }
  return out;
}
