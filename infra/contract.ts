/**
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
} as const);

export const METRIC = Object.freeze({
  /** build (Count): a release became a READY version (emitted by functions/build/handler.ts). */
  buildsReady: 'BuildsReady',
  /** build (Count): a release ended FAILED (emitted by functions/build/handler.ts). */
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
  /** build, admin (Count): the pointer of a space moved (functions/build/handler.ts, functions/admin/handler.ts). */
  pointerMoves: 'PointerMoves',
} as const);

/** `source` of every event the functions put on the bus. */
export const EVENT_SOURCE = 'vicinity';

/**
 * `detail-type` of the events (functions/core/ports.ts EventPublisher); `detail` carries at least
 * `space` and `version`.
 */
export const EVENT_DETAIL_TYPE = Object.freeze({
  versionReady: 'VersionReady',
  versionFailed: 'VersionFailed',
  pointerMoved: 'PointerMoved',
} as const);

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
