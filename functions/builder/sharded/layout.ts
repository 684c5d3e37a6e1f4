/**
 * Sharded builds: what the build, the partition tasks, the shard tasks and the finaliser share — the
 * plan (written once by the build), staging keys, the chunk format and the task results.
 */
import { LambdaInvoker, lazyLambdaClient } from '../../adapters/lambda-invoke';
import type { RowRange } from '../../adapters/readers/types';
import type { Config } from '../../common/config';
import { KEY_PREFIX } from '../../contract';
import type { ReleaseProblem } from '../../core/errors';
import type { BlobStore, TaskDispatcher } from '../../core/ports';
import type { ReleaseSpec } from '../../core/release';
import type { Neighbour } from '../../core/search';
import type { BuildTaskEvent } from '../../core/shard';
import type { CollectionReport, ReleaseEvent } from '../../core/version';
import type { CollectionManifest, Segment } from '../../snapshot/manifest';
import type { QualityGate } from '../quality-gate';

/** Neighbours each shard reports per sampled query: top-10 plus the query item itself. */
export const QUALITY_K = 11;

export interface ShardedCollectionPlan {
  name: string;
  shards: number;
  /** One partition task per entry. */
  partitions: PartitionPlan[];
}

/**
 * What one partition task reads: one input file (raw input: vectors + ids), or one part of a big file —
 * a byte range of plain JSONL (the lines that start in it), a run of Parquet row groups, or a range of
 * raw rows (with the bytes of the ids file that hold their ids).
 */
export interface PartitionPlan {
  files: string[];
  bytes?: { start: number; end: number };
  rowGroups?: { from: number; to: number };
  rows?: RowRange;
}

/** `items.jsonl`, `items.jsonl bytes 0–1048576`, `part-0.parquet row groups 2–3`, `a.f32, a.ids rows 1–5000`. */
export function describePartition(p: PartitionPlan): string {
  const files = p.files.join(', ');
  if (p.rows) return `${files} rows ${p.rows.from + 1}–${p.rows.to}`;
  if (p.bytes) return `${files} bytes ${p.bytes.start}–${p.bytes.end}`;
  if (p.rowGroups) return `${files} row groups ${p.rowGroups.from}–${p.rowGroups.to - 1}`;
  return files;
}

/** Written once by the build to `staging/{space}/{version}/plan.json`; read by every task. */
export interface ShardedPlan {
  event: ReleaseEvent;
  spec: ReleaseSpec;
  quality: QualityGate;
  /** Owner of the version's lease during the task phase (finishVersion checks it). */
  taskOwner: string;
  startedAt: number;
  sharded: ShardedCollectionPlan[];
  /** Collections the build built itself (unsharded), ready for the manifest. */
  unsharded: {
    manifest: Record<string, CollectionManifest>;
    reports: Record<string, CollectionReport>;
    timings: Record<string, number>;
  };
}

export const stagingPrefix = (space: string, version: string) => `${KEY_PREFIX.staging}${space}/${version}/`;
export const planKey = (space: string, version: string) => `${stagingPrefix(space, version)}plan.json`;
export const pieceKey = (space: string, version: string, c: string, shard: number, part: number, k: number) =>
  `${stagingPrefix(space, version)}${c}/shard-${shard}/p${part}-${k}.chunk`;
export const shardPiecesPrefix = (space: string, version: string, c: string, shard: number) =>
  `${stagingPrefix(space, version)}${c}/shard-${shard}/`;
export const partitionResultKey = (space: string, version: string, c: string, part: number) =>
  `${stagingPrefix(space, version)}${c}/partition-${part}.json`;
/** Per partition of the collection: the file line its first line is (0 unless it is a later byte range). */
export const lineBasesKey = (space: string, version: string, c: string) =>
  `${stagingPrefix(space, version)}${c}/line-bases.json`;
export const queriesKey = (space: string, version: string, c: string) =>
  `${stagingPrefix(space, version)}${c}/queries.json`;
export const shardResultKey = (space: string, version: string, c: string, shard: number) =>
  `${stagingPrefix(space, version)}${c}/shard-${shard}.result.json`;

/** A sampled query candidate: an item of the collection, as read (not normalised). */
export interface SampleItem {
  id: string;
  /** Bottom-k sketch key: the smallest keys across all partitions form the sample. */
  key: string;
  vector: number[];
}

export interface PartitionResult {
  dims: number;
  rows: number;
  metadataFields: string[];
  /** shard → pieces written. */
  pieces: Record<number, number>;
  sample: SampleItem[];
  files: string[];
  /** Byte-range partitions: lines the range holds (its rows are numbered from 1 within it). */
  lines?: number;
  /**
   * A byte range after the first cannot name file lines until every earlier range has counted its
   * lines: its refused rows are kept here (lines within the range) and reported by the fan-in.
   */
  problems?: ReleaseProblem[];
  problemCount?: number;
  ms: number;
}

export interface ShardResult {
  count: number;
  dims: number;
  metadataFields: string[];
  segments: Segment[];
  /**
   * Per sampled query (queries.json order): exact and HNSW top-QUALITY_K over this shard, both with
   * exact distances (HNSW's answers recomputed as the exact search computes them), for the tie-aware gate.
   */
  exact: Neighbour[][];
  approx: Neighbour[][];
  timings: { readMs: number; indexMs: number; qualityMs: number; uploadMs: number };
  peakRssBytes: number;
}

/** One chunk: `[u32 LE header bytes][header JSON][pad to 4][float32 × n × dims]`. */
export interface ChunkHeader {
  dims: number;
  n: number;
  file: string;
  ids: string[];
  lines: number[];
  meta?: (Record<string, unknown> | null)[];
}

export function encodeChunk(h: ChunkHeader, vectors: Float32Array): Buffer {
  const json = Buffer.from(JSON.stringify(h));
  const pad = (4 - ((4 + json.length) % 4)) % 4;
  const out = Buffer.alloc(4 + json.length + pad + vectors.byteLength);
  out.writeUInt32LE(json.length, 0);
  json.copy(out, 4);
  Buffer.from(vectors.buffer, vectors.byteOffset, vectors.byteLength).copy(out, 4 + json.length + pad);
  return out;
}

export function decodeChunk(buf: Buffer): { header: ChunkHeader; vectors: Float32Array } {
  const len = buf.readUInt32LE(0);
  const header = JSON.parse(buf.subarray(4, 4 + len).toString('utf8')) as ChunkHeader;
  const start = 4 + len + ((4 - ((4 + len) % 4)) % 4);
  const bytes = buf.subarray(start, start + header.n * header.dims * 4);
  const vectors = new Float32Array(header.n * header.dims);
  new Uint8Array(vectors.buffer).set(bytes);
  return { header, vectors };
}

export async function readJson<T>(store: BlobStore, key: string): Promise<T> {
  const text = await store.getText(key);
  if (text === undefined) throw new Error(`${key} is missing from the bucket`);
  return JSON.parse(text) as T;
}

export async function readBytes(store: BlobStore, key: string): Promise<Buffer> {
  const s = await store.getStream(key);
  if (!s) throw new Error(`${key} is missing from the bucket`);
  const parts: Buffer[] = [];
  for await (const c of s as AsyncIterable<Buffer>) parts.push(c);
  return Buffer.concat(parts);
}

const dispatchers = new WeakMap<Config, TaskDispatcher>();

/**
 * The task dispatcher of a function: asynchronous Invoke of the task function through the real Lambda
 * client. Against a loopback endpoint (the local stand-in) with no credentials in the environment, any
 * key pair signs (the stand-in does not check signatures).
 */
export function lambdaTasks(config: Config): TaskDispatcher {
  let d = dispatchers.get(config);
  if (!d) {
    const local = !!config.lambdaEndpoint && !process.env.AWS_ACCESS_KEY_ID;
    const invoker = new LambdaInvoker(
      lazyLambdaClient({
        region: config.region,
        lambdaEndpoint: config.lambdaEndpoint,
        ...(local ? { credentials: { accessKeyId: 'local', secretAccessKey: 'local' } } : {}),
      }),
      config.taskFunction,
    );
    d = { dispatch: (task: BuildTaskEvent) => invoker.invokeEvent(task) };
    dispatchers.set(config, d);
  }
  return d;
}

/** Deletes everything under the version's staging prefix (after READY or FAILED); how many objects it deleted. */
export async function deleteStaging(store: BlobStore, space: string, version: string): Promise<number> {
  const keys = (await store.list(stagingPrefix(space, version))).map((o) => o.key);
  for (let i = 0; i < keys.length; i += 1000) await store.deleteKeys(keys.slice(i, i + 1000));
  return keys.length;
}

/** One running build task: its dependencies, its version, its deadline, and binary puts through the store. */
export interface TaskRun {
  deps: import('../deps').BuildDeps;
  tasks: TaskDispatcher;
  space: string;
  version: string;
  /** The input ETags the build recorded (version record `inputEtags`): every input is read as that ETag. */
  inputEtags?: Readonly<Record<string, string>>;
  /** Milliseconds left before the platform kills the task (Lambda's getRemainingTimeInMillis). */
  remainingMs(): number;
  /** Uploads bytes (through a file in the work dir: the store streams files, it has no binary put). */
  putBytes(key: string, body: Buffer): Promise<void>;
}
