// builder/: the build use cases (release event → claim, ingest, index, quality gate, snapshot, activation) + handler.
// May import core/, adapters/, snapshot/, common/ and contract.ts; never query/ or admin/.
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers';
import middy from '@middy/core';
import type { S3Event } from 'aws-lambda';
import { hnswEngine } from '../adapters/hnsw-index';
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
import { EVENT_DETAIL_TYPE, METRIC } from '../contract';
import type { BlobStore, Registry } from '../core/ports';
import { classifyReleaseKey } from '../core/release';
import type { ReleaseEvent } from '../core/version';
import { type BuildDeps, type BuildOutcome, buildRelease } from './build-release';
import { refuseRelease } from './refuse';

/** S3 event keys are URL-encoded with "+" for spaces. */
function decodeKey(key: string): string {
  return decodeURIComponent(key.replace(/\+/g, ' '));
}

/** A release.json the build cannot even record as a version (no valid space in its key). */
export interface RefusedUpload {
  key: string;
  sequencer: string;
  reason: string;
}

/** What an S3 notification asks of the build: releases, refused release names (FAILED versions), refused keys. */
export interface ReleaseRecords {
  releases: ReleaseEvent[];
  refusedReleases: (ReleaseEvent & { reason: string })[];
  refused: RefusedUpload[];
}

export function releaseRecords(event: S3Event): ReleaseRecords {
  const out: ReleaseRecords = { releases: [], refusedReleases: [], refused: [] };
  for (const r of event.Records ?? []) {
    if (!r.eventName?.startsWith('ObjectCreated')) continue;
    const key = decodeKey(r.s3.object.key);
    const c = classifyReleaseKey(key);
    if (!c) continue;
    const etag = r.s3.object.eTag?.replaceAll('"', '');
    const sequencer = r.s3.object.sequencer ?? etag ?? 'none';
    if (c.kind === 'refused') {
      out.refused.push({ key, sequencer, reason: c.reason });
      continue;
    }
    const base = c.kind === 'release' ? c.key : c;
    const e: ReleaseEvent = {
      space: base.space,
      release: base.release,
      key,
      sequencer,
      ...(etag ? { etag } : {}),
    };
    if (c.kind === 'release') out.releases.push(e);
    else out.refusedReleases.push({ ...e, reason: c.reason });
  }
  return out;
}

/** The release events in an S3 notification; records for any other key are ignored. */
export function releaseEvents(event: S3Event): ReleaseEvent[] {
  return releaseRecords(event).releases;
}

/** Thrown after every record was handled when one of them needs the platform's retry or its failed-builds queue. */
export class BuildBatchError extends Error {
  constructor(readonly errors: string[]) {
    super(`${errors.length} release record(s) not done: ${errors.join('; ')}`);
    this.name = 'BuildBatchError';
  }
}

/** Before the Lambda deadline, the build is aborted and has this long to give its lease up and throw. */
export const BUILD_ABORT_MARGIN_MS = 10_000;

export function createBuildHandler(
  deps: HandlerDeps &
    Partial<Pick<BuildDeps, 'beforeReady' | 'beforeActivate' | 'events' | 'busyWaitMs' | 'now' | 'tasks'>> & {
      /** In-memory ports for tests; by default S3 and DynamoDB from the clients. */
      store?: BlobStore;
      registry?: Registry;
      /** Default BUILD_ABORT_MARGIN_MS. */
      abortMarginMs?: number;
    },
) {
  const obs = deps.obs ?? createObservability('vicinity-build');
  const log = asLog(obs.logger);
  // Tests hand in in-memory ports; only what is missing is built from the clients.
  const a = deps.store && deps.registry && deps.events ? undefined : adapters(deps, log);
  const store = deps.store ?? (a as ReturnType<typeof adapters>).store;
  const registry = deps.registry ?? (a as ReturnType<typeof adapters>).registry;
  const events = deps.events ?? (a as ReturnType<typeof adapters>).events;
  const moves = pointerNotifier({ log, events, metrics: obs.metrics });
  const margin = deps.abortMarginMs ?? BUILD_ABORT_MARGIN_MS;
  return (
    middy<S3Event, BuildOutcome[]>({
      // middy aborts the handler's signal this long before the deadline; the build then stops, gives its
      // lease up (or FAILS the version at the attempts cap) and rejects, which wins the race below. Should
      // it not, the invocation still fails (with TimeoutError) shortly before Lambda would kill it.
      timeoutEarlyInMillis: margin,
      timeoutEarlyResponse: () =>
        new Promise<never>((_, reject) => {
          const err = new Error('the build did not stop in time after its deadline');
          err.name = 'TimeoutError';
          delay(() => reject(err), Math.max(0, margin - 1000)).unref();
        }),
    })
      .use(injectLambdaContext(obs.logger, { resetKeys: true }))
      .use(flushMetrics(obs.metrics))
      // At-least-once, whole notifications: every record is handled, then the invocation fails if any
      // record needs a retry (a failed attempt, a deadline, a busy lease) or was refused without a
      // version to say so. Lambda retries the whole notification — the records already handled are
      // idempotent (same key + sequencer → same version; a settled version is not rebuilt) — and after
      // its retries puts it in the failed-builds queue, where a refused upload stays visible.
      .handler(async (event: S3Event, context, opts?: { signal?: AbortSignal }) => {
        const outcomes: BuildOutcome[] = [];
        const errors: string[] = [];
        const records = releaseRecords(event);
        for (const r of records.refused) {
          obs.logger.error('release.json refused: its key names no valid space, so no version records it', {
            ...r,
          });
          obs.metrics.addMetric(METRIC.releasesRefused, MetricUnit.Count, 1);
          await events
            .publish(EVENT_DETAIL_TYPE.releaseRefused, { ...r })
            .catch((err) => log.warn('ReleaseRefused not published', { key: r.key, error: String(err) }));
          errors.push(`${r.key}: ${r.reason}`);
        }
        for (const r of records.refusedReleases) {
          try {
            const { reason, ...e } = r;
            const outcome = await refuseRelease({ registry, log, events }, e, reason);
            if (outcome.status === 'FAILED') obs.metrics.addMetric(METRIC.buildFailures, MetricUnit.Count, 1);
            outcomes.push(outcome);
          } catch (err) {
            log.error('could not record a refused release', { key: r.key, error: String(err) });
            errors.push(`${r.key}: ${(err as Error).message}`);
          }
        }
        for (const e of records.releases) {
          obs.logger.appendKeys({ space: e.space, release: e.release });
          try {
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
                busyWaitMs: deps.busyWaitMs,
                ...(deps.tasks ? { tasks: deps.tasks } : {}),
                ...(deps.now ? { now: deps.now } : {}),
                signal: opts?.signal,
              },
              e,
            );
            obs.logger.info('release handled', { ...outcome });
            if (outcome.status === 'FAILED') obs.metrics.addMetric(METRIC.buildFailures, MetricUnit.Count, 1);
            if (outcome.status === 'READY' && outcome.built)
              obs.metrics.addMetric(METRIC.buildsReady, MetricUnit.Count, 1);
            outcomes.push(outcome);
          } catch (err) {
            errors.push(`${e.key}: ${(err as Error).message}`);
          }
        }
        if (errors.length) throw new BuildBatchError(errors);
        return outcomes;
      })
  );
}

export const handler = lazyHandler(() => createBuildHandler(depsFromEnv()));
