import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ENV } from '../contract';
import { DEFAULT_PURGE_SEGMENT_ITEMS } from '../core/purge-budget';

export interface Config {
  readonly region: string;
  readonly bucket: string;
  readonly table: string;
  readonly s3Endpoint?: string;
  readonly dynamodbEndpoint?: string;
  /** How long the query function trusts its cached pointer before reading DynamoDB again. */
  readonly pointerTtlMs: number;
  /** After a pointer move, how long a warm instance serves the version it has loaded while the new one loads. */
  readonly switchGraceMs: number;
  /** Where snapshot files are downloaded (Lambda: /tmp). */
  readonly cacheDir: string;
  /**
   * Bytes loaded collections may take in an instance (native hnswlib indexes, parsed ids and metadata,
   * derived data): a load that cannot fit after evicting what may go is a 503, never an OOM.
   */
  readonly memoryBudgetBytes: number;
  /** Bytes of snapshot files the cache directory may hold; least recently used versions' files go first. */
  readonly diskBudgetBytes: number;
  /** Distinct versions, besides each space's active and previous one, pinned requests may keep loaded. */
  readonly maxPinnedVersions: number;
  /** How long a pinned request protects its version (from eviction) and counts against maxPinnedVersions. */
  readonly pinWindowMs: number;
  /** READY versions kept besides the active and previous one. */
  readonly retainVersions: number;
  /** Between marking a version DELETED and deleting its files: long enough for any activation in flight to land. */
  readonly retentionGraceMs: number;
  readonly leaseMs: number;
  readonly fileWaitMs: number;
  readonly minRecall: number;
  readonly qualitySample: number;
  readonly maxLineBytes: number;
  readonly buildWorkers: number;
  readonly corsOrigins: readonly string[];
  readonly eventBusName?: string;
  /** readAuth=none: anonymous callers get public reads only (common/public-reads.ts). */
  readonly publicReads: boolean;
  /** With publicReads: the metadata fields anonymous callers may see. */
  readonly publicMetadataFields: readonly string[];
  /** Sharded builds: the Lambda endpoint override (local stand-in) and the task function's name. */
  readonly lambdaEndpoint?: string;
  readonly taskFunction: string;
  readonly taskMemoryMb: number;
  readonly maxShardItems: number;
  readonly taskPhaseMs: number;
  /** Sharded builds: an input file bigger than this is read by several partition tasks (JSONL byte ranges, Parquet row groups). */
  readonly partitionBytes: number;
  /** Sweeper: a task phase in which no task began this long after the hand-off is dispatched again (then FAILED). */
  readonly taskStartMs: number;
  /** Sweeper: a purge rebuilds a segment as pieces of at most this many items, in parallel (core/purge-budget.ts). */
  readonly purgeSegmentItems: number;
  /** Scatter-gather: the slot functions' name prefix (unset: sharded collections are searched in-process). */
  readonly slotFunctionPrefix?: string;
  readonly shardSlots: number;
  readonly slotHedgeMs: number;
  /** Router: a slot call's deadline, ms (capped by the router's remaining Lambda time). */
  readonly slotDeadlineMs: number;
  /** Slot: the most bytes of JSON one answer holds (Lambda's 6 MB synchronous payload limit, less room). */
  readonly slotMaxResponseBytes: number;
  /** Build: the slot functions' memory, MB (unset: no slot capacity check). */
  readonly slotMemoryMb?: number;
  /** Build: the query function's memory, MB (unset: no check that it can load a collection built whole). */
  readonly queryMemoryMb?: number;
}

/** MB of a query or slot function's memory its snapshot cache may fill: the rest holds the runtime and a load in flight. */
export function cacheBudgetMb(functionMemoryMb: number): number {
  return Math.floor(functionMemoryMb * 0.6);
}

function int(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n)) throw new Error(`Environment variable ${name}=${raw} is not a number`);
  return n;
}

function required(env: NodeJS.ProcessEnv, name: string): string {
  const v = env[name];
  if (!v) throw new Error(`Environment variable ${name} is required`);
  return v;
}

/** Reads the environment once into a typed, frozen object; handlers call it at cold start. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Config {
  const lambdaMb = int(env, ENV.lambdaMemoryMb, 2048);
  const config: Config = {
    region: env[ENV.region] || 'us-east-1',
    bucket: overrides.bucket ?? required(env, ENV.bucket),
    table: overrides.table ?? required(env, ENV.table),
    s3Endpoint: env[ENV.s3Endpoint] || undefined,
    dynamodbEndpoint: env[ENV.dynamodbEndpoint] || undefined,
    pointerTtlMs: int(env, ENV.pointerTtlMs, 1000),
    switchGraceMs: int(env, ENV.switchGraceMs, 30_000),
    cacheDir: env[ENV.cacheDir] || join(tmpdir(), 'vicinity-cache'),
    // Leave room for the runtime and one snapshot being loaded next to the active one.
    memoryBudgetBytes: int(env, ENV.memoryBudgetMb, cacheBudgetMb(lambdaMb)) * 1024 * 1024,
    // Lambda's /tmp is 512 MB unless the function configures more (infra passes it); leave a fifth free.
    diskBudgetBytes:
      int(env, ENV.diskBudgetMb, Math.floor(int(env, ENV.ephemeralStorageMb, 512) * 0.8)) * 1024 * 1024,
    maxPinnedVersions: int(env, ENV.maxPinnedVersions, 2),
    pinWindowMs: int(env, ENV.pinWindowMs, 300_000),
    retainVersions: int(env, ENV.retainVersions, 5),
    retentionGraceMs: int(env, ENV.retentionGraceMs, 30_000),
    leaseMs: int(env, ENV.leaseMs, 60_000),
    fileWaitMs: int(env, ENV.fileWaitMs, 60_000),
    minRecall: int(env, ENV.minRecall, 0.95),
    qualitySample: int(env, ENV.qualitySample, 200),
    maxLineBytes: int(env, ENV.maxLineBytes, 1 << 20),
    buildWorkers: int(env, ENV.buildWorkers, 0),
    corsOrigins: (env[ENV.corsOrigins] ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    eventBusName: env[ENV.eventBusName] || undefined,
    publicReads: env[ENV.publicReads] === 'true',
    publicMetadataFields: (env[ENV.publicMetadataFields] ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    lambdaEndpoint: env[ENV.lambdaEndpoint] || undefined,
    taskFunction: env[ENV.taskFunction] || 'vicinity-build-tasks',
    taskMemoryMb: int(env, ENV.taskMemoryMb, 3008),
    maxShardItems: int(env, ENV.maxShardItems, 2_000_000),
    taskPhaseMs: int(env, ENV.taskPhaseMs, 4 * 3600_000),
    partitionBytes: int(env, ENV.partitionBytes, 512 * 2 ** 20),
    taskStartMs: int(env, ENV.taskStartMs, 15 * 60_000),
    purgeSegmentItems: int(env, ENV.purgeSegmentItems, DEFAULT_PURGE_SEGMENT_ITEMS),
    slotFunctionPrefix: env[ENV.slotFunctionPrefix] || undefined,
    shardSlots: int(env, ENV.shardSlots, 8),
    slotHedgeMs: int(env, ENV.slotHedgeMs, 1000),
    slotDeadlineMs: int(env, ENV.slotDeadlineMs, 25_000),
    slotMaxResponseBytes: int(env, ENV.slotMaxResponseBytes, 6 * 1024 * 1024 - 64 * 1024),
    slotMemoryMb: env[ENV.slotMemoryMb] ? int(env, ENV.slotMemoryMb, 0) : undefined,
    queryMemoryMb: env[ENV.queryMemoryMb] ? int(env, ENV.queryMemoryMb, 0) : undefined,
    ...overrides,
  };
  return Object.freeze(config);
}
