// tasks/: the build-task function — partition, shard and finalize tasks of sharded collections,
// invoked asynchronously (Lambda retries twice, then the on-failure destination). Use cases: builder/sharded/.
import { randomUUID } from 'node:crypto';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { hnswEngine } from '../adapters/hnsw-index';
import { lambdaTasks } from '../builder/sharded/layout';
import { runBuildTask, type TaskOutcome } from '../builder/sharded/task-run';
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
import type { TaskDispatcher } from '../core/ports';
import { type BuildTaskEvent, isBuildTaskEvent } from '../core/shard';

export function createTaskHandler(deps: HandlerDeps & { tasks?: TaskDispatcher }) {
  const obs = deps.obs ?? createObservability(SERVICE_NAME.tasks);
  const log = asLog(obs.logger);
  const { store, registry, events } = adapters(deps, log);
  const moves = pointerNotifier({ log, events, metrics: obs.metrics });
  // Deployed, the function invokes itself: its name is AWS_LAMBDA_FUNCTION_NAME unless the env names one.
  const self = process.env[ENV.taskFunction] || process.env.AWS_LAMBDA_FUNCTION_NAME;
  const tasks = deps.tasks ?? lambdaTasks(self ? { ...deps.config, taskFunction: self } : deps.config);
  return middy<BuildTaskEvent, TaskOutcome>()
    .use(injectLambdaContext(obs.logger, { resetKeys: true }))
    .use(flushMetrics(obs.metrics))
    .handler(async (event: BuildTaskEvent, context: Context) => {
      if (!isBuildTaskEvent(event)) throw new Error('not a build-task event');
      obs.logger.appendKeys({ space: event.space, version: event.version, kind: event.kind });
      const outcome = await runBuildTask(
        {
          store,
          registry,
          engine: hnswEngine,
          config: deps.config,
          log,
          events,
          moves,
          owner: `${context?.awsRequestId ?? 'local'}:${randomUUID()}`,
        },
        tasks,
        event,
        () => context?.getRemainingTimeInMillis?.() ?? Number.MAX_SAFE_INTEGER,
      );
      obs.logger.info('build task handled', { ...outcome });
      if (outcome.status === 'FAILED') obs.metrics.addMetric(METRIC.buildTaskFailures, MetricUnit.Count, 1);
      return outcome;
    });
}

export const handler = lazyHandler(() => createTaskHandler(depsFromEnv()));
