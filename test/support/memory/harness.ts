/**
 * Use-case tests on the in-memory ports: a store, a registry, the real hnswlib engine, a config for
 * small releases, and helpers to publish a release folder and build it. No emulator, no network.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hnswEngine } from '../../../functions/adapters/hnsw-index';
import { type BuildDeps, type BuildOutcome, buildRelease } from '../../../functions/builder/build-release';
import { type Config, loadConfig } from '../../../functions/common/config';
import type { EventDetailType } from '../../../functions/contract';
import { type Log, silentLog } from '../../../functions/core/ports';
import type { ReleaseEvent } from '../../../functions/core/version';
import { SnapshotCache } from '../../../functions/snapshot/cache';
import { clusteredVectors, jsonlRows } from '../../../local/synthetic';
import { MemoryBlobStore } from './blob-store';
import { MemoryRegistry } from './registry';

export { MemoryBlobStore } from './blob-store';
export { MemoryRegistry } from './registry';

export const DIMS = 8;

export interface PublishedEvent {
  type: EventDetailType;
  detail: Record<string, unknown>;
}

/** A Log that keeps what was logged, for assertions on warnings. */
export function recordingLog(): Log & { lines: { level: string; message: string }[] } {
  const lines: { level: string; message: string }[] = [];
  const at = (level: string) => (message: string) => {
    lines.push({ level, message });
  };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** `n` rows of JSONL with ids `${prefix}0…`, clustered vectors of `dims` from `seed`. */
export function jsonl(prefix: string, n: number, seed: number, dims = DIMS): string {
  const data = clusteredVectors(n, dims, 4, seed);
  return jsonlRows(
    Array.from({ length: n }, (_, i) => `${prefix}${i}`),
    data.vectors,
    dims,
  );
}

export interface Harness {
  store: MemoryBlobStore;
  registry: MemoryRegistry;
  config: Config;
  events: PublishedEvent[];
  cacheDir: string;
  /** Build dependencies on the in-memory ports; `overrides` replace any of them. */
  deps(overrides?: Partial<BuildDeps>): BuildDeps;
  /** Writes the release's files, then its release.json (as `aws s3 sync` + the event would), and returns the event. */
  publish(
    space: string,
    release: string,
    files: Record<string, string>,
    releaseJson: unknown,
  ): Promise<ReleaseEvent>;
  build(event: ReleaseEvent, overrides?: Partial<BuildDeps>): Promise<BuildOutcome>;
  /** A snapshot cache over the store, as the query function holds one (own local directory). */
  snapshotCache(log?: Log): Promise<SnapshotCache>;
  dispose(): Promise<void>;
}

export async function harness(config: Partial<Config> = {}): Promise<Harness> {
  const cacheDir = await mkdtemp(join(tmpdir(), 'vicinity-unit-'));
  const store = new MemoryBlobStore();
  const registry = new MemoryRegistry();
  const events: PublishedEvent[] = [];
  const full = loadConfig(
    {},
    {
      bucket: store.bucket,
      table: 'memory-table',
      cacheDir: join(cacheDir, 'build'),
      // Files are in the store before release.json: nothing to wait for.
      fileWaitMs: 0,
      qualitySample: 20,
      buildWorkers: 1,
      retainVersions: 100,
      retentionGraceMs: 0,
      ...config,
    },
  );
  let sequencer = 0;
  let caches = 0;
  const h: Harness = {
    store,
    registry,
    config: full,
    events,
    cacheDir,
    deps: (overrides = {}) => ({
      store,
      registry,
      engine: hnswEngine,
      config: full,
      log: silentLog,
      events: {
        publish: async (type, detail) => {
          events.push({ type, detail });
        },
      },
      owner: 'unit-builder',
      ...overrides,
    }),
    async publish(space, release, files, releaseJson) {
      const prefix = `incoming/${space}/${release}/`;
      for (const [name, text] of Object.entries(files)) store.putBytes(prefix + name, text);
      const key = `${prefix}release.json`;
      await store.putText(key, JSON.stringify(releaseJson));
      sequencer++;
      return {
        space,
        release,
        key,
        sequencer: sequencer.toString(16).padStart(16, '0').toUpperCase(),
        etag: (await store.head(key))?.etag,
      };
    },
    build: (event, overrides) => buildRelease(h.deps(overrides), event),
    async snapshotCache(log = silentLog) {
      return new SnapshotCache(store, hnswEngine, {
        cacheDir: join(cacheDir, `query-${caches++}`),
        memoryBudgetBytes: 1 << 30,
        log,
      });
    },
    dispose: () => rm(cacheDir, { recursive: true, force: true }),
  };
  return h;
}
