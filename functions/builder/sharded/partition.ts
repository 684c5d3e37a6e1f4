/**
 * Partition task: streams one input part of a sharded collection, validates every row (the same
 * readers and messages as the unsharded build), and writes each row to its shard's chunks under
 * `staging/{space}/{version}/{collection}/shard-{j}/p{i}-{k}.chunk`. Memory stays bounded (chunks are
 * flushed at a size), outputs are keyed by (version, collection, part), so a retry overwrites them.
 */
import { readerFor } from '../../adapters/readers/index';
import { type FilePart, ProblemCollector } from '../../adapters/readers/types';
import { ReleaseInvalidError } from '../../core/errors';
import { fnv1a64, shardOf } from '../../core/shard';
import { s3ReleaseFiles } from '../s3-release-files';
import type { TaskRun } from './layout';
import {
  encodeChunk,
  type PartitionResult,
  partitionResultKey,
  pieceKey,
  type SampleItem,
  type ShardedPlan,
} from './layout';

/** Buffered vectors of all shards together before the fullest is flushed. */
const BUFFER_BYTES = 64 * 1024 * 1024;
/** A task stops (and is retried) with this much time left rather than be killed mid-write. */
export const DEADLINE_MARGIN_MS = 10_000;

export class DeadlineError extends Error {}

class ShardBuffer {
  ids: string[] = [];
  lines: number[] = [];
  meta: (Record<string, unknown> | null)[] = [];
  hasMeta = false;
  vectors: Float32Array;
  n = 0;
  pieces = 0;
  file = '';
  constructor(readonly dims: number) {
    this.vectors = new Float32Array(dims * 256);
  }
  push(id: string, v: Float32Array, line: number, meta: Record<string, unknown> | null) {
    if ((this.n + 1) * this.dims > this.vectors.length) {
      const grown = new Float32Array(this.vectors.length * 2);
      grown.set(this.vectors);
      this.vectors = grown;
    }
    this.vectors.set(v, this.n * this.dims);
    this.ids.push(id);
    this.lines.push(line);
    this.meta.push(meta);
    if (meta) this.hasMeta = true;
    this.n++;
  }
  get bytes() {
    return this.n * this.dims * 4;
  }
  reset() {
    this.ids = [];
    this.lines = [];
    this.meta = [];
    this.hasMeta = false;
    this.n = 0;
  }
}

export async function runPartition(run: TaskRun, plan: ShardedPlan, collection: string, part: number) {
  const { deps } = run;
  const { space, version } = run;
  const started = Date.now();
  const cp = plan.sharded.find((c) => c.name === collection);
  const spec = plan.spec.collections.find((c) => c.name === collection);
  if (!cp || !spec) throw new Error(`plan of ${version} has no sharded collection ${collection}`);
  const partition = cp.partitions[part];
  if (!partition) throw new Error(`collection ${collection} has no partition ${part}`);
  const partFiles = partition.files;
  // Every input is read as the ETag the build recorded: a file rewritten since FAILS the version.
  const files = s3ReleaseFiles(deps.store, `incoming/${space}/${plan.event.release}/`, run.inputEtags);
  const problems = new ProblemCollector(10);
  const buffers = new Map<number, ShardBuffer>();
  const pieces: Record<number, number> = {};
  const metadataFields = new Set<string>();
  let dims = 0;
  let rows = 0;
  let buffered = 0;
  // Bottom-k sketch by a hash of the id: the smallest keys over all partitions are the gate's sample.
  let sample: SampleItem[] = [];
  const keep = plan.quality.sample;

  const flush = async (shard: number, b: ShardBuffer) => {
    if (b.n === 0) return;
    const body = encodeChunk(
      {
        dims: b.dims,
        n: b.n,
        file: b.file,
        ids: b.ids,
        lines: b.lines,
        ...(b.hasMeta ? { meta: b.meta } : {}),
      },
      b.vectors.subarray(0, b.n * b.dims),
    );
    await run.putBytes(pieceKey(space, version, collection, shard, part, b.pieces), body);
    b.pieces++;
    pieces[shard] = b.pieces;
    buffered -= b.bytes;
    b.reset();
  };

  const filePart: FilePart | undefined =
    partition.bytes || partition.rowGroups || partition.rows
      ? {
          ...(partition.bytes ? { bytes: partition.bytes } : {}),
          ...(partition.rowGroups ? { rowGroups: partition.rowGroups } : {}),
          ...(partition.rows ? { rows: partition.rows } : {}),
        }
      : undefined;
  // A later byte range numbers its lines within the range until the fan-in knows where it starts.
  const deferProblems = (partition.bytes?.start ?? 0) > 0;
  const reader = readerFor(spec.format)({
    spec: { ...spec, files: partFiles },
    files,
    problems,
    maxLineBytes: deps.config.maxLineBytes,
    ...(filePart ? { part: filePart } : {}),
  });
  for await (const row of reader) {
    if (!dims) dims = row.vector.length;
    const shard = shardOf(row.id, cp.shards);
    let b = buffers.get(shard);
    if (!b) {
      b = new ShardBuffer(dims);
      buffers.set(shard, b);
    }
    // A chunk names one file: a partition reads one file (raw: its ids file names the lines).
    if (b.n > 0 && b.file !== row.file) await flush(shard, b);
    b.file = row.file;
    b.push(row.id, row.vector, row.line, row.metadata);
    buffered += dims * 4;
    if (row.metadata) for (const k of Object.keys(row.metadata)) metadataFields.add(k);
    rows++;
    const key = fnv1a64(`sample:${row.id}`).toString(16).padStart(16, '0');
    if (sample.length < keep || key < (sample[sample.length - 1] as SampleItem).key) {
      sample.push({ id: row.id, key, vector: Array.from(row.vector) });
      if (sample.length > keep * 2) sample = sortSample(sample).slice(0, keep);
    }
    if (buffered > BUFFER_BYTES) {
      let fullest: [number, ShardBuffer] | undefined;
      for (const e of buffers) if (!fullest || e[1].bytes > fullest[1].bytes) fullest = e;
      if (fullest) await flush(fullest[0], fullest[1]);
    }
    if ((rows & 1023) === 0 && run.remainingMs() < DEADLINE_MARGIN_MS) {
      throw new DeadlineError(`partition ${part} of ${collection} stopped at row ${rows}: deadline near`);
    }
  }
  if (!problems.ok && !deferProblems) throw new ReleaseInvalidError(problems.problems, problems.count);
  // With problems kept for the fan-in the version will FAIL: its chunks are not needed.
  if (problems.ok) for (const [shard, b] of buffers) await flush(shard, b);
  const result: PartitionResult = {
    dims,
    rows,
    metadataFields: [...metadataFields].sort(),
    pieces,
    sample: sortSample(sample).slice(0, keep),
    files: partFiles,
    ...(partition.bytes ? { lines: filePart?.lines ?? 0 } : {}),
    ...(problems.ok ? {} : { problems: problems.problems, problemCount: problems.count }),
    ms: Date.now() - started,
  };
  await deps.store.putText(partitionResultKey(space, version, collection, part), JSON.stringify(result));
  return result;
}

export function sortSample(s: SampleItem[]): SampleItem[] {
  return s.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}
