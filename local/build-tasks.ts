/**
 * The build-task function on the local Lambda Invoke stand-in: the same handler module Lambda runs
 * (functions/tasks/handler.ts), in worker processes, with the environment the CDK stack would give it.
 */
import { fileURLToPath } from 'node:url';
import type { Config } from '../functions/common/config';
import { ENV } from '../functions/contract';
import { type LambdaFunctionDef, type LambdaStandIn, startLambda } from './standins/lambda';

export const TASK_HANDLER = fileURLToPath(new URL('../functions/tasks/handler.ts', import.meta.url));

export interface LocalTasksOptions {
  /** Worker processes (default: the number of cores). */
  concurrency?: number;
  /** Extra environment for the task function (e.g. the test hook ENV.testKillShard). */
  env?: Record<string, string>;
  retryDelayMs?: number;
}

/** Starts the stand-in first (its endpoint goes into the config); `configure` fills the function's env later. */
export async function startLocalTasks(
  opts: LocalTasksOptions,
  log: (line: string) => void,
): Promise<{
  lambda: LambdaStandIn;
  configure(config: Config, env: Record<string, string | undefined>): void;
}> {
  const def: LambdaFunctionDef = { name: 'vicinity-build-tasks', module: TASK_HANDLER, env: {} };
  const lambda = await startLambda({
    functions: [def],
    concurrency: opts.concurrency,
    retryDelayMs: opts.retryDelayMs,
    log,
  });
  return {
    lambda,
    configure(config, env) {
      def.name = config.taskFunction;
      def.memoryMb = config.taskMemoryMb;
      def.timeoutMs = 15 * 60_000;
      // The environment the stack gives the deployed function, from the same config the build reads.
      def.env = {
        ...env,
        AWS_ACCESS_KEY_ID: 'S3RVER',
        AWS_SECRET_ACCESS_KEY: 'S3RVER',
        [ENV.lambdaEndpoint]: lambda.endpoint,
        [ENV.taskFunction]: config.taskFunction,
        [ENV.taskMemoryMb]: String(config.taskMemoryMb),
        [ENV.maxShardItems]: String(config.maxShardItems),
        [ENV.cacheDir]: config.cacheDir,
        [ENV.retainVersions]: String(config.retainVersions),
        [ENV.retentionGraceMs]: String(config.retentionGraceMs),
        [ENV.maxLineBytes]: String(config.maxLineBytes),
        [ENV.buildWorkers]: String(config.buildWorkers),
        [ENV.leaseMs]: String(config.leaseMs),
        POWERTOOLS_LOG_LEVEL: process.env.POWERTOOLS_LOG_LEVEL,
        POWERTOOLS_METRICS_DISABLED: process.env.POWERTOOLS_METRICS_DISABLED,
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        ...opts.env,
      };
    },
  };
}
