import type { BlobStore } from '../core/ports';
import { digestFile } from './digest';
import { type Manifest, manifestKey, type Segment, type SnapshotFile, snapshotPrefix } from './manifest';

/** One HNSW segment's files on local disk, ready to upload. */
export interface LocalSegment {
  count: number;
  indexPath: string;
  /** JSON array: label → id. */
  idsPath: string;
  /** JSON array: label → metadata object or null; absent when no item had metadata. */
  metaPath?: string;
}

/** Hashes a local file (whole and per part, for verified ranged GETs) and streams it up (multipart when large). */
async function writeFile(
  store: BlobStore,
  key: string,
  path: string,
  contentType: string,
): Promise<SnapshotFile> {
  const d = await digestFile(path);
  await store.putFile(key, path, contentType);
  return { key, bytes: d.bytes, sha256: d.sha256, parts: d.parts };
}

/** Uploads a collection's segments under `snapshots/{space}/{version}/{collection}/seg-i/`; returns their manifest entries. */
export async function writeSegments(
  store: BlobStore,
  space: string,
  version: string,
  collection: string,
  segments: readonly LocalSegment[],
): Promise<Segment[]> {
  const prefix = `${snapshotPrefix(space, version)}${collection}/`;
  return Promise.all(
    segments.map(async (s, i) => {
      const p = `${prefix}seg-${i}/`;
      const [index, ids, meta] = await Promise.all([
        writeFile(store, `${p}index.hnsw`, s.indexPath, 'application/octet-stream'),
        writeFile(store, `${p}ids.json`, s.idsPath, 'application/json'),
        s.metaPath
          ? writeFile(store, `${p}meta.json`, s.metaPath, 'application/json')
          : Promise.resolve(undefined),
      ]);
      return { count: s.count, files: { index, ids, ...(meta ? { meta } : {}) } };
    }),
  );
}

/** Writes the manifest: call it last, once every file it names is in the bucket — a snapshot without one is not a snapshot. */
export async function writeManifest(store: BlobStore, manifest: Manifest): Promise<void> {
  await store.putText(manifestKey(manifest.space, manifest.version), JSON.stringify(manifest));
}
