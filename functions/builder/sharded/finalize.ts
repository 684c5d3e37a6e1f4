/**
 * Finalize, run by the task that completes the set of shards: the distributed quality gate (each
 * shard's exact and HNSW top-11 for the same sampled queries, merged into recall@10 of the sharded
 * search; overlap@10 with the serving version; both tie-aware, with the unsharded gate's functions), the manifest listing every shard (written last),
 * READY, the same forward-only auto-activation as the unsharded build, retention, staging deleted.
 */

import { join } from 'node:path';
import { EVENT_DETAIL_TYPE } from '../../contract';
import { ReleaseInvalidError } from '../../core/errors';
import { mergeNeighbours, type Neighbour, tieAwareOverlap, tieAwareRecall } from '../../core/search';
import { SHARD_HASH } from '../../core/shard';
import type { CollectionReport } from '../../core/version';
import { type CollectionManifest, type Manifest, manifestKey, type Segment } from '../../snapshot/manifest';
import { writeManifest } from '../../snapshot/writer';
import { activateBuilt } from '../activate-built';
import { deleteInputsIfAsked } from '../inputs';
import { previousVersion } from '../previous-version';
import { neighboursIn } from '../quality-gate';
import { applyRetention } from '../retention';
import type { TaskRun } from './layout';
import {
  deleteStaging,
  QUALITY_K,
  queriesKey,
  readJson,
  type SampleItem,
  type ShardedPlan,
  type ShardResult,
  shardResultKey,
} from './layout';

export async function finalizeVersion(run: TaskRun, plan: ShardedPlan, workDir: string) {
  const { deps, space, version } = run;
  const { store, registry, log } = deps;
  const ctx = { space, version, release: plan.event.release };
  const gate = plan.quality;
  const reports: Record<string, CollectionReport> = { ...plan.unsharded.reports };
  const timings: Record<string, number> = { ...plan.unsharded.timings };
  const collections: Record<string, CollectionManifest> = {};
  const previous = await previousVersion(deps, ctx, join(workDir, 'finalize'));

  for (const cp of plan.sharded) {
    const spec = plan.spec.collections.find((c) => c.name === cp.name);
    if (!spec) throw new Error(`plan has no collection ${cp.name}`);
    const results = await Promise.all(
      Array.from({ length: cp.shards }, (_, j) =>
        readJson<ShardResult>(store, shardResultKey(space, version, cp.name, j)),
      ),
    );
    const queries = await readJson<SampleItem[]>(store, queriesKey(space, version, cp.name));
    const count = results.reduce((n, r) => n + r.count, 0);
    const dims = results.find((r) => r.count > 0)?.dims ?? 0;
    const segments: Segment[] = [];
    const layout = results.map((r, shard) => {
      const first = segments.length;
      segments.push(...r.segments);
      return { shard, count: r.count, segments: r.segments.map((_, i) => first + i) };
    });
    const fields = new Set(results.flatMap((r) => r.metadataFields));

    // recall@10 of the sharded search: per query, merge every shard's lists, drop the query item, and
    // count hits as the unsharded gate does (tie-aware: an item as near as the true k-th is a hit).
    const k = Math.min(10, count - 1);
    let recallSum = 0;
    let measured = 0;
    let overlapSum = 0;
    let overlapN = 0;
    const prev = await previous.collection(cp.name, dims);
    const prevCollection = 'collection' in prev ? prev.collection : undefined;
    const topK = (lists: Neighbour[][], self: string) =>
      mergeNeighbours(lists, QUALITY_K)
        .filter((n) => n.id !== self)
        .slice(0, k);
    queries.forEach((q, qi) => {
      if (k <= 0) return;
      const truth = topK(
        results.map((r) => r.exact[qi] ?? []),
        q.id,
      );
      const approx = topK(
        results.map((r) => r.approx[qi] ?? []),
        q.id,
      );
      recallSum += tieAwareRecall(
        approx.map((n) => n.distance),
        truth.map((n) => n.distance),
        k,
      );
      measured++;
      const before = prevCollection && neighboursIn(prevCollection, q.id, k);
      if (before) {
        overlapSum += tieAwareOverlap(before, truth, k);
        overlapN++;
      }
    });
    const recall = measured === 0 ? 1 : recallSum / measured;
    const where = spec.files[0] as string;
    if (recall < gate.minRecall) {
      throw new ReleaseInvalidError([
        {
          file: where,
          message: `collection ${cp.name}: recall@10 ${recall.toFixed(3)} of the ${cp.shards}-shard search is below the minimum ${gate.minRecall} (M=${spec.M}, efConstruction=${spec.efConstruction}, ef=${spec.ef}); raise M, efConstruction or ef`,
        },
      ]);
    }
    const overlap = overlapN ? overlapSum / overlapN : undefined;
    if (overlap !== undefined && gate.minOverlap != null && overlap < gate.minOverlap) {
      throw new ReleaseInvalidError([
        {
          file: where,
          message: `collection ${cp.name}: overlap@10 with ${prev.version} is ${overlap.toFixed(3)}, below the release's minOverlap ${gate.minOverlap}`,
        },
      ]);
    }
    const skipped =
      overlap === undefined && (gate.minOverlap != null || ('failed' in prev && prev.failed))
        ? 'skipped' in prev
          ? prev.skipped
          : 'no sampled item is in both versions'
        : undefined;
    if (skipped) log.warn('overlap not measured', { ...ctx, collection: cp.name, reason: skipped });

    collections[cp.name] = {
      metric: spec.metric,
      dims,
      count,
      M: spec.M,
      efConstruction: spec.efConstruction,
      ef: spec.ef,
      metadataFields: [...fields].sort(),
      segments,
      sharding: { hash: SHARD_HASH, shards: cp.shards, layout },
    };
    reports[cp.name] = {
      count,
      dims,
      metric: spec.metric,
      M: spec.M,
      efConstruction: spec.efConstruction,
      ef: spec.ef,
      segments: segments.length,
      shards: cp.shards,
      recallAt10: Number(recall.toFixed(4)),
      ...(overlap !== undefined
        ? { overlapAt10: Number(overlap.toFixed(4)), overlapWith: prev.version }
        : skipped
          ? { overlapSkipped: skipped }
          : {}),
    };
    const slowest = Math.max(
      ...results.map((r) => r.timings.readMs + r.timings.indexMs + r.timings.qualityMs + r.timings.uploadMs),
    );
    timings[`${cp.name}.slowestShardMs`] = slowest;
    timings[`${cp.name}.maxShardIndexMs`] = Math.max(...results.map((r) => r.timings.indexMs));
    timings[`${cp.name}.maxShardRssMb`] = Math.round(
      Math.max(...results.map((r) => r.peakRssBytes)) / 2 ** 20,
    );
    log.info('sharded collection built', { ...ctx, collection: cp.name, count, shards: cp.shards, recall });
  }

  // The manifest in release order, then the one write that makes it a snapshot; READY after it.
  const manifest: Manifest = {
    format: 1,
    space,
    version,
    createdAt: new Date().toISOString(),
    release: plan.event.release,
    ...(plan.spec.seenField ? { seenField: plan.spec.seenField } : {}),
    collections: {},
  };
  for (const c of plan.spec.collections) {
    const m = collections[c.name] ?? plan.unsharded.manifest[c.name];
    if (m) manifest.collections[c.name] = m;
  }
  await writeManifest(store, manifest);
  const finished = await registry.finishVersion(space, version, plan.taskOwner, {
    status: 'READY',
    finishedAt: new Date().toISOString(),
    manifestKey: manifestKey(space, version),
    collections: reports,
    timings: { ...timings, totalMs: Date.now() - plan.startedAt },
    quality: gate,
    autoActivate: plan.spec.activate,
  });
  if (!finished) {
    log.info('version already settled; finalize had nothing to do', ctx);
    return { status: 'SETTLED' as const };
  }
  log.info('version READY', ctx);
  await deps.events.publish(EVENT_DETAIL_TYPE.versionReady, { ...ctx, collections: reports });
  const activation = plan.spec.activate ? await activateBuilt(deps, space, version) : undefined;
  await applyRetention(
    { ...deps, keep: deps.config.retainVersions, graceMs: deps.config.retentionGraceMs },
    space,
  ).catch((err) =>
    log.warn('retention failed; will run again after the next build', { ...ctx, error: String(err) }),
  );
  await deleteStaging(store, space, version).catch((err) =>
    log.warn('could not delete staging; the sweeper removes it', { ...ctx, error: String(err) }),
  );
  await deleteInputsIfAsked(deps, space, plan.event.release);
  return { status: 'READY' as const, activation };
}
