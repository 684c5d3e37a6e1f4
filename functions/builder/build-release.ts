import { mkdir, rm, statfs, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { exactNeighbours } from '../adapters/exact-workers';
import { buildSegmentsInWorkers, segmentRanges } from '../adapters/hnsw-workers';
import { readerFor } from '../adapters/readers/index';
import { ProblemCollector } from '../adapters/readers/types';
import type { Config } from '../common/config';
import { EVENT_DETAIL_TYPE, KEY_PREFIX } from '../contract';
import { type AutoActivation, autoActivate } from '../core/activation';
import { ReleaseInvalidError } from '../core/errors';
import { parseVersion } from '../core/names';
import type { BlobStore, EventPublisher, IndexEngine, Log, Registry } from '../core/ports';
import { type CollectionSpec, parseRelease, QUALITY_DEFAULTS, type ReleaseSpec } from '../core/release';
import { mergeNeighbours, overlapAt } from '../core/search';
import type { CollectionReport, ReleaseEvent, VersionRecord } from '../core/version';
import { type LoadedCollection, SnapshotCache } from '../snapshot/cache';
import { digestFile } from '../snapshot/digest';
import {
  type CollectionManifest,
  type Manifest,
  manifestKey,
  type Segment,
  type SnapshotFile,
  snapshotPrefix,
} from '../snapshot/manifest';
import { applyRetention } from './retention';
import { s3ReleaseFiles, waitForFiles } from './s3-release-files';
import { VectorTable } from './vector-table';

export interface BuildDeps {
  store: BlobStore;
  registry: Registry;
  engine: IndexEngine;
  config: Config;
  log: Log;
  events: EventPublisher;
  /** Identifies this builder in leases (Lambda: the request id). */
  owner: string;
  now?: () => Date;
  /** Test hooks: called after the snapshot is complete and before READY, and before activation (to crash there). */
  beforeReady?: (version: string) => Promise<void>;
  beforeActivate?: (version: string) => Promise<void>;
}

export type BuildOutcome =
  | { status: 'READY'; version: string; activation?: AutoActivation; built: boolean }
  | { status: 'FAILED'; version: string; reason: string }
  | { status: 'BUSY'; version: string }
  | { status: 'SKIPPED'; version: string; reason: string };

const PROGRESS_MS = 10_000;

/** Turns one `release.json` event into one version: claim, build under a lease, READY or FAILED, then activate. */
export async function buildRelease(deps: BuildDeps, event: ReleaseEvent): Promise<BuildOutcome> {
  const now = deps.now ?? (() => new Date());
  const { registry, log } = deps;
  const { version } = await registry.claimRelease(event, now());
  const number = parseVersion(version) as number;
  const record = await registry.ensureVersion({
    space: event.space,
    version,
    number,
    status: 'BUILDING',
    release: event.release,
    releaseKey: event.key,
    releaseEtag: event.etag,
    sequencer: event.sequencer,
    createdAt: now().toISOString(),
  });
  const ctx = { space: event.space, version, release: event.release };

  if (record.status === 'READY') {
    // A redelivered event after a crash between READY and activation: finish the activation only.
    log.info('version already READY; completing activation', ctx);
    const activation =
      record.autoActivate === false ? undefined : await activateAfterBuild(deps, event.space, version);
    return { status: 'READY', version, activation, built: false };
  }
  if (record.status !== 'BUILDING') {
    return { status: 'SKIPPED', version, reason: `version is ${record.status}` };
  }

  const leased = await registry.acquireLease(
    event.space,
    version,
    deps.owner,
    Date.now() + deps.config.leaseMs,
    Date.now(),
  );
  if (!leased) {
    log.info('another builder holds the lease', ctx);
    return { status: 'BUSY', version };
  }

  let lost = false;
  const renew = setInterval(
    () => {
      registry
        .renewLease(event.space, version, deps.owner, Date.now() + deps.config.leaseMs)
        .then((ok) => {
          if (!ok) lost = true;
        })
        .catch((err) => log.warn('lease renewal failed', { ...ctx, error: String(err) }));
    },
    Math.max(1000, Math.floor(deps.config.leaseMs / 3)),
  );
  renew.unref();

  const workDir = join(deps.config.cacheDir, 'build', `${event.space}-${version}-${process.pid}`);
  try {
    const started = Date.now();
    const result = await buildSnapshot(deps, event, version, workDir, () => lost);
    await deps.beforeReady?.(version);
    const finished = await registry.finishVersion(event.space, version, deps.owner, {
      status: 'READY',
      finishedAt: now().toISOString(),
      manifestKey: manifestKey(event.space, version),
      collections: result.collections,
      timings: { ...result.timings, totalMs: Date.now() - started },
      quality: result.quality,
      autoActivate: result.spec.activate,
    });
    if (!finished) {
      log.warn('lost the build lease before READY; another builder owns this version now', ctx);
      return { status: 'BUSY', version };
    }
    log.info('version READY', { ...ctx, timings: result.timings });
    await deps.events.publish(EVENT_DETAIL_TYPE.versionReady, { ...ctx, collections: result.collections });
    await deps.beforeActivate?.(version);
    const activation = result.spec.activate
      ? await activateAfterBuild(deps, event.space, version)
      : undefined;
    await applyRetention(
      { ...deps, keep: deps.config.retainVersions, graceMs: deps.config.retentionGraceMs },
      event.space,
    ).catch((err) =>
      log.warn('retention failed; will run again after the next build', { ...ctx, error: String(err) }),
    );
    return { status: 'READY', version, activation, built: true };
  } catch (err) {
    if (err instanceof ReleaseInvalidError) {
      await registry.finishVersion(event.space, version, deps.owner, {
        status: 'FAILED',
        finishedAt: now().toISOString(),
        reason: err.message,
        problems: err.problems,
        problemCount: err.problemCount,
      });
      log.warn('release refused', { ...ctx, reason: err.message });
      await deps.events.publish(EVENT_DETAIL_TYPE.versionFailed, { ...ctx, reason: err.message });
      return { status: 'FAILED', version, reason: err.message };
    }
    const attempts = leased.attempts ?? 1;
    if (attempts >= 3) {
      const reason = `build failed ${attempts} times; last error: ${(err as Error).message}`;
      await registry.finishVersion(event.space, version, deps.owner, {
        status: 'FAILED',
        finishedAt: now().toISOString(),
        reason,
      });
      log.error('build failed for good', { ...ctx, error: String(err) });
      await deps.events.publish(EVENT_DETAIL_TYPE.versionFailed, { ...ctx, reason });
      return { status: 'FAILED', version, reason };
    }
    // Let the platform retry (Lambda async retries, or redelivery): release the lease for the next attempt.
    await registry.renewLease(event.space, version, deps.owner, 0).catch(() => undefined);
    log.error('build attempt failed; will be retried', { ...ctx, attempts, error: String(err) });
    throw err;
  } finally {
    clearInterval(renew);
    await rm(workDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

async function activateAfterBuild(deps: BuildDeps, space: string, version: string): Promise<AutoActivation> {
  const activation = await autoActivate(deps.registry, space, version, (deps.now ?? (() => new Date()))());
  if (activation.activated) {
    deps.log.info('pointer moved', { space, version, generation: activation.pointer.generation });
    await deps.events.publish(EVENT_DETAIL_TYPE.pointerMoved, {
      space,
      version,
      pointer: activation.pointer,
      by: 'build',
    });
  } else {
    deps.log.info('not activated', { space, version, reason: activation.reason });
  }
  return activation;
}

interface SnapshotResult {
  spec: ReleaseSpec;
  collections: Record<string, CollectionReport>;
  timings: Record<string, number>;
  quality: { minRecall: number; sample: number; minOverlap?: number | null };
}

async function buildSnapshot(
  deps: BuildDeps,
  event: ReleaseEvent,
  version: string,
  workDir: string,
  leaseLost: () => boolean,
): Promise<SnapshotResult> {
  const { store, config, log } = deps;
  const ctx = { space: event.space, version };
  const text = await store.getText(event.key);
  if (text === undefined)
    throw new ReleaseInvalidError([{ file: 'release.json', message: 'release.json is gone' }]);
  const spec = parseRelease(text);
  const files = s3ReleaseFiles(store, `${KEY_PREFIX.incoming}${event.space}/${event.release}/`);
  const named = spec.collections.flatMap((c) => c.files);
  const { missing, bytes } = await waitForFiles(files, named, config.fileWaitMs);
  if (missing.length) {
    throw new ReleaseInvalidError(
      missing.map((file) => ({
        file,
        message: `named in release.json but not in the release folder after waiting ${Math.round(config.fileWaitMs / 1000)} s`,
      })),
    );
  }
  await mkdir(workDir, { recursive: true });
  await checkDiskSpace(bytes, workDir);

  const quality = {
    minRecall: spec.quality.minRecall ?? config.minRecall ?? QUALITY_DEFAULTS.minRecall,
    sample: spec.quality.sample ?? config.qualitySample ?? QUALITY_DEFAULTS.sample,
    minOverlap: spec.quality.minOverlap ?? null,
  };
  const timings: Record<string, number> = {};
  const collections: Record<string, CollectionReport> = {};
  const manifest: Manifest = {
    format: 1,
    space: event.space,
    version,
    createdAt: new Date().toISOString(),
    release: event.release,
    ...(spec.seenField ? { seenField: spec.seenField } : {}),
    collections: {},
  };

  const previous = await previousSnapshot(deps, event.space, version, workDir);
  for (const c of spec.collections) {
    const t0 = Date.now();
    const table = await ingest(c, files, config.maxLineBytes, log, ctx);
    const t1 = Date.now();
    const built = await buildIndex(deps, c, table, join(workDir, c.name), log, ctx);
    const t2 = Date.now();
    const prevCollection =
      previous && previous.manifest.collections[c.name]?.dims === table.dims
        ? await previous.cache
            .collection(event.space, previous.version, c.name)
            .then((r) => r.collection)
            .catch(() => undefined)
        : undefined;
    const q = await measureQuality(deps, c, table, built, quality.sample, prevCollection);
    const t3 = Date.now();
    const where = c.files[0] as string;
    if (q.recall < quality.minRecall) {
      throw new ReleaseInvalidError([
        {
          file: where,
          message: `collection ${c.name}: recall@10 ${q.recall.toFixed(3)} is below the minimum ${quality.minRecall} (M=${c.M}, efConstruction=${c.efConstruction}, ef=${c.ef}); raise M, efConstruction or ef`,
        },
      ]);
    }
    if (quality.minOverlap != null && q.overlap !== undefined && q.overlap < quality.minOverlap) {
      throw new ReleaseInvalidError([
        {
          file: where,
          message: `collection ${c.name}: overlap@10 with ${previous?.version} is ${q.overlap.toFixed(3)}, below the release's minOverlap ${quality.minOverlap}`,
        },
      ]);
    }
    if (leaseLost()) throw new Error('lost the build lease while building');
    const segments = await uploadSegments(store, snapshotPrefix(event.space, version) + `${c.name}/`, built);
    const t4 = Date.now();
    manifest.collections[c.name] = {
      metric: c.metric,
      dims: table.dims,
      count: table.count,
      M: c.M,
      efConstruction: c.efConstruction,
      ef: c.ef,
      metadataFields: [...table.metadataFields].sort(),
      segments,
    } satisfies CollectionManifest;
    collections[c.name] = {
      count: table.count,
      dims: table.dims,
      metric: c.metric,
      M: c.M,
      efConstruction: c.efConstruction,
      ef: c.ef,
      segments: segments.length,
      recallAt10: Number(q.recall.toFixed(4)),
      ...(q.overlap !== undefined
        ? { overlapAt10: Number(q.overlap.toFixed(4)), overlapWith: previous?.version }
        : {}),
    };
    Object.assign(timings, {
      [`${c.name}.parseMs`]: t1 - t0,
      [`${c.name}.indexMs`]: t2 - t1,
      [`${c.name}.qualityMs`]: t3 - t2,
      [`${c.name}.uploadMs`]: t4 - t3,
    });
    log.info('collection built', { ...ctx, collection: c.name, count: table.count, ...q });
  }
  // The manifest goes last: a snapshot without one is not a snapshot.
  await store.putText(manifestKey(event.space, version), JSON.stringify(manifest));
  return { spec, collections, timings, quality };
}

/** The version serving now (to report how much the model changed), loaded lazily through the query side's cache. */
async function previousSnapshot(deps: BuildDeps, space: string, version: string, workDir: string) {
  const pointer = await deps.registry.getPointer(space);
  if (!pointer.version || pointer.version === version) return undefined;
  const cache = new SnapshotCache(deps.store, deps.engine, {
    // Inside the build's work dir, so its files go with it instead of filling /tmp build after build.
    cacheDir: join(workDir, 'previous'),
    memoryBudgetBytes: Number.MAX_SAFE_INTEGER,
    log: deps.log,
  });
  const manifest = await cache.manifest(space, pointer.version).catch(() => undefined);
  return manifest ? { version: pointer.version, manifest, cache } : undefined;
}

async function checkDiskSpace(input: number, dir: string): Promise<void> {
  const fs = await statfs(dir).catch(() => undefined);
  if (!fs) return;
  const free = fs.bavail * fs.bsize;
  // The index is roughly the size of the vectors; text input is larger than its vectors, so input size bounds it.
  if (input > free) {
    throw new ReleaseInvalidError([
      {
        file: 'release.json',
        message: `the release needs about ${Math.ceil(input / 2 ** 20)} MB of local disk for its index files, only ${Math.floor(free / 2 ** 20)} MB free; raise the build function's ephemeral storage`,
      },
    ]);
  }
}

async function ingest(
  c: CollectionSpec,
  files: ReturnType<typeof s3ReleaseFiles>,
  maxLineBytes: number,
  log: Log,
  ctx: Record<string, unknown>,
): Promise<VectorTable> {
  const problems = new ProblemCollector(10);
  // id → where it was first seen, packed as file index · 2^32 + line: a number, not a string, per row.
  const seen = new Map<string, number>();
  const fileIndex = new Map<string, number>();
  let table: VectorTable | undefined;
  let lastLog = Date.now();
  for await (const row of readerFor(c.format)({ spec: c, files, problems, maxLineBytes })) {
    let fi = fileIndex.get(row.file);
    if (fi === undefined) {
      fi = fileIndex.size;
      fileIndex.set(row.file, fi);
    }
    const first = seen.get(row.id);
    if (first !== undefined) {
      const firstFile = [...fileIndex].find(([, i]) => i === Math.floor(first / 2 ** 32))?.[0];
      problems.add({
        file: row.file,
        line: row.line,
        message: `duplicate id ${JSON.stringify(row.id)} (first at ${firstFile}:${first % 2 ** 32})`,
      });
      continue;
    }
    seen.set(row.id, fi * 2 ** 32 + row.line);
    table ??= new VectorTable(row.vector.length, c.metric === 'cosine');
    table.push(row);
    if (Date.now() - lastLog > PROGRESS_MS) {
      lastLog = Date.now();
      log.info('parsing', { ...ctx, collection: c.name, rows: table.count });
    }
  }
  if (!table || table.count === 0) {
    problems.add({ file: c.files[0] as string, message: `collection ${c.name} is empty` });
  }
  if (!problems.ok) throw new ReleaseInvalidError(problems.problems, problems.count);
  return table as VectorTable;
}

interface BuiltSegment {
  count: number;
  start: number;
  indexPath: string;
  idsPath: string;
  metaPath?: string;
}

/** Segments for a collection: one below 100k rows, else one per core (at most one per 250k rows). */
export function segmentCount(rows: number, requested: number | undefined, workers: number): number {
  if (requested) return Math.max(1, Math.min(requested, rows));
  if (rows < 100_000) return 1;
  const cores = workers > 0 ? workers : availableParallelism();
  return Math.max(1, Math.min(cores, Math.ceil(rows / 250_000)));
}

async function buildIndex(
  deps: BuildDeps,
  c: CollectionSpec,
  table: VectorTable,
  dir: string,
  log: Log,
  ctx: Record<string, unknown>,
): Promise<BuiltSegment[]> {
  await mkdir(dir, { recursive: true });
  const ranges = segmentRanges(table.count, segmentCount(table.count, c.segments, deps.config.buildWorkers));
  const segments: BuiltSegment[] = ranges.map((r, i) => ({
    count: r.end - r.start,
    start: r.start,
    indexPath: join(dir, `seg-${i}.hnsw`),
    idsPath: join(dir, `seg-${i}.ids.json`),
    ...(table.hasMetadata ? { metaPath: join(dir, `seg-${i}.meta.json`) } : {}),
  }));
  let lastLog = Date.now();
  await buildSegmentsInWorkers({
    metric: c.metric,
    dims: table.dims,
    M: c.M,
    efConstruction: c.efConstruction,
    buffer: table.buffer,
    rows: table.count,
    jobs: segments.map((s) => ({ start: s.start, end: s.start + s.count, path: s.indexPath })),
    onProgress: (added) => {
      if (Date.now() - lastLog < PROGRESS_MS) return;
      lastLog = Date.now();
      log.info('indexing', {
        ...ctx,
        collection: c.name,
        added,
        percent: Math.round((100 * added) / table.count),
        segments: segments.length,
      });
    },
  });
  for (const s of segments) {
    await writeFile(s.idsPath, JSON.stringify(table.ids.slice(s.start, s.start + s.count)));
    if (s.metaPath)
      await writeFile(s.metaPath, JSON.stringify(table.metadata.slice(s.start, s.start + s.count)));
  }
  return segments;
}

/** A deterministic sample of rows (a fixed-stride walk), so the same release measures the same recall. */
export function sampleRows(count: number, sample: number): number[] {
  const n = Math.min(count, sample);
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(Math.floor((i * count) / n));
  return out;
}

interface Quality {
  recall: number;
  overlap?: number;
}

/**
 * recall@10 of the built segments, searched together and merged exactly as the query side does,
 * against exact search, excluding each sampled item itself; and, when a previous version serves the
 * same collection, the overlap@10 of the new exact neighbour lists with the previous version's answers.
 */
async function measureQuality(
  deps: BuildDeps,
  c: CollectionSpec,
  table: VectorTable,
  built: BuiltSegment[],
  sample: number,
  previous: LoadedCollection | undefined,
): Promise<Quality> {
  const k = Math.min(10, table.count - 1);
  if (k <= 0) return { recall: 1 };
  const rows = sampleRows(table.count, sample);
  const exact = await exactNeighbours(
    table.buffer,
    table.count,
    table.dims,
    c.metric,
    rows,
    k + 1,
    Math.max(1, deps.config.buildWorkers || availableParallelism()),
  );
  const indexes = await Promise.all(
    built.map((s) => deps.engine.load(s.indexPath, c.metric, table.dims, s.count, c.M, c.ef)),
  );
  let hits = 0;
  let total = 0;
  let overlapSum = 0;
  let overlapN = 0;
  rows.forEach((row, i) => {
    const q = table.vector(row);
    const truth = [...(exact[i] as Int32Array)].filter((r) => r >= 0 && r !== row).slice(0, k);
    const lists = indexes.map((index, s) =>
      index.search(q, k + 1, c.ef).map((h) => ({
        id: table.ids[(built[s] as BuiltSegment).start + h.label] as string,
        distance: h.distance,
      })),
    );
    const self = table.ids[row] as string;
    const approx = new Set(
      mergeNeighbours(lists, k + 1)
        .filter((n) => n.id !== self)
        .slice(0, k)
        .map((n) => n.id),
    );
    for (const r of truth) if (approx.has(table.ids[r] as string)) hits++;
    total += truth.length;
    const before = previous && neighboursIn(previous, self, k);
    if (before) {
      overlapSum += overlapAt(
        before,
        truth.map((r) => table.ids[r] as string),
        k,
      );
      overlapN++;
    }
  });
  return { recall: total === 0 ? 1 : hits / total, ...(overlapN ? { overlap: overlapSum / overlapN } : {}) };
}

/** An item's k nearest in a loaded (previous) version, itself left out; undefined if it is not there. */
function neighboursIn(c: LoadedCollection, id: string, k: number): string[] | undefined {
  const ref = c.lookup(id);
  if (!ref) return undefined;
  const v = (c.segments[ref.segment] as LoadedCollection['segments'][number]).index.getVector(ref.label);
  const lists = c.segments.map((s) =>
    s.index
      .search(v, k + 1, c.manifest.ef)
      .map((h) => ({ id: s.ids[h.label] as string, distance: h.distance })),
  );
  return mergeNeighbours(lists, k + 1)
    .filter((n) => n.id !== id)
    .slice(0, k)
    .map((n) => n.id);
}

async function uploadOne(
  store: BlobStore,
  key: string,
  path: string,
  contentType: string,
): Promise<SnapshotFile> {
  const d = await digestFile(path);
  await store.putFile(key, path, contentType);
  return { key, bytes: d.bytes, sha256: d.sha256, parts: d.parts };
}

async function uploadSegments(
  store: BlobStore,
  prefix: string,
  segments: BuiltSegment[],
): Promise<Segment[]> {
  return Promise.all(
    segments.map(async (s, i) => {
      const p = `${prefix}seg-${i}/`;
      const [index, ids, meta] = await Promise.all([
        uploadOne(store, `${p}index.hnsw`, s.indexPath, 'application/octet-stream'),
        uploadOne(store, `${p}ids.json`, s.idsPath, 'application/json'),
        s.metaPath
          ? uploadOne(store, `${p}meta.json`, s.metaPath, 'application/json')
          : Promise.resolve(undefined),
      ]);
      return { count: s.count, files: { index, ids, ...(meta ? { meta } : {}) } };
    }),
  );
}

export type { VersionRecord };
