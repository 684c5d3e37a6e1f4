// The query function: the read API's Lambda handler (router, routes, search service, explore routes).
// May import core, adapters, snapshot, common and contract; never admin, builder, cli or local.
import { hnswEngine } from '../adapters/hnsw-index';
import { adapters } from '../common/adapters';
import type { HttpEvent, HttpResult } from '../common/http';
import { asLog, createObservability, MetricUnit } from '../common/observability';
import { publicReadsMiddleware } from '../common/public-reads';
import { depsFromEnv, type HandlerDeps, httpHandler, lazyHandler } from '../common/wiring';
import { METRIC } from '../contract';
import { SnapshotCache } from '../snapshot/cache';
import { queryRouter } from './routes';
import { QueryService } from './service';
import { lambdaShardRouter } from './shards/lambda-slots';

/** The read API: middy wiring around the query use cases. */
export function createQueryHandler(deps: HandlerDeps) {
  const obs = deps.obs ?? createObservability('vicinity-query');
  const { store, registry } = adapters(deps);
  const cache = new SnapshotCache(store, hnswEngine, {
    cacheDir: deps.config.cacheDir,
    memoryBudgetBytes: deps.config.memoryBudgetBytes,
    diskBudgetBytes: deps.config.diskBudgetBytes,
    maxPinnedVersions: deps.config.maxPinnedVersions,
    pinWindowMs: deps.config.pinWindowMs,
    // Objects missing from the bucket: a version retention deleted (404), or a broken snapshot (503).
    versionGone: async (space, version) => {
      const record = await registry.getVersion(space, version);
      return !record || record.status === 'DELETED';
    },
    log: asLog(obs.logger),
    onFailure: () => obs.metrics.addMetric(METRIC.snapshotLoadFailures, MetricUnit.Count, 1),
  });
  const shards = lambdaShardRouter(deps.config, cache, asLog(obs.logger));
  const service = new QueryService({
    registry,
    cache,
    pointerTtlMs: deps.config.pointerTtlMs,
    switchGraceMs: deps.config.switchGraceMs,
    log: asLog(obs.logger),
    shards,
    onLoad: (l) => {
      obs.metrics.addMetric(METRIC.snapshotLoads, MetricUnit.Count, 1);
      if (l.bytes !== undefined) obs.metrics.addMetric(METRIC.snapshotLoadBytes, MetricUnit.Bytes, l.bytes);
      if (l.downloadMs !== undefined)
        obs.metrics.addMetric(METRIC.snapshotDownloadMs, MetricUnit.Milliseconds, l.downloadMs);
      if (l.verifyMs !== undefined)
        obs.metrics.addMetric(METRIC.snapshotVerifyMs, MetricUnit.Milliseconds, l.verifyMs);
      if (l.readIndexMs !== undefined)
        obs.metrics.addMetric(METRIC.snapshotReadIndexMs, MetricUnit.Milliseconds, l.readIndexMs);
      if (l.parseMs !== undefined)
        obs.metrics.addMetric(METRIC.snapshotParseMs, MetricUnit.Milliseconds, l.parseMs);
    },
    // CacheHit/CacheMiss: from the `cache` key the service puts in the access log's keys (ctx.logKeys →
    // context.ts served → LOG_KEYS on the response), counted by the observe middleware with the request's
    // other metrics (common/observability.ts): no per-request Logger.appendKeys or Metrics.addMetric.
  });
  const http = httpHandler(obs, deps.config, queryRouter(service, registry));
  // Off (readAuth iam or jwt, the default), public reads do nothing: no middleware hop at all.
  if (deps.config.publicReads)
    http.use(publicReadsMiddleware({ enabled: true, publicFields: deps.config.publicMetadataFields }));
  // Slot calls end in time for the router to answer: their deadline never passes its remaining time.
  const handle = (event: HttpEvent, context: Parameters<typeof http>[1]): Promise<HttpResult> =>
    shards
      ? shards.withDeadline(context?.getRemainingTimeInMillis?.(), () => http(event, context))
      : http(event, context);
  return Object.assign(handle, { service, cache, shards });
}

/** What EventBridge sends after a pointer move when warm-up is on (infra/constructs/events.ts). */
export interface WarmUpEvent {
  vicinity: 'warm-up';
  slot: number;
  space: string;
  version: string;
}

function isWarmUp(event: unknown): event is WarmUpEvent {
  return (event as { vicinity?: unknown })?.vicinity === 'warm-up';
}

/**
 * Loads every collection of a newly activated version so the first user requests find it in memory.
 * Best effort: a warm-up that fails costs nothing but the load a request would have paid anyway.
 */
export async function warmUp(q: ReturnType<typeof createQueryHandler>, e: WarmUpEvent) {
  const started = performance.now();
  try {
    // The manifest the version is served from (a purge of erased ids moves it), READY checked.
    const r = await q.service.resolve(e.space, { version: e.version, consistency: 'strong' });
    const key = r.manifestKey;
    const manifest = await q.cache.manifest(e.space, e.version, key);
    // With shard slots, a sharded collection is warmed in its slots (each loads only its shards).
    const local = Object.keys(manifest.collections).filter(
      (name) => !(q.shards && manifest.collections[name]?.sharding),
    );
    const slots = q.shards?.prewarm(e.space, e.version, key);
    // Released at once: a warmed collection is the cache's to evict like any other.
    for (const name of local)
      (await q.cache.collection(e.space, e.version, name, key ? { manifestKey: key } : {})).release();
    const sharded = await slots;
    return {
      warmed: [...local, ...(sharded?.collections ?? [])],
      ...(sharded?.failedSlots.length ? { failedSlots: sharded.failedSlots } : {}),
      ms: Math.round(performance.now() - started),
    };
  } catch (err) {
    return { warmed: [], error: (err as Error).message };
  }
}

export const handler = lazyHandler<HttpEvent | WarmUpEvent, HttpResult | Awaited<ReturnType<typeof warmUp>>>(
  () => {
    const q = createQueryHandler(depsFromEnv());
    return (event, context) => (isWarmUp(event) ? warmUp(q, event) : q(event, context));
  },
);
