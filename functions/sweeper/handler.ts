// The sweeper's Lambda edge: an EventBridge schedule (every 5 minutes) → one sweep over every space.
import middy from '@middy/core';
import { adapters } from '../common/adapters';
import {
  asLog,
  createObservability,
  flushMetrics,
  injectLambdaContext,
  MetricUnit,
} from '../common/observability';
import { pointerNotifier } from '../common/pointer-notifier';
import { depsFromEnv, type HandlerDeps, lazyHandler } from '../common/wiring';
import { ENV, METRIC, SERVICE_NAME } from '../contract';
import type { BlobStore, EventPublisher, Registry } from '../core/ports';
import { DEFAULT_SWEEP_STALE_MS, type SweepReport, sweep } from './sweep';

function staleMsFromEnv(env: NodeJS.ProcessEnv): number {
  const raw = env[ENV.sweepStaleMs];
  const n = raw ? Number(raw) : DEFAULT_SWEEP_STALE_MS;
  if (!Number.isFinite(n) || n < 0)
    throw new Error(`Environment variable ${ENV.sweepStaleMs}=${raw} is not a number`);
  return n;
}

export function createSweepHandler(
  deps: HandlerDeps & {
    store?: BlobStore;
    registry?: Registry;
    events?: EventPublisher;
    staleMs?: number;
    now?: () => Date;
  },
) {
  const obs = deps.obs ?? createObservability(SERVICE_NAME.sweeper);
  const log = asLog(obs.logger);
  // Tests hand in in-memory ports; only what is missing is built from the clients.
  const a = deps.store && deps.registry && deps.events ? undefined : adapters(deps, log);
  const events = deps.events ?? (a as ReturnType<typeof adapters>).events;
  const staleMs = deps.staleMs ?? staleMsFromEnv(process.env);
  return middy<unknown, SweepReport>()
    .use(injectLambdaContext(obs.logger, { resetKeys: true }))
    .use(flushMetrics(obs.metrics))
    .handler(async (_event, context) => {
      // Lambda kills the invocation at this instant: a purge starts no rebuild that cannot end before it.
      const remaining = context?.getRemainingTimeInMillis?.();
      const report = await sweep({
        store: deps.store ?? (a as ReturnType<typeof adapters>).store,
        registry: deps.registry ?? (a as ReturnType<typeof adapters>).registry,
        log,
        events,
        moves: pointerNotifier({ log, events, metrics: obs.metrics }),
        now: deps.now,
        staleMs,
        taskStartMs: deps.config.taskStartMs,
        graceMs: deps.config.retentionGraceMs,
        workDir: deps.config.cacheDir,
        ...(remaining !== undefined ? { deadlineMs: Date.now() + remaining } : {}),
        pieceItems: deps.config.purgeSegmentItems,
      });
      // Emitted every sweep, zeros included: a continuous series for the alarm, and no empty-metrics warning.
      obs.metrics.addMetric(METRIC.buildsAbandoned, MetricUnit.Count, report.failed.length);
      obs.metrics.addMetric(METRIC.purgesStalled, MetricUnit.Count, report.erasure.stalled?.length ?? 0);
      const { failed, restored, purged, activated, errors, erasure, spacesDeleted, staging } = report;
      if (
        failed.length +
        restored.length +
        purged.length +
        activated.length +
        errors.length +
        erasure.rewritten.length +
        erasure.purged +
        erasure.deletedObjects +
        spacesDeleted.length +
        staging.length
      )
        log.info('sweep done', { ...report });
      // A space that could not be swept fails the invocation (Errors alarm); the next schedule retries.
      if (errors.length) throw new Error(`sweep failed for ${errors.map((e) => e.space).join(', ')}`);
      return report;
    });
}

export const handler = lazyHandler(() => createSweepHandler(depsFromEnv()));
