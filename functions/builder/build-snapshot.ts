import { join } from 'node:path';
import { allErased, erasedIds } from '../core/erasure';
import type { ReleaseSpec } from '../core/release';
import { QUALITY_DEFAULTS } from '../core/release';
import type { CollectionReport, ReleaseEvent } from '../core/version';
import type { CollectionManifest, Manifest } from '../snapshot/manifest';
import { writeManifest, writeSegments } from '../snapshot/writer';
import type { BuildContext, BuildDeps } from './deps';
import { buildIndex } from './index-build';
import { type InputEtags, ingest, openRelease } from './ingest';
import { previousVersion } from './previous-version';
import { type QualityGate, qualityGate } from './quality-gate';
import { refuseUnservable } from './serving-fit';

/** What a build checks before each write: it was not aborted (deadline) and still holds its lease. */
export interface BuildGuard {
  /** Throws if the invocation was aborted or the lease is known lost. */
  check(): void;
  /** check(), then renews the lease now and throws if it is no longer held. */
  confirm(): Promise<void>;
}

export interface SnapshotResult {
  spec: ReleaseSpec;
  collections: Record<string, CollectionReport>;
  timings: Record<string, number>;
  quality: QualityGate;
}

/**
 * Release → snapshot: per collection ingest, index, quality gate, upload; the manifest last. Throws
 * ReleaseInvalidError for a release that cannot pass, anything else for a failure worth retrying.
 */
export async function buildSnapshot(
  deps: BuildDeps,
  event: ReleaseEvent,
  ctx: BuildContext,
  workDir: string,
  guard: BuildGuard,
  inputs?: InputEtags,
): Promise<SnapshotResult> {
  const { store, config, log } = deps;
  const { space, version } = ctx;
  const { spec, files } = await openRelease(deps, event, workDir, inputs);
  const quality: QualityGate = {
    minRecall: spec.quality.minRecall ?? config.minRecall ?? QUALITY_DEFAULTS.minRecall,
    sample: spec.quality.sample ?? config.qualitySample ?? QUALITY_DEFAULTS.sample,
    minOverlap: spec.quality.minOverlap ?? null,
    recallTarget: spec.quality.recallTarget ?? QUALITY_DEFAULTS.recallTarget,
  };
  const timings: Record<string, number> = {};
  const collections: Record<string, CollectionReport> = {};
  const manifest: Manifest = {
    format: 1,
    space,
    version,
    createdAt: new Date().toISOString(),
    release: event.release,
    ...(spec.seenField ? { seenField: spec.seenField } : {}),
    collections: {},
  };

  const previous = await previousVersion(deps, ctx, workDir);
  // Erasures in force: their ids are left out of this build (and counted), whatever the release holds.
  const erased = erasedIds(await deps.registry.listErasures(space));
  const every = allErased(erased);
  for (const c of spec.collections) {
    guard.check();
    const t0 = Date.now();
    const dropped = { count: 0 };
    const table = await ingest(c, files, config.maxLineBytes, log, ctx, {
      ids: erased.get(c.name),
      all: every,
      ...(spec.seenField ? { seenField: spec.seenField } : {}),
      dropped,
    });
    if (dropped.count)
      log.info('erased ids left out of the build', {
        ...ctx,
        collection: c.name,
        erasedDropped: dropped.count,
      });
    refuseUnservable(config, { name: c.name, dims: table.dims, M: c.M }, table.count, 1);
    const t1 = Date.now();
    const {
      segments: built,
      duplicateGroups,
      largestDuplicateGroup,
    } = await buildIndex(deps, c, table, join(workDir, c.name), ctx);
    const t2 = Date.now();
    const prev = await previous.collection(c.name, table.dims);
    const { recall, overlap, ef, ...report } = await qualityGate(deps, c, table, built, quality, prev, ctx);
    const t3 = Date.now();
    guard.check();
    const segments = await writeSegments(store, space, version, c.name, built);
    const t4 = Date.now();
    manifest.collections[c.name] = {
      metric: c.metric,
      dims: table.dims,
      count: table.count,
      M: c.M,
      efConstruction: c.efConstruction,
      ef,
      ...(report.efSource ? { efSource: report.efSource } : {}),
      ...(report.recallCurve ? { recallCurve: report.recallCurve } : {}),
      metadataFields: [...table.metadataFields].sort(),
      segments,
    } satisfies CollectionManifest;
    collections[c.name] = {
      count: table.count,
      dims: table.dims,
      metric: c.metric,
      M: c.M,
      efConstruction: c.efConstruction,
      ef,
      segments: segments.length,
      duplicateGroups,
      largestDuplicateGroup,
      ...(dropped.count ? { erasedDropped: dropped.count } : {}),
      ...report,
    };
    Object.assign(timings, {
      [`${c.name}.parseMs`]: t1 - t0,
      [`${c.name}.indexMs`]: t2 - t1,
      [`${c.name}.qualityMs`]: t3 - t2,
      [`${c.name}.uploadMs`]: t4 - t3,
    });
    log.info('collection built', {
      ...ctx,
      collection: c.name,
      count: table.count,
      ...(duplicateGroups ? { duplicateGroups, largestDuplicateGroup } : {}),
      recall,
      ef,
      ...(report.efSource === 'tuned'
        ? { recallCurve: report.recallCurve?.map((p) => `${p.ef}:${p.recall}`).join(' ') }
        : {}),
      ...(overlap !== undefined ? { overlap } : {}),
    });
  }
  // The manifest makes the snapshot whole: written only while this attempt still holds the lease.
  await guard.confirm();
  await writeManifest(store, manifest);
  return { spec, collections, timings, quality };
}
