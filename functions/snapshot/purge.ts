/**
 * Rewrites a snapshot without erased ids (invariant 9, "at rest"): every segment holding an erased id is
 * rebuilt from its remaining vectors (read back from the verified index file), with new ids and
 * metadata files, and erased ids are stripped from the release's seen field in every metadata file that
 * lists them. Everything rewritten goes to NEW keys (`…/p{generation}/…`, new hashes), unchanged files
 * are named as they were, and the new manifest is written last; the caller switches the version record
 * to it with a conditional write and deletes the old objects after a grace, so a request reads one
 * manifest or the other, never a mix.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readIndexVectors } from '../adapters/hnsw-index';
import { buildSegmentsInWorkers } from '../adapters/hnsw-workers';
import { allErased, type ErasedIds } from '../core/erasure';
import type { BlobStore, Log } from '../core/ports';
import { digestFile } from './digest';
import { fetchVerified, localPathFor } from './files';
import { allFiles, type Manifest, type Segment, type SnapshotFile, snapshotPrefix } from './manifest';

export interface PurgeOutcome {
  manifest: Manifest;
  manifestKey: string;
  /** Items removed, per collection. */
  removed: Record<string, number>;
  /** Segments rewritten (index rebuilt) and metadata files rewritten (seen field only). */
  rebuilt: number;
  metaRewritten: number;
}

/** The key of a purged manifest: under the version's prefix, so retention deletes it with the rest. */
export function purgedManifestKey(space: string, version: string, generation: number): string {
  return `${snapshotPrefix(space, version)}p${generation}/manifest.json`;
}

async function upload(store: BlobStore, key: string, path: string, type: string): Promise<SnapshotFile> {
  const d = await digestFile(path);
  await store.putFile(key, path, type);
  return { key, bytes: d.bytes, sha256: d.sha256, parts: d.parts };
}

function stripSeen(
  row: Record<string, unknown> | null,
  seenField: string | undefined,
  erased: Set<string>,
): Record<string, unknown> | null {
  if (!row || !seenField) return row;
  const seen = row[seenField];
  if (!Array.isArray(seen) || !seen.some((s) => erased.has(String(s)))) return row;
  return { ...row, [seenField]: seen.filter((s) => !erased.has(String(s))) };
}

/**
 * The snapshot `manifest` without `erased`, written as generation `generation`; undefined when it holds
 * none of them (nothing to rewrite). `workDir` holds downloads and rebuilt files; it is removed after.
 */
export async function purgeSnapshot(
  deps: { store: BlobStore; log: Log; workDir: string },
  manifest: Manifest,
  erased: ErasedIds,
  generation: number,
): Promise<PurgeOutcome | undefined> {
  const { store } = deps;
  const every = allErased(erased);
  if (every.size === 0) return undefined;
  const seenField = manifest.seenField;
  const dir = join(deps.workDir, `purge-${manifest.space}-${manifest.version}-${generation}-${process.pid}`);
  await mkdir(dir, { recursive: true });
  const prefix = `${snapshotPrefix(manifest.space, manifest.version)}p${generation}/`;
  const next: Manifest = structuredClone(manifest);
  const removed: Record<string, number> = {};
  let rebuilt = 0;
  let metaRewritten = 0;
  try {
    for (const [name, cm] of Object.entries(manifest.collections)) {
      const gone = erased.get(name) ?? new Set<string>();
      const segments: Segment[] = [];
      let count = 0;
      for (const [i, seg] of cm.segments.entries()) {
        const fetchText = async (f: SnapshotFile) => {
          await fetchVerified(store, f, dir);
          return readFile(localPathFor(dir, f.key), 'utf8');
        };
        const ids = JSON.parse(await fetchText(seg.files.ids)) as string[];
        const keep: number[] = [];
        for (let l = 0; l < ids.length; l++) if (!gone.has(ids[l] as string)) keep.push(l);
        const needMeta = seg.files.meta && (keep.length < ids.length || seenField);
        const meta = needMeta
          ? (JSON.parse(await fetchText(seg.files.meta as SnapshotFile)) as (Record<
              string,
              unknown
            > | null)[])
          : undefined;
        const stripped = meta?.map((m) => stripSeen(m, seenField, every));
        const seenChanged = stripped?.some((m, l) => m !== meta?.[l]) ?? false;
        if (keep.length === ids.length && !seenChanged) {
          segments.push(seg);
          count += seg.count;
          continue;
        }
        const segPrefix = `${prefix}${name}/seg-${i}/`;
        if (keep.length === ids.length) {
          // Only the seen field changed: a new metadata file beside the same index and ids.
          const metaPath = join(dir, `${name}-${i}.meta.json`);
          await writeFile(metaPath, JSON.stringify(stripped));
          const metaFile = await upload(store, `${segPrefix}meta.json`, metaPath, 'application/json');
          segments.push({ ...seg, files: { ...seg.files, meta: metaFile } });
          count += seg.count;
          metaRewritten++;
          continue;
        }
        // Rebuild the segment's index from its remaining vectors.
        await fetchVerified(store, seg.files.index, dir);
        const vectors = await readIndexVectors(localPathFor(dir, seg.files.index.key), cm.dims, seg.count);
        const n = keep.length;
        const dims = cm.dims;
        const shared = new SharedArrayBuffer(Math.max(1, n) * dims * 4);
        const table = new Float32Array(shared, 0, n * dims);
        for (let j = 0; j < n; j++) {
          const from = (keep[j] as number) * dims;
          table.set(vectors.subarray(from, from + dims), j * dims);
        }
        // Group starts: a kept label whose vector differs (bitwise) from the kept label before it.
        // Within a segment identical vectors form one contiguous group, so the layout stays valid.
        const bits = new Uint32Array(shared, 0, n * dims);
        const reps: number[] = [];
        for (let j = 0; j < n; j++) {
          let same = j > 0;
          for (let d = 0; same && d < dims; d++)
            if (bits[j * dims + d] !== bits[(j - 1) * dims + d]) same = false;
          if (!same) reps.push(j);
        }
        const indexPath = join(dir, `${name}-${i}.hnsw`);
        if (n > 0) {
          const grouped = reps.length < n;
          await buildSegmentsInWorkers({
            metric: cm.metric,
            dims,
            M: cm.M,
            efConstruction: cm.efConstruction,
            buffer: shared,
            rows: n,
            jobs: [
              {
                start: 0,
                end: n,
                path: indexPath,
                ...(grouped
                  ? { points: { labels: Int32Array.from(reps), rows: Int32Array.from(reps) } }
                  : {}),
              },
            ],
          });
        }
        const removedHere = ids.length - n;
        removed[name] = (removed[name] ?? 0) + removedHere;
        if (n === 0) continue; // the whole segment was erased
        const idsPath = join(dir, `${name}-${i}.ids.json`);
        await writeFile(idsPath, JSON.stringify(keep.map((l) => ids[l])));
        const files: Segment['files'] = {
          index: await upload(store, `${segPrefix}index.hnsw`, indexPath, 'application/octet-stream'),
          ids: await upload(store, `${segPrefix}ids.json`, idsPath, 'application/json'),
        };
        if (stripped) {
          const metaPath = join(dir, `${name}-${i}.meta.json`);
          await writeFile(metaPath, JSON.stringify(keep.map((l) => stripped[l] ?? null)));
          files.meta = await upload(store, `${segPrefix}meta.json`, metaPath, 'application/json');
        }
        segments.push({ count: n, files });
        count += n;
        rebuilt++;
      }
      const c = next.collections[name];
      if (c) {
        c.segments = segments;
        c.count = count;
        // A sharded collection keeps its layout (one output segment per input segment, in order);
        // each shard's count follows its segments.
        if (c.sharding)
          c.sharding = {
            ...c.sharding,
            layout: c.sharding.layout.map((l) => ({
              ...l,
              count: l.segments.reduce((a, i) => a + (segments[i]?.count ?? 0), 0),
            })),
          };
      }
    }
    if (rebuilt === 0 && metaRewritten === 0) return undefined;
    const key = purgedManifestKey(manifest.space, manifest.version, generation);
    // Written last: a manifest names only files already in the bucket.
    await store.putText(key, JSON.stringify(next));
    deps.log.info('snapshot purged of erased ids', {
      space: manifest.space,
      version: manifest.version,
      generation,
      removed,
      rebuilt,
      metaRewritten,
    });
    return { manifest: next, manifestKey: key, removed, rebuilt, metaRewritten };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Keys under a version's prefix that `manifest` (at `manifestKey`) does not name: what a purge replaced. */
export async function unreferencedKeys(store: BlobStore, manifest: Manifest, key: string): Promise<string[]> {
  const named = new Set(allFiles(manifest).map((f) => f.key));
  named.add(key);
  const all = await store.list(snapshotPrefix(manifest.space, manifest.version));
  return all.map((o) => o.key).filter((k) => !named.has(k));
}
