import type { Config } from '../common/config';
import type { AutoActivation } from '../core/activation';
import type {
  BlobStore,
  EventPublisher,
  IndexEngine,
  Log,
  PointerMoveNotifier,
  Registry,
  TaskDispatcher,
} from '../core/ports';

export interface BuildDeps {
  store: BlobStore;
  registry: Registry;
  engine: IndexEngine;
  config: Config;
  log: Log;
  events: EventPublisher;
  /** Told when the build moves the pointer; by default log + PointerMoved event (no metric). */
  moves?: PointerMoveNotifier;
  /** Identifies this builder in leases (Lambda: the request id). */
  owner: string;
  now?: () => Date;
  /** Sharded builds: starts build tasks (default: asynchronous Invoke of the task function). */
  tasks?: TaskDispatcher;
  /** Test hooks: called after the snapshot is complete and before READY, and before activation (to crash there). */
  beforeReady?: (version: string) => Promise<void>;
  beforeActivate?: (version: string) => Promise<void>;
  /**
   * Aborted when the invocation nears its deadline (middy's timeoutEarlyInMillis): the build stops
   * before its next write, gives its lease up (or FAILS the version at the attempts cap) and throws,
   * so Lambda retries it.
   */
  signal?: AbortSignal;
  /**
   * How long a delivery that finds another attempt holding a live lease waits for it to settle before
   * throwing BuildBusyError (retryable). Default 20 s.
   */
  busyWaitMs?: number;
}

/** Retryable: another attempt holds a live lease on this version; the platform should deliver the event again. */
export class BuildBusyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BuildBusyError';
  }
}

/** Retryable: the invocation reached its deadline; the build stopped and gave its lease up. */
export class BuildAbortedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BuildAbortedError';
  }
}

export type BuildOutcome =
  | {
      status: 'READY';
      version: string;
      activation?: AutoActivation;
      built: boolean;
      /** What failed after READY (event, activation, retention): logged, kept in the record, never FAILED. */
      errors?: string[];
    }
  | { status: 'FAILED'; version: string; reason: string }
  | { status: 'BUSY'; version: string }
  /** A sharded release: its tasks are queued; the last shard task finalizes the version. */
  | { status: 'DISPATCHED'; version: string; partitions: number; shards: number }
  | { status: 'SKIPPED'; version: string; reason: string };

/** What every log line of one build carries. */
export type BuildContext = {
  space: string;
  version: string;
  release: string;
};

/** How often long steps (parsing, indexing) log their progress. */
export const PROGRESS_MS = 10_000;
