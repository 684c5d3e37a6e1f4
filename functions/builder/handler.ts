// builder/: the build use cases (release event → claim, ingest, index, quality gate, snapshot, activation) + handler.
// May import core/, adapters/, snapshot/, common/ and contract.ts; never query/ or admin/.
import { randomUUID } from 'node:crypto';
import middy from '@middy/core';
import type { S3Event } from 'aws-lambda';
import { hnswEngine } from '../adapters/hnsw-index';
import {
  asLog,
  createObservability,
  injectLambdaContext,
  logMetrics,
  MetricUnit,
} from '../common/observability';
import { pointerNotifier } from '../common/pointer-notifier';
import { adapters, depsFromEnv, type HandlerDeps, lazyHandler } from '../common/wiring';
import { METRIC } from '../contract';
import { parseReleaseKey } from '../core/release';
import type { ReleaseEvent } from '../core/version';
import { type BuildDeps, type BuildOutcome, buildRelease } from './build-release';

/** S3 event keys are URL-encoded with "+" for spaces. */
function decodeKey(key: string): string {
  return decodeURIComponent(key.replace(/\+/g, ' '));
}

/** The release events in an S3 notification; records for any other key are ignored. */
export function releaseEvents(event: S3Event): ReleaseEvent[] {
  const out: ReleaseEvent[] = [];
  for (const r of event.Records ?? []) {
    if (!r.eventName?.startsWith('ObjectCreated')) continue;
    const key = decodeKey(r.s3.object.key);
    const parsed = parseReleaseKey(key);
    if (!parsed) continue;
    const etag = r.s3.object.eTag?.replaceAll('"', '');
    out.push({
      space: parsed.space,
      release: parsed.release,
      key,
      sequencer: r.s3.object.sequencer ?? etag ?? 'none',
      ...(etag ? { etag } : {}),
    });
  }
  return out;
}

export function createBuildHandler(
  deps: HandlerDeps & Partial<Pick<BuildDeps, 'beforeReady' | 'beforeActivate' | 'events'>>,
) {
  const obs = deps.obs ?? createObservability('vicinity-build');
  const log = asLog(obs.logger);
  const { store, registry, events: bus } = adapters(deps, log);
  const events = deps.events ?? bus;
  const moves = pointerNotifier({ log, events, metrics: obs.metrics });
  return middy<S3Event, BuildOutcome[]>()
    .use(injectLambdaContext(obs.logger, { resetKeys: true }))
    .use(logMetrics(obs.metrics))
    .handler(async (event: S3Event, context) => {
      const outcomes: BuildOutcome[] = [];
      for (const e of releaseEvents(event)) {
        obs.logger.appendKeys({ space: e.space, release: e.release });
        const outcome = await buildRelease(
          {
            store,
            registry,
            engine: hnswEngine,
            config: deps.config,
            log,
            events,
            moves,
            owner: `${context?.awsRequestId ?? 'local'}:${randomUUID()}`,
            beforeReady: deps.beforeReady,
            beforeActivate: deps.beforeActivate,
          },
          e,
        );
        obs.logger.info('release handled', { ...outcome });
        if (outcome.status === 'FAILED') obs.metrics.addMetric(METRIC.buildFailures, MetricUnit.Count, 1);
        if (outcome.status === 'READY' && outcome.built)
          obs.metrics.addMetric(METRIC.buildsReady, MetricUnit.Count, 1);
        outcomes.push(outcome);
      }
      return outcomes;
    });
}

export const handler = lazyHandler(() => createBuildHandler(depsFromEnv()));
