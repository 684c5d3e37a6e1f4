// core/: the pure domain — names, release schema, versions, pointer rules, activation, search, errors (kinds).
// Imports only core/ and contract.ts: nothing from AWS, hnswlib, HTTP or node:fs; adapters implement ports.ts.

import type { Readable } from 'node:stream';
import type { EventDetailType } from '../contract';
import type { ErasurePatch, ErasureRecord, ErasureStatus, SpaceDeletion } from './erasure';
import type { ChangedBy, HistoryEntry, Pointer } from './pointer';
import type { Metric } from './release';
import type { BuildTaskEvent } from './shard';
import type { SpaceSettings } from './space-settings';
import type { ReleaseEvent, VersionRecord, VersionStatus } from './version';

/** Conditions on a read: `ifMatch` reads the object only while its ETag (unquoted) is this one. */
export interface ReadOptions {
  ifMatch?: string;
}

/**
 * A read with `ifMatch` found the object changed (S3's 412 PreconditionFailed, or a response whose
 * ETag is not the one asked for): the object was replaced since its ETag was taken.
 */
export class BlobChangedError extends Error {
  constructor(
    readonly key: string,
    readonly expected: string,
    readonly actual?: string,
  ) {
    super(`${key} changed while it was read (ETag ${expected} expected${actual ? `, now ${actual}` : ''})`);
    this.name = 'BlobChangedError';
  }
}

/** What the use cases need from object storage (S3 in AWS, s3rver locally). */
export interface BlobStore {
  readonly bucket: string;
  head(key: string): Promise<{ bytes: number; etag?: string } | undefined>;
  /** The object as UTF-8; undefined when missing. Throws BlobChangedError when `ifMatch` does not hold. */
  getText(key: string, options?: ReadOptions): Promise<string | undefined>;
  /**
   * A stream of the object (or of bytes [offset, offset+bytes) of it); undefined when missing. Throws
   * BlobChangedError when `ifMatch` does not hold.
   */
  getStream(
    key: string,
    range?: { offset: number; bytes: number },
    options?: ReadOptions,
  ): Promise<Readable | undefined>;
  putText(key: string, text: string, contentType?: string): Promise<void>;
  /** Streams a local file up (multipart above the part size), never holding it in memory. */
  putFile(key: string, path: string, contentType?: string): Promise<void>;
  list(prefix: string): Promise<{ key: string; bytes: number }[]>;
  deleteKeys(keys: string[]): Promise<void>;
}

export interface VersionPage {
  versions: VersionRecord[];
  next?: string;
}

/** The pointer item with what rides on it: read in one request, so erasures cost no extra read. */
export interface SpaceState {
  pointer: Pointer;
  /** Moves whenever an erasure is recorded, restored or purged: instances re-read the list when it does. */
  erasureCounter: number;
  /** Moves only when erasures are recorded: versions checked against a smaller value need a purge pass. */
  erasureAdded: number;
  /** Set while the space is being deleted: it answers nothing. */
  deletion?: SpaceDeletion;
}

/** The fields a purge switches on a READY version, by a conditional write on its manifest generation. */
export interface ManifestSwitch {
  manifestKey: string;
  manifestGeneration: number;
  /** The space's `erasureAdded` this version has been checked (and purged) against. */
  purgedThrough: number;
  /** When the manifest was switched: objects it no longer names are deleted a grace period later. */
  purgeSwitchedAt?: string;
}

/** The fields `setVersionFields` may set on a version, guarded by its status. */
export type VersionFields = Pick<
  VersionRecord,
  | 'notActivatedReason'
  | 'filesDeletedAt'
  | 'inputEtags'
  | 'afterReadyErrors'
  | 'tasksDispatchedAt'
  | 'stagingDeletedAt'
>;

/** Version records, release claims, the pointer and the spaces registry (DynamoDB). */
export interface Registry {
  /** The stored pointer (strongly consistent unless `consistent` is false), or an empty one. */
  getPointer(space: string, consistent?: boolean): Promise<Pointer>;
  /**
   * The switch: writes `next` only if the stored generation still equals `current.generation`
   * (or no pointer exists and it is 0). Throws PointerConflictError carrying the stored pointer.
   */
  casPointer(current: Pointer, next: Pointer): Promise<void>;
  listHistory(space: string, limit: number): Promise<HistoryEntry[]>;

  getVersion(space: string, version: string): Promise<VersionRecord | undefined>;
  listVersions(space: string, limit: number, before?: string): Promise<VersionPage>;
  /** Maps a release event to its version number, allocating one on first sight (idempotent). */
  claimRelease(event: ReleaseEvent, now: Date): Promise<{ version: string; created: boolean }>;
  /** Creates the BUILDING record if absent; returns the stored record either way. */
  ensureVersion(record: VersionRecord): Promise<VersionRecord>;
  /** Takes the build lease if free or expired; returns the record if taken, undefined if someone else holds it. */
  acquireLease(
    space: string,
    version: string,
    owner: string,
    until: number,
    now: number,
  ): Promise<VersionRecord | undefined>;
  /**
   * Extends the lease to `until` only while `owner` holds it and it has not expired at `now` (default:
   * the wall clock): an attempt that wakes after its lease ran out never takes it back. `until` 0
   * gives the lease up.
   */
  renewLease(space: string, version: string, owner: string, until: number, now?: number): Promise<boolean>;
  /** Ends a build (READY or FAILED) only while `owner` still holds the lease. */
  finishVersion(
    space: string,
    version: string,
    owner: string,
    patch: Partial<VersionRecord>,
  ): Promise<boolean>;
  /**
   * The sweeper's verdict on a BUILDING version nobody is building: FAILED with `patch`, only if it is
   * still BUILDING, its lease (if any) expired before `now`, and no attempt started since the sweeper
   * read it (`attempts` still `seenAttempts`, 0 meaning never leased). False otherwise.
   */
  failAbandoned(
    space: string,
    version: string,
    now: number,
    seenAttempts: number,
    patch: Pick<VersionRecord, 'reason' | 'finishedAt'>,
  ): Promise<boolean>;
  /** Sets `fields` on a version only while it is in `status`; false if it was not. */
  setVersionFields(
    space: string,
    version: string,
    status: VersionStatus,
    fields: VersionFields,
  ): Promise<boolean>;
  /** Moves a version from one status to another only if it is still in `from`; false if it was not. */
  transitionStatus(space: string, version: string, from: VersionStatus, to: VersionStatus): Promise<boolean>;

  /**
   * Sharded builds: hands the build lease from `owner` to `taskOwner` (until `until`) and starts the
   * fan-in state with these totals; false unless the version is BUILDING under `owner`'s lease.
   */
  startTasks(
    space: string,
    version: string,
    owner: string,
    taskOwner: string,
    until: number,
    totals: { partitions: number; shards: number; startedAt?: number },
  ): Promise<boolean>;
  /** Counts one more attempt of task `key`; undefined unless the version is BUILDING with tasks. */
  beginTask(
    space: string,
    version: string,
    key: string,
  ): Promise<{ attempts: number; done: boolean; record: VersionRecord } | undefined>;
  /**
   * Records task `key` done with `rows` (one conditional update: idempotent per key). `recorded` is
   * false when it was already done; undefined when the version is no longer BUILDING with tasks.
   */
  completeTask(
    space: string,
    version: string,
    key: string,
    rows: number,
  ): Promise<{ recorded: boolean; record: VersionRecord } | undefined>;
  /** The pointer item: the pointer, the erasure counters and a pending deletion, in one read. */
  getSpaceState(space: string, consistent?: boolean): Promise<SpaceState>;
  /** Writes (or overwrites) erasure records, then moves both counters; returns the new state's counters. */
  recordErasures(space: string, records: ErasureRecord[]): Promise<{ erasureCounter: number }>;
  listErasures(space: string): Promise<ErasureRecord[]>;
  /** Updates one erasure only while it is in `from` (any status when undefined); false if it was not. */
  updateErasure(
    space: string,
    collection: string,
    id: string,
    from: ErasureStatus | undefined,
    /** `null` removes a field. */
    patch: ErasurePatch,
  ): Promise<boolean>;
  /** Moves `erasureCounter` (not `erasureAdded`): restores and purges, so instances re-read the list. */
  bumpErasureCounter(space: string): Promise<void>;
  /**
   * Switches a READY version to a purged manifest only if its manifest generation is still
   * `expectedGeneration` (0: never purged); false otherwise.
   */
  switchManifest(
    space: string,
    version: string,
    expectedGeneration: number,
    next: ManifestSwitch,
  ): Promise<boolean>;
  /**
   * Marks the space as being deleted, only while the pointer is at `deletion.generation`; throws
   * PointerConflictError otherwise. Marking an already-marked space again is a no-op.
   */
  markSpaceDeleting(deletion: SpaceDeletion): Promise<void>;
  /** Deletes every item of the space (versions, claims, history, erasures, sequence), then the pointer item and its registry entry. */
  deleteSpaceRecords(space: string): Promise<void>;

  /** The space's settings item (strongly consistent), over the defaults when it has none. */
  getSpaceSettings(space: string): Promise<SpaceSettings>;
  /** Writes (replaces) the space's settings item; deleteSpaceRecords removes it with the rest. */
  putSpaceSettings(space: string, settings: SpaceSettings): Promise<void>;
  /** Deletes the space's settings item (none: nothing happens). */
  deleteSpaceSettings(space: string): Promise<void>;

  registerSpace(space: string, now: Date): Promise<void>;
  listSpaces(): Promise<string[]>;
  /** The pointers of these spaces, in order, leaving out the spaces being deleted (a deletion mark). */
  getPointers(spaces: string[]): Promise<Pointer[]>;
}

export interface SearchHit {
  label: number;
  distance: number;
}

/** A loaded HNSW index (hnswlib-node in production). */
export interface VectorIndex {
  readonly dims: number;
  readonly count: number;
  search(query: number[], k: number, ef: number, filter?: (label: number) => boolean): SearchHit[];
  getVector(label: number): number[];
  /**
   * Frees the index's native memory now, when the cache evicts it (V8 never sees that memory, so waiting
   * for GC could wait forever). Any later search or getVector throws instead of touching freed memory.
   */
  release?(): void;
}

export interface IndexBuilder {
  add(vector: number[], label: number): void;
  write(path: string): Promise<void>;
  search(query: number[], k: number, ef: number): SearchHit[];
}

export interface IndexEngine {
  create(
    metric: Metric,
    dims: number,
    capacity: number,
    M: number,
    efConstruction: number,
    seed?: number,
  ): IndexBuilder;
  /** Checks the file header against the manifest, then loads into a fresh object. */
  load(
    path: string,
    metric: Metric,
    dims: number,
    count: number,
    M: number,
    ef: number,
  ): Promise<VectorIndex>;
}

/** The logging the use cases need; Powertools' Logger satisfies it. */
export interface Log {
  debug(message: string, extra?: Record<string, unknown>): void;
  info(message: string, extra?: Record<string, unknown>): void;
  warn(message: string, extra?: Record<string, unknown>): void;
  error(message: string, extra?: Record<string, unknown>): void;
}

export const silentLog: Log = { debug() {}, info() {}, warn() {}, error() {} };

/** Lifecycle events for pipelines (EventBridge in AWS; a no-op locally unless configured). */
export interface EventPublisher {
  publish(detailType: EventDetailType, detail: Record<string, unknown>): Promise<void>;
}

export const noEvents: EventPublisher = { publish: async () => {} };

/** A switch that happened: the pointer now names `version` (a no-op activation is not a move). */
export interface PointerMove {
  space: string;
  version: string;
  pointer: Pointer;
  by: ChangedBy;
}

/**
 * Told after every pointer move, whoever made it (build, API, CLI), so every move is logged, published
 * and counted the same way. Called after the conditional write succeeded: it must not throw for a lost
 * notification, since the switch has already happened.
 */
export interface PointerMoveNotifier {
  onPointerMoved(move: PointerMove): Promise<void>;
}

/** Starts build tasks of sharded collections (asynchronous Lambda invokes of the task function). */
export interface TaskDispatcher {
  dispatch(task: BuildTaskEvent): Promise<void>;
}

/** For callers with nobody to tell (benchmarks, some tests). */
export const noPointerMoves: PointerMoveNotifier = { onPointerMoved: async () => {} };
