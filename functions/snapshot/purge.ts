/**
 * Rewrites a snapshot without erased ids (invariant 9, "at rest"): every segment holding an erased id is
 * rebuilt from its remaining vectors (read back from the verified index file), with new ids and
 * metadata files, and erased ids are stripped from the release's seen field in every metadata file that
 * lists them. Everything rewritten goes to NEW keys (`…/p{generation}/…`, new hashes), unchanged files
 * are named as they were, and the new manifest is written last; the caller switches the version record
 * to it with a conditional write and deletes the old objects after a grace, so a request reads one
 * manifest or the other, never a mix.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { readIndexVectors } from '../adapters/hnsw-index';
import { buildSegmentsInWorkers } from '../adapters/hnsw-workers';
import { allErased, type ErasedIds } from '../core/erasure';
import type { BlobStore, Log } from '../core/ports';
import {
  DEFAULT_PURGE_SEGMENT_ITEMS,
  pieceRanges,
  rebuildEstimateMs,
  rebuildRefusal,
} from '../core/purge-budget';
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

/**
 * The purge's time and size bounds (core/purge-budget.ts). Without `deadlineMs` every rebuild starts.
 */
export interface PurgeLimits {
  /** Epoch ms the invocation is killed at (the sweeper Lambda's deadline). */
  deadlineMs?: number | undefined;
  /** A rebuilt segment holds at most this many items; a bigger one becomes several (VICINITY_PURGE_SEGMENT_ITEMS). */
  pieceItems?: number | undefined;
  /** Pieces built at once (default: the vCPUs). */
  workers?: number | undefined;
  nowMs?: (() => number) | undefined;
}

/** A purge that stopped before a rebuild it could not finish in time: nothing was switched. */
export interface PurgeDeferred {
  deferred: string;
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
  limits: PurgeLimits = {},
): Promise<PurgeOutcome | PurgeDeferred | undefined> {
  const { store } = deps;
  const pieceItems = Math.max(1, limits.pieceItems ?? DEFAULT_PURGE_SEGMENT_ITEMS);
  const workers = Math.max(1, limits.workers ?? availableParallelism());
  const nowMs = limits.nowMs ?? Date.now;
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
      /** Input segment → its output segments (none when wholly erased; several when cut into pieces). */
      const outOf: number[][] = [];
      let count = 0;
      for (const [i, seg] of cm.segments.entries()) {
        const first = segments.length;
        outOf[i] = [];
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
          outOf[i] = [first];
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
          outOf[i] = [first];
          segments.push({ ...seg, files: { ...seg.files, meta: metaFile } });
          count += seg.count;
          metaRewritten++;
          continue;
        }
        // A segment an earlier attempt of this generation rebuilt for the same input and the same erased
        // ids (then stopped at the deadline) is taken as it left it: a purge resumes, never loops.
        const checkpointKey = `${segPrefix}rebuilt.json`;
        const digest = createHash('sha256')
          .update(
            JSON.stringify([
              seg.files.index.sha256,
              seg.files.ids.sha256,
              seg.files.meta?.sha256 ?? null,
              seenField ?? null,
              pieceItems,
              keep,
              [...every].sort(),
            ]),
          )
          .digest('hex');
        const earlier = await store.getText(checkpointKey);
        const resumed = earlier
          ? (JSON.parse(earlier) as { digest: string; segments: Segment[] })
          : undefined;
        if (resumed?.digest === digest) {
          for (const piece of resumed.segments) {
            (outOf[i] as number[]).push(segments.length);
            segments.push(piece);
            count += piece.count;
          }
          removed[name] = (removed[name] ?? 0) + ids.length - keep.length;
          rebuilt++;
          continue;
        }
        // Rebuild the segment's index from its remaining vectors, as pieces of at most pieceItems,
        // only when that fits before the deadline: the next sweep (with a whole invocation) does it.
        const estimateMs = rebuildEstimateMs(keep.length, cm.dims, pieceItems, workers);
        const refusal = rebuildRefusal(estimateMs, nowMs(), limits.deadlineMs);
        if (refusal) {
          deps.log.warn('purge stopped before a segment rebuild it cannot finish in time', {
            space: manifest.space,
            version: manifest.version,
            collection: name,
            segment: i,
            items: keep.length,
            dims: cm.dims,
            estimateMs: Math.round(estimateMs),
            reason: refusal,
          });
          return { deferred: `${name} segment ${i} (${keep.length} items × ${cm.dims}): ${refusal}` };
        }
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
        const pieces = n > 0 ? pieceRanges(n, pieceItems) : [];
        const jobs = pieces.map((p, k) => {
          // Group starts within the piece (its first row always starts one): labels are piece-local.
          const mine = reps.filter((r) => r > p.start && r < p.end);
          const starts = [p.start, ...mine];
          const grouped = starts.length < p.end - p.start;
          return {
            start: p.start,
            end: p.end,
            path: join(dir, `${name}-${i}-${k}.hnsw`),
            ...(grouped
              ? {
                  points: {
                    labels: Int32Array.from(starts, (r) => r - p.start),
                    rows: Int32Array.from(starts),
                  },
                }
              : {}),
          };
        });
        for (let at = 0; at < jobs.length; at += workers)
          await buildSegmentsInWorkers({
            metric: cm.metric,
            dims,
            M: cm.M,
            efConstruction: cm.efConstruction,
            buffer: shared,
            rows: n,
            jobs: jobs.slice(at, at + workers),
          });
        const removedHere = ids.length - n;
        removed[name] = (removed[name] ?? 0) + removedHere;
        for (const [k, p] of pieces.entries()) {
          // One piece keeps the segment's key names; more are seg-{i}/piece-{k}/.
          const piecePrefix = pieces.length === 1 ? segPrefix : `${segPrefix}piece-${k}/`;
          const rows = keep.slice(p.start, p.end);
          const idsPath = join(dir, `${name}-${i}-${k}.ids.json`);
          await writeFile(idsPath, JSON.stringify(rows.map((l) => ids[l])));
          const files: Segment['files'] = {
            index: await upload(
              store,
              `${piecePrefix}index.hnsw`,
              (jobs[k] as { path: string }).path,
              'application/octet-stream',
            ),
            ids: await upload(store, `${piecePrefix}ids.json`, idsPath, 'application/json'),
          };
          if (stripped) {
            const metaPath = join(dir, `${name}-${i}-${k}.meta.json`);
            await writeFile(metaPath, JSON.stringify(rows.map((l) => stripped[l] ?? null)));
            files.meta = await upload(store, `${piecePrefix}meta.json`, metaPath, 'application/json');
          }
          (outOf[i] as number[]).push(segments.length);
          segments.push({ count: rows.length, files });
          count += rows.length;
        }
        // Named by no manifest: deleted with the other replaced objects after the switch's grace.
        await store.putText(
          checkpointKey,
          JSON.stringify({ digest, segments: (outOf[i] as number[]).map((j) => segments[j]) }),
        );
        rebuilt++;
      }
      const c = next.collections[name];
      if (c) {
        c.segments = segments;
        c.count = count;
        // A sharded collection keeps its layout: each shard owns the output segments of its input
        // segments (several when one was rebuilt as pieces, none when wholly erased); its count follows.
        if (c.sharding)
          c.sharding = {
            ...c.sharding,
            layout: c.sharding.layout.map((l) => {
              const own = l.segments.flatMap((i) => outOf[i] ?? []);
              return { ...l, segments: own, count: own.reduce((a, j) => a + (segments[j]?.count ?? 0), 0) };
            }),
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
