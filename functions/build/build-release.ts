import { mkdir, rm, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readerFor } from '../adapters/readers';
import { ProblemCollector } from '../adapters/readers/types';
import type { Config } from '../common/config';
import { type AutoActivation, autoActivate } from '../core/activation';
import { digestFile } from '../core/digest';
import { ReleaseInvalidError } from '../core/errors';
import {
  type CollectionManifest,
  hnswBytesPerElement,
  type Manifest,
  manifestKey,
  type Segment,
  type SnapshotFile,
  snapshotPrefix,
} from '../core/manifest';
import { parseVersion } from '../core/names';
import type { BlobStore, EventPublisher, IndexEngine, Log, Registry } from '../core/ports';
import { type CollectionSpec, parseRelease, QUALITY_DEFAULTS, type ReleaseSpec } from '../core/release';
import { bruteForce, normalise } from '../core/search';
import type { CollectionReport, ReleaseEvent, VersionRecord } from '../core/version';
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
    await deps.events.publish('VersionReady', { ...ctx, collections: result.collections });
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
      await deps.events.publish('VersionFailed', { ...ctx, reason: err.message });
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
      await deps.events.publish('VersionFailed', { ...ctx, reason });
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
    await deps.events.publish('PointerMoved', { space, version, pointer: activation.pointer, by: 'build' });
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
  const files = s3ReleaseFiles(store, `incoming/${event.space}/${event.release}/`);
  const named = spec.collections.flatMap((c) => c.files);
  const missing = await waitForFiles(files, named, config.fileWaitMs);
  if (missing.length) {
    throw new ReleaseInvalidError(
      missing.map((file) => ({
        file,
        message: `named in release.json but not in the release folder after waiting ${Math.round(config.fileWaitMs / 1000)} s`,
      })),
    );
  }
  await mkdir(workDir, { recursive: true });
  await checkDiskSpace(files, named, workDir);

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

  for (const c of spec.collections) {
    const t0 = Date.now();
    const table = await ingest(c, files, config.maxLineBytes, log, ctx);
    const t1 = Date.now();
    const built = await buildIndex(deps, c, table, join(workDir, c.name), log, ctx);
    const t2 = Date.now();
    const recall = measureRecall(c, table, built.search, quality.sample);
    const t3 = Date.now();
    if (recall < quality.minRecall) {
      throw new ReleaseInvalidError([
        {
          file: c.files[0] as string,
          message: `collection ${c.name}: recall@10 ${recall.toFixed(3)} is below the minimum ${quality.minRecall} (M=${c.M}, efConstruction=${c.efConstruction}, ef=${c.ef}); raise M, efConstruction or ef`,
        },
      ]);
    }
    if (leaseLost()) throw new Error('lost the build lease while building');
    const segments = await uploadSegments(
      store,
      snapshotPrefix(event.space, version) + `${c.name}/`,
      built.segments,
    );
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
      recallAt10: Number(recall.toFixed(4)),
    };
    Object.assign(timings, {
      [`${c.name}.parseMs`]: t1 - t0,
      [`${c.name}.indexMs`]: t2 - t1,
      [`${c.name}.qualityMs`]: t3 - t2,
      [`${c.name}.uploadMs`]: t4 - t3,
    });
    log.info('collection built', { ...ctx, collection: c.name, count: table.count, recall });
  }
  // The manifest goes last: a snapshot without one is not a snapshot.
  await store.putText(manifestKey(event.space, version), JSON.stringify(manifest));
  return { spec, collections, timings, quality };
}

async function checkDiskSpace(
  files: ReturnType<typeof s3ReleaseFiles>,
  names: string[],
  dir: string,
): Promise<void> {
  const sizes = await Promise.all(names.map((f) => files.size(f)));
  const input = sizes.reduce<number>((a, b) => a + (b ?? 0), 0);
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
  const seen = new Map<string, string>();
  let table: VectorTable | undefined;
  let lastLog = Date.now();
  for await (const row of readerFor(c.format)({ spec: c, files, problems, maxLineBytes })) {
    const first = seen.get(row.id);
    if (first !== undefined) {
      problems.add({
        file: row.file,
        line: row.line,
        message: `duplicate id ${JSON.stringify(row.id)} (first at ${first})`,
      });
      continue;
    }
    seen.set(row.id, `${row.file}:${row.line}`);
    table ??= new VectorTable(row.vector.length);
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
  indexPath: string;
  idsPath: string;
  metaPath?: string;
}

async function buildIndex(
  deps: BuildDeps,
  c: CollectionSpec,
  table: VectorTable,
  dir: string,
  log: Log,
  ctx: Record<string, unknown>,
): Promise<{ segments: BuiltSegment[]; search: (q: number[], k: number) => string[] }> {
  await mkdir(dir, { recursive: true });
  const builder = deps.engine.create(c.metric, table.dims, table.count, c.M, c.efConstruction);
  let lastLog = Date.now();
  for (let r = 0; r < table.count; r++) {
    builder.add(table.vector(r), r);
    if (Date.now() - lastLog > PROGRESS_MS) {
      lastLog = Date.now();
      log.info('indexing', {
        ...ctx,
        collection: c.name,
        added: r,
        percent: Math.round((100 * r) / table.count),
      });
    }
  }
  const seg: BuiltSegment = {
    count: table.count,
    indexPath: join(dir, 'index.hnsw'),
    idsPath: join(dir, 'ids.json'),
  };
  await builder.write(seg.indexPath);
  await writeFile(seg.idsPath, JSON.stringify(table.ids));
  if (table.hasMetadata) {
    seg.metaPath = join(dir, 'meta.json');
    await writeFile(seg.metaPath, JSON.stringify(table.metadata));
  }
  const expected = table.count * hnswBytesPerElement(table.dims, c.M);
  log.debug('index written', { ...ctx, collection: c.name, approxBytes: expected });
  return {
    segments: [seg],
    search: (q, k) => builder.search(q, k, c.ef).map((h) => table.ids[h.label] as string),
  };
}

/** A deterministic sample of rows (a fixed-stride walk), so the same release measures the same recall. */
export function sampleRows(count: number, sample: number): number[] {
  const n = Math.min(count, sample);
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(Math.floor((i * count) / n));
  return out;
}

/** recall@10 of the built index against exact search, excluding each sampled item itself. */
function measureRecall(
  c: CollectionSpec,
  table: VectorTable,
  search: (q: number[], k: number) => string[],
  sample: number,
): number {
  const k = Math.min(10, table.count - 1);
  if (k <= 0) return 1;
  let vectors = table.vectors();
  if (c.metric === 'cosine') {
    const normed = new Float32Array(vectors.length);
    for (let r = 0; r < table.count; r++) {
      normed.set(normalise(vectors.subarray(r * table.dims, (r + 1) * table.dims)), r * table.dims);
    }
    vectors = normed;
  }
  let hits = 0;
  let total = 0;
  for (const row of sampleRows(table.count, sample)) {
    const q = table.vector(row);
    const self = table.ids[row] as string;
    const exact = bruteForce(c.metric, table.dims, vectors, table.ids, q, k + 1)
      .map((n) => n.id)
      .filter((id) => id !== self)
      .slice(0, k);
    const approx = new Set(
      search(q, k + 1)
        .filter((id) => id !== self)
        .slice(0, k),
    );
    for (const id of exact) if (approx.has(id)) hits++;
    total += exact.length;
  }
  return total === 0 ? 1 : hits / total;
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
