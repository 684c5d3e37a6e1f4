/**
 * The contract between the deployed functions, the infrastructure, the CLI, the local stack and the
 * page: environment variable names, storage key prefixes, metric names and event types. Pure
 * constants and types; imports nothing.
 *
 * Names shared between the deployed functions and the infrastructure that watches and routes them:
 * CloudWatch metrics (alarms and the dashboard read them) and EventBridge events (rules match them).
 *
 * The functions emit metrics with Powertools Metrics, which reads POWERTOOLS_METRICS_NAMESPACE and
 * POWERTOOLS_SERVICE_NAME from the environment the stack sets, and adds `service` as the only default
 * dimension. Alarms match the metric by exactly that dimension set, so emit these metrics with no
 * extra dimensions (put the space in metadata or logs instead).
 */

export const METRICS_NAMESPACE = 'Vicinity';

/** Value of the `service` dimension (POWERTOOLS_SERVICE_NAME) of each function. */
export const SERVICE_NAME = Object.freeze({
  query: 'vicinity-query',
  admin: 'vicinity-admin',
  build: 'vicinity-build',
  sweeper: 'vicinity-sweeper',
  tasks: 'vicinity-build-tasks',
} as const);

export const METRIC = Object.freeze({
  /** build (Count): a release became a READY version (emitted by functions/builder/handler.ts). */
  buildsReady: 'BuildsReady',
  /** build (Count): a release ended FAILED (emitted by functions/builder/handler.ts). */
  buildFailures: 'BuildFailures',
  /** query (Count): a snapshot was loaded into memory (emitted by functions/query/handler.ts). */
  snapshotLoads: 'SnapshotLoads',
  /** query (Milliseconds): download part of a load. */
  snapshotDownloadMs: 'SnapshotDownloadMs',
  /** query (Milliseconds): readIndex part of a load. */
  snapshotReadIndexMs: 'SnapshotReadIndexMs',
  /** query, admin (Milliseconds): handler latency per request. */
  requestLatency: 'RequestLatency',
  /**
   * query (Count): a snapshot failed sha256/header verification or loading (the request got a 503).
   * Emitted by functions/query/handler.ts (SnapshotCache onFailure).
   */
  snapshotLoadFailures: 'SnapshotLoadFailures',
  /** build, admin (Count): the pointer of a space moved (functions/common/pointer-notifier.ts, for every switch). */
  pointerMoves: 'PointerMoves',
  /** query (Bytes): bytes downloaded by a load. */
  snapshotLoadBytes: 'SnapshotLoadBytes',
  /** query (Milliseconds): sha256 verification part of a load. */
  snapshotVerifyMs: 'SnapshotVerifyMs',
  /** query (Milliseconds): ids/metadata parse part of a load. */
  snapshotParseMs: 'SnapshotParseMs',
  /** query (Count): a request found its collection loaded / had to load it. */
  cacheHit: 'CacheHit',
  cacheMiss: 'CacheMiss',
  /**
   * build (Count): an uploaded `incoming/…/release.json` whose key names no valid space (so no version
   * can record it) was refused; the event also goes to the failed-builds queue (functions/builder/handler.ts).
   */
  releasesRefused: 'ReleasesRefused',
  /** sweeper (Count): BUILDING versions the sweeper marked FAILED (functions/sweeper/handler.ts). */
  buildsAbandoned: 'BuildsAbandoned',
  /**
   * sweeper (Count): spaces whose erasures' purge made no progress in MAX_PURGE_ATTEMPTS sweeps in a
   * row (cut short before the deadline or killed; the erasures carry `purgeError`). Emitted every
   * sweep, zeros included (functions/sweeper/handler.ts); alarmed in infra/constructs/sweeper.ts.
   */
  purgesStalled: 'PurgesStalled',
  /** query, admin (Count): responses with a 5xx / 4xx status. */
  serverErrors: 'ServerErrors',
  clientErrors: 'ClientErrors',
  /** build tasks (Count): a partition/shard/finalize task failed for good and failed its version. */
  buildTaskFailures: 'BuildTaskFailures',
} as const);

export type MetricName = (typeof METRIC)[keyof typeof METRIC];

/** `source` of every event the functions put on the bus. */
export const EVENT_SOURCE = 'vicinity';

/**
 * `detail-type` of the events (functions/core/ports.ts EventPublisher); `detail` carries at least
 * `space` and `version` (ReleaseRefused: `key` and `reason`, and `space` only when it is valid).
 */
export const EVENT_DETAIL_TYPE = Object.freeze({
  versionReady: 'VersionReady',
  versionFailed: 'VersionFailed',
  pointerMoved: 'PointerMoved',
  /** A READY version whose release asked to be activated was not (`reason`; e.g. it would need force). */
  versionNotActivated: 'VersionNotActivated',
  /** An uploaded release.json was refused before any version could record it (`key`, `reason`; no `version`). */
  releaseRefused: 'ReleaseRefused',
} as const);

export type EventDetailType = (typeof EVENT_DETAIL_TYPE)[keyof typeof EVENT_DETAIL_TYPE];

/**
 * Payload of a warm-up invocation of the query function (when `warmUpInvocations` > 0): EventBridge
 * invokes the function asynchronously, several times at once, after the pointer moves. The handler
 * should load `version` of `space` (all its collections) and return; it is not an HTTP request.
 */
export interface WarmUpEvent {
  readonly vicinity: 'warm-up';
  readonly slot: number;
  readonly space: string;
  readonly version: string;
}

/** Environment variable names, shared by the functions (which read them) and infra (which sets them). */
export const ENV = Object.freeze({
  bucket: 'VICINITY_BUCKET',
  table: 'VICINITY_TABLE',
  region: 'AWS_REGION',
  s3Endpoint: 'AWS_ENDPOINT_URL_S3',
  dynamodbEndpoint: 'AWS_ENDPOINT_URL_DYNAMODB',
  pointerTtlMs: 'VICINITY_POINTER_TTL_MS',
  /**
   * Query: after the pointer moves, how long (ms) an instance with the old version loaded keeps answering
   * eventual, unpinned requests from it while it loads the new one in the background. Default 30,000;
   * 0: requests wait for the new version's load.
   */
  switchGraceMs: 'VICINITY_SWITCH_GRACE_MS',
  cacheDir: 'VICINITY_CACHE_DIR',
  memoryBudgetMb: 'VICINITY_MEMORY_BUDGET_MB',
  /** Query: MB of snapshot files the instance's cache directory may hold (default 80% of the ephemeral storage). */
  diskBudgetMb: 'VICINITY_DISK_BUDGET_MB',
  /** Query: the function's configured ephemeral storage (/tmp) in MB, set by infra (default 512, Lambda's). */
  ephemeralStorageMb: 'VICINITY_EPHEMERAL_STORAGE_MB',
  /** Query: versions besides the active and previous one that pinned requests may keep loaded per instance. */
  maxPinnedVersions: 'VICINITY_MAX_PINNED_VERSIONS',
  /** Query: how long a pinned request keeps its version loaded and counted against the pin cap. */
  pinWindowMs: 'VICINITY_PIN_WINDOW_MS',
  retainVersions: 'VICINITY_RETAIN_VERSIONS',
  retentionGraceMs: 'VICINITY_RETENTION_GRACE_MS',
  leaseMs: 'VICINITY_LEASE_MS',
  fileWaitMs: 'VICINITY_FILE_WAIT_MS',
  minRecall: 'VICINITY_MIN_RECALL',
  qualitySample: 'VICINITY_QUALITY_SAMPLE',
  maxLineBytes: 'VICINITY_MAX_LINE_BYTES',
  buildWorkers: 'VICINITY_BUILD_WORKERS',
  corsOrigins: 'VICINITY_CORS_ORIGINS',
  eventBusName: 'VICINITY_EVENT_BUS',
  lambdaMemoryMb: 'AWS_LAMBDA_FUNCTION_MEMORY_SIZE',
  /**
   * `true` when the deployer set readAuth=none: the read routes are public, so the query function must
   * treat every HTTP request without `requestContext.authorizer.iam`/`.jwt` as anonymous and refuse
   * `include=vector`, strip metadata not listed in publicMetadataFields, and cap cost amplifiers.
   * Absent (never `false`) when reads are authenticated (iam, jwt).
   */
  publicReads: 'VICINITY_PUBLIC_READS',
  /** With publicReads: comma-separated metadata fields anonymous callers may see (empty: none). */
  publicMetadataFields: 'VICINITY_PUBLIC_METADATA_FIELDS',
  /**
   * Sweeper: a BUILDING version under the attempts cap whose lease expired this long ago (or that never
   * got a lease this long after it was created) is FAILED — no retry is coming. Default 3,600,000 (1 h).
   */
  sweepStaleMs: 'VICINITY_SWEEP_STALE_MS',
  /** Local stack only: the sweeper's period (on AWS an EventBridge schedule, every 5 minutes). Default 60,000. */
  sweepMs: 'VICINITY_SWEEP_MS',
  /** Lambda endpoint override (the local Lambda Invoke stand-in); the SDK reads the same name itself. */
  lambdaEndpoint: 'AWS_ENDPOINT_URL_LAMBDA',
  /** Name (or ARN) of the build-task function that runs partition, shard and finalize tasks. */
  taskFunction: 'VICINITY_TASK_FUNCTION',
  /** Memory of the task function (MB): the shard planner's index budget. */
  taskMemoryMb: 'VICINITY_TASK_MEMORY_MB',
  /** Most items in one shard when `"shards": "auto"` (default 2,000,000). */
  maxShardItems: 'VICINITY_MAX_SHARD_ITEMS',
  /** How long a version's task phase may take before its lease expires (ms, default 4 h). */
  taskPhaseMs: 'VICINITY_TASK_PHASE_MS',
  /**
   * An input file of a sharded collection bigger than this (bytes, default 512 MiB) is split over several
   * partition tasks: plain JSONL by byte range (at line boundaries), Parquet by groups of row groups.
   */
  partitionBytes: 'VICINITY_PARTITION_BYTES',
  /**
   * Sweeper: a version whose build handed its lease to the task phase this long ago (ms, default 15 min)
   * without any task having begun gets its partition tasks dispatched again; as long again after that, FAILED.
   */
  taskStartMs: 'VICINITY_TASK_START_MS',
  /** Sweeper: the most items one rebuilt segment piece of a purge holds (default 250,000; more: pieces in parallel). */
  purgeSegmentItems: 'VICINITY_PURGE_SEGMENT_ITEMS',
  /**
   * Test hook only: `<marker-file>:<collection>:<shard>` — that shard task SIGKILLs its own process once
   * (the marker file records that it did). Never set in a deployment.
   */
  testKillShard: 'VICINITY_TEST_KILL_SHARD',
  /**
   * Query router: the prefix of the shard-slot functions' names (`{prefix}{i}`, i in 0…shardSlots−1).
   * Unset: no slot functions, and a sharded collection is searched in-process (all its segments).
   */
  slotFunctionPrefix: 'VICINITY_SLOT_FUNCTION_PREFIX',
  /** Router and slots: how many shard-slot functions the stack defines (shard j → slot j mod shardSlots). */
  shardSlots: 'VICINITY_SHARD_SLOTS',
  /** Build: the slot functions' memory (MB); set, a release whose busiest slot would not fit is refused. */
  slotMemoryMb: 'VICINITY_SLOT_MEMORY_MB',
  /**
   * Build: the query function's memory (MB); set, `"shards": "auto"` shards a collection the query
   * function could not load whole, and a collection built whole that it could not load is refused.
   */
  queryMemoryMb: 'VICINITY_QUERY_MEMORY_MB',
  /** Slot function: which slot this function is (0…shardSlots−1). */
  slot: 'VICINITY_SLOT',
  /** Router: ms before a slot call gets its hedged retry until that slot's p95 is known (default 1,000). */
  slotHedgeMs: 'VICINITY_SLOT_HEDGE_MS',
  /**
   * Router: ms a slot call (both attempts) may take before its shards count as missing (default 25,000;
   * never past the router's own remaining Lambda time, less a margin to answer the 503).
   */
  slotDeadlineMs: 'VICINITY_SLOT_DEADLINE_MS',
  /**
   * Slot: bytes a slot's answer may hold (default 6 MB less 64 KB, under Lambda's synchronous payload
   * limit); a batch whose answer would be larger is answered in several calls.
   */
  slotMaxResponseBytes: 'VICINITY_SLOT_MAX_RESPONSE_BYTES',
  /**
   * Test hook only: `<marker-file>:<slot>` — while the marker file exists, that slot function SIGKILLs its
   * own process on every invocation. Never set in a deployment.
   */
  testKillSlot: 'VICINITY_TEST_KILL_SLOT',
} as const);

/** Storage key prefixes in the bucket: producers upload under `incoming/`, builds write `snapshots/`. */
export const KEY_PREFIX = Object.freeze({
  incoming: 'incoming/',
  snapshots: 'snapshots/',
  /** Partition chunks and task results of sharded builds: `staging/{space}/{version}/…`, deleted when the version settles. */
  staging: 'staging/',
} as const);
