/**
 * The build's side of a sharded release: decide each collection's shard count, build the unsharded
 * collections here as today, write the plan, hand the version's lease to the task phase and start one
 * partition task per input part.
 */
import { join } from 'node:path';
import { isSideFile } from '../../adapters/readers/rows';
import type { ReleaseFiles } from '../../adapters/readers/types';
import type { TaskDispatcher } from '../../core/ports';
import { type CollectionSpec, QUALITY_DEFAULTS, type ReleaseSpec } from '../../core/release';
import { estimateJsonlRows, planShards } from '../../core/shard';
import type { CollectionReport, ReleaseEvent } from '../../core/version';
import type { CollectionManifest } from '../../snapshot/manifest';
import { writeSegments } from '../../snapshot/writer';
import type { Lease } from '../claim';
import type { BuildContext, BuildDeps, BuildOutcome } from '../deps';
import { buildIndex } from '../index-build';
import { type InputEtags, ingest, openRelease } from '../ingest';
import { previousVersion } from '../previous-version';
import { type QualityGate, qualityGate } from '../quality-gate';
import {
  fitSlotsTogether,
  fitWholeTogether,
  type PlannedCollection,
  refuseUnservable,
  servableShards,
} from '../serving-fit';
import {
  lambdaTasks,
  type PartitionPlan,
  planKey,
  type ShardedCollectionPlan,
  type ShardedPlan,
} from './layout';

/** A Parquet file's footer, read by range; undefined when unreadable (the partition task reports it, with the file). */
async function parquetFooter(files: ReleaseFiles, f: string, size: number) {
  // Loaded on first use: only releases with Parquet collections need it (cold start).
  const { parquetMetadataAsync } = await import('hyparquet');
  return parquetMetadataAsync({
    byteLength: size,
    slice: async (start, end) => {
      const stop = Math.min(end ?? size, size);
      const b = await files.range(f, start, stop - start);
      return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
    },
  }).catch(() => undefined);
}

/** Rows of a collection: exact for raw and Parquet (footers), estimated from bytes for JSONL. */
export async function estimateRows(c: CollectionSpec, files: ReleaseFiles): Promise<number> {
  if (c.format === 'raw')
    return Math.floor(((await files.size(c.files[0] as string)) ?? 0) / (4 * (c.dims ?? 1)));
  let rows = 0;
  for (const f of c.files) {
    const size = (await files.size(f)) ?? 0;
    if (c.format === 'parquet') {
      const meta = await parquetFooter(files, f, size);
      rows += meta ? Number(meta.num_rows) : 0;
    } else rows += estimateJsonlRows(size, c.dims, c.format === 'jsonl.gz');
  }
  return rows;
}

/** Shard counts per collection; undefined when every collection has one shard (the unsharded path). */
export async function shardCounts(
  deps: Pick<BuildDeps, 'config'>,
  spec: ReleaseSpec,
  files: ReleaseFiles,
): Promise<Map<string, number> | undefined> {
  const plan: PlannedCollection[] = [];
  for (const c of spec.collections) {
    const requested = c.shards ?? 'auto';
    const rows = await estimateRows(c, files);
    const shape = { name: c.name, dims: c.dims ?? 128, M: c.M };
    const planned = planShards({
      requested,
      rows,
      dims: shape.dims,
      M: c.M,
      maxShardItems: deps.config.maxShardItems,
      taskMemoryMb: deps.config.taskMemoryMb,
    });
    const auto = requested === 'auto';
    // Auto: as many more shards as the instances that serve them need to load them.
    const shards = auto ? servableShards(deps.config, shape, rows, planned) : planned;
    plan.push({ shape, rows, shards, auto });
  }
  const out = new Map<string, number>();
  for (const p of fitSlotsTogether(deps.config, fitWholeTogether(deps.config, plan))) {
    // A sharded collection the slots could not hold is refused now. One built whole is checked once
    // ingested, on its exact count: a JSONL count is an estimate (refuseUnservable in the build).
    if (p.shards > 1) refuseUnservable(deps.config, p.shape, p.rows, p.shards);
    out.set(p.shape.name, p.shards);
  }
  return [...out.values()].some((n) => n > 1) ? out : undefined;
}

/** Ranged reads of a raw input's ids file in flight at once while the planner counts its lines. */
export const IDS_SCAN_CONCURRENCY = 8;
/** Scan ranges of the ids file per planned partition: cuts fall on scan-range starts, so this bounds their skew. */
const SCANS_PER_PARTITION = 4;

/**
 * The id lines that start in bytes [start, end) of an ids file of `size` bytes (a line starts at 0 and
 * after every LF but a final one — the raw reader's lines): how many, and where the first one starts.
 * Reads bytes [start − 1, end − 1) once, streamed: memory holds one chunk.
 */
export async function idLinesIn(
  files: ReleaseFiles,
  file: string,
  size: number,
  start: number,
  end: number,
): Promise<{ count: number; first?: number }> {
  let count = 0;
  let first: number | undefined;
  if (start === 0 && size > 0 && end > 0) {
    count = 1;
    first = 0;
  }
  const lo = start === 0 ? 0 : start - 1;
  const hi = end - 1;
  if (hi <= lo) return { count, ...(first !== undefined ? { first } : {}) };
  const stream = await files.stream(file, { offset: lo, bytes: hi - lo });
  let at = lo;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) {
      const next = at + i + 1;
      if (next >= size) break;
      if (first === undefined) first = next;
      count++;
    }
    at += chunk.length;
  }
  return { count, ...(first !== undefined ? { first } : {}) };
}

/**
 * A raw input bigger than `partitionBytes`: rows cut into ranges of about that many vector bytes. A
 * task needs the byte offset of its first id line, which only a count of the lines before it gives:
 * the planner counts them once — the ids file read as up to 4 scan ranges per partition, 8 ranged
 * reads at a time, each streamed and keeping a count and one offset — and cuts at scan-range starts
 * nearest to the even split. Every task then reads exactly its bytes of both files (memory: one chunk
 * of each), knows its first row's number, and names refused rows by their row in the file at once.
 * When the files do not agree (a vectors size that is not whole rows, more or fewer ids than rows)
 * the input is one partition and the reader reports it as the unsharded build does.
 */
async function rawPartitions(
  c: CollectionSpec,
  files: ReleaseFiles,
  partitionBytes: number,
): Promise<PartitionPlan[]> {
  const whole: PartitionPlan[] = [{ files: c.files }];
  const [vectorsFile, idsFile] = c.files;
  if (vectorsFile === undefined || idsFile === undefined || c.dims === undefined) return whole;
  const rowBytes = 4 * c.dims;
  const [vectorsSize, idsSize] = await Promise.all([files.size(vectorsFile), files.size(idsFile)]);
  if (vectorsSize === undefined || idsSize === undefined) return whole;
  if (vectorsSize <= partitionBytes || vectorsSize % rowBytes !== 0) return whole;
  const rows = vectorsSize / rowBytes;
  const parts = Math.min(rows, Math.ceil(vectorsSize / partitionBytes));
  const scans = Math.max(1, Math.min(parts * SCANS_PER_PARTITION, idsSize));
  const edges = Array.from({ length: scans + 1 }, (_, k) => Math.floor((k * idsSize) / scans));
  const counted: { count: number; first?: number }[] = new Array(scans);
  let next = 0;
  const worker = async () => {
    for (let k = next++; k < scans; k = next++) {
      counted[k] = await idLinesIn(files, idsFile, idsSize, edges[k] as number, edges[k + 1] as number);
    }
  };
  await Promise.all(Array.from({ length: Math.min(IDS_SCAN_CONCURRENCY, scans) }, worker));
  // Where a cut may fall: the first id line of each scan range that has one, with its row number.
  const candidates: { row: number; offset: number }[] = [];
  let lines = 0;
  for (const r of counted) {
    if (r.first !== undefined && lines > 0) candidates.push({ row: lines, offset: r.first });
    lines += r.count;
  }
  if (lines !== rows) return whole;
  const cuts = [{ row: 0, offset: 0 }];
  let i = 0;
  for (let j = 1; j < parts; j++) {
    const target = Math.round((j * rows) / parts);
    const last = (cuts[cuts.length - 1] as { row: number }).row;
    while (i < candidates.length && (candidates[i] as { row: number }).row <= last) i++;
    while (
      i + 1 < candidates.length &&
      Math.abs((candidates[i + 1] as { row: number }).row - target) <=
        Math.abs((candidates[i] as { row: number }).row - target)
    )
      i++;
    const pick = candidates[i];
    if (pick && pick.row > last) cuts.push(pick);
  }
  if (cuts.length < 2) return whole;
  cuts.push({ row: rows, offset: idsSize });
  return cuts.slice(1).map((to, k) => {
    const from = cuts[k] as { row: number; offset: number };
    return {
      files: c.files,
      rows: { from: from.row, to: to.row, idsStart: from.offset, idsEnd: to.offset },
    };
  });
}

/**
 * The partitions of a collection: one per input file (raw input: its vectors and ids together), and
 * a file bigger than `partitionBytes` split — plain JSONL into byte ranges of about that size (each
 * task reads the lines that start in its range), Parquet into runs of row groups of about that many
 * compressed bytes, raw input into ranges of rows (rawPartitions). Gzip cannot be split (no random
 * access): one task per file, whatever its size.
 */
export async function partitionsOf(
  c: CollectionSpec,
  files: ReleaseFiles,
  partitionBytes: number,
): Promise<PartitionPlan[]> {
  if (c.format === 'raw') return rawPartitions(c, files, partitionBytes);
  const out: PartitionPlan[] = [];
  for (const f of c.files) {
    const size = (await files.size(f)) ?? 0;
    if (size <= partitionBytes || isSideFile(f)) {
      out.push({ files: [f] });
    } else if (c.format === 'parquet') {
      const meta = await parquetFooter(files, f, size);
      const groups = meta?.row_groups ?? [];
      if (groups.length <= 1) {
        out.push({ files: [f] });
        continue;
      }
      let from = 0;
      let bytes = 0;
      groups.forEach((g, i) => {
        bytes += Number(g.total_compressed_size ?? g.total_byte_size);
        if (bytes >= partitionBytes || i === groups.length - 1) {
          out.push({ files: [f], rowGroups: { from, to: i + 1 } });
          from = i + 1;
          bytes = 0;
        }
      });
    } else if (c.format === 'jsonl.gz' || (await isGzipFile(files, f))) {
      out.push({ files: [f] });
    } else {
      const n = Math.ceil(size / partitionBytes);
      for (let i = 0; i < n; i++) {
        out.push({
          files: [f],
          bytes: { start: Math.floor((i * size) / n), end: Math.floor(((i + 1) * size) / n) },
        });
      }
    }
  }
  return out;
}

/** Gzip by its magic bytes, as the JSONL reader decides (a `jsonl` collection may hold gzipped parts). */
async function isGzipFile(files: ReleaseFiles, f: string): Promise<boolean> {
  const head = await files.range(f, 0, 2);
  return head[0] === 0x1f && head[1] === 0x8b;
}

export const taskOwnerOf = (version: string) => `tasks:${version}`;

/**
 * Starts the sharded build of a claimed version under `lease`. Returns DISPATCHED once every partition
 * task is queued; the task that completes the last shard finalizes the version.
 */
export async function startShardedBuild(
  deps: BuildDeps & { tasks?: TaskDispatcher },
  event: ReleaseEvent,
  ctx: BuildContext,
  lease: Lease,
  workDir: string,
  inputs?: InputEtags,
): Promise<BuildOutcome | undefined> {
  const { store, registry, config, log } = deps;
  const { space, version } = ctx;
  const { spec, files } = await openRelease(deps, event, workDir, inputs);
  const counts = await shardCounts(deps, spec, files);
  if (!counts) return undefined;
  const started = Date.now();
  const quality: QualityGate = {
    minRecall: spec.quality.minRecall ?? config.minRecall ?? QUALITY_DEFAULTS.minRecall,
    sample: spec.quality.sample ?? config.qualitySample ?? QUALITY_DEFAULTS.sample,
    minOverlap: spec.quality.minOverlap ?? null,
  };

  // Unsharded collections of a mixed release: built here exactly as the unsharded path builds them.
  const unsharded: ShardedPlan['unsharded'] = { manifest: {}, reports: {}, timings: {} };
  const previous = await previousVersion(deps, ctx, workDir);
  for (const c of spec.collections) {
    if ((counts.get(c.name) ?? 1) > 1) continue;
    const t0 = Date.now();
    const table = await ingest(c, files, config.maxLineBytes, log, ctx);
    refuseUnservable(config, { name: c.name, dims: table.dims, M: c.M }, table.count, 1);
    const {
      segments: built,
      duplicateGroups,
      largestDuplicateGroup,
    } = await buildIndex(deps, c, table, join(workDir, c.name), ctx);
    const prev = await previous.collection(c.name, table.dims);
    const {
      recall: _r,
      overlap: _o,
      ef,
      ...report
    } = await qualityGate(deps, c, table, built, quality, prev, ctx);
    if (lease.lost()) throw new Error('lost the build lease while building');
    const segments = await writeSegments(store, space, version, c.name, built);
    unsharded.manifest[c.name] = {
      metric: c.metric,
      dims: table.dims,
      count: table.count,
      M: c.M,
      efConstruction: c.efConstruction,
      ef,
      metadataFields: [...table.metadataFields].sort(),
      segments,
    } satisfies CollectionManifest;
    unsharded.reports[c.name] = {
      count: table.count,
      dims: table.dims,
      metric: c.metric,
      M: c.M,
      efConstruction: c.efConstruction,
      ef,
      segments: segments.length,
      duplicateGroups,
      largestDuplicateGroup,
      ...report,
    } satisfies CollectionReport;
    unsharded.timings[`${c.name}.buildMs`] = Date.now() - t0;
  }

  const sharded: ShardedCollectionPlan[] = spec.collections
    .filter((c) => (counts.get(c.name) ?? 1) > 1)
    .map((c) => ({ name: c.name, shards: counts.get(c.name) as number, partitions: [] as PartitionPlan[] }));
  for (const cp of sharded) {
    cp.partitions = await partitionsOf(
      spec.collections.find((c) => c.name === cp.name) as CollectionSpec,
      files,
      config.partitionBytes,
    );
  }
  const taskOwner = taskOwnerOf(version);
  const plan: ShardedPlan = { event, spec, quality, taskOwner, startedAt: started, sharded, unsharded };
  await store.putText(planKey(space, version), JSON.stringify(plan));

  const totals = {
    partitions: sharded.reduce((n, c) => n + c.partitions.length, 0),
    shards: sharded.reduce((n, c) => n + c.shards, 0),
  };
  // The hand-off: from here the version's lease belongs to its tasks; a redelivered event finds it held.
  const handedAt = (deps.now?.() ?? new Date()).getTime();
  const handed = await registry.startTasks(
    space,
    version,
    deps.owner,
    taskOwner,
    handedAt + config.taskPhaseMs,
    {
      ...totals,
      startedAt: handedAt,
    },
  );
  if (!handed) {
    log.warn('lost the build lease before starting the tasks', ctx);
    return { status: 'BUSY', version };
  }
  const tasks = deps.tasks ?? lambdaTasks(config);
  for (const c of sharded) {
    for (let i = 0; i < c.partitions.length; i++) {
      await tasks.dispatch({
        vicinity: 'build-task',
        kind: 'partition',
        space,
        version,
        collection: c.name,
        index: i,
      });
    }
  }
  // Every partition task is queued: from here Lambda's retries carry the build (sweeper/sweep.ts checks this).
  await registry.setVersionFields(space, version, 'BUILDING', {
    tasksDispatchedAt: new Date((deps.now?.() ?? new Date()).getTime()).toISOString(),
  });
  log.info('sharded build dispatched', {
    ...ctx,
    collections: sharded.map((c) => ({ name: c.name, shards: c.shards, partitions: c.partitions.length })),
  });
  return { status: 'DISPATCHED', version, ...totals };
}
