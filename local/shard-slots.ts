/**
 * The shard-slot functions on the local Lambda Invoke stand-in: `shardSlots` functions running the same
 * handler module Lambda runs (functions/slot/handler.ts), each in its own worker process(es) with its own
 * cache directory, behind the endpoint the query router's Lambda client uses (AWS_ENDPOINT_URL_LAMBDA).
 */
import { fileURLToPath } from 'node:url';
import { type Config, cacheBudgetMb } from '../functions/common/config';
import { ENV } from '../functions/contract';
import { slotFunctionName } from '../functions/query/shards/protocol';
import type { LambdaFunctionDef } from './standins/lambda';

export const SLOT_HANDLER = fileURLToPath(new URL('../functions/slot/handler.ts', import.meta.url));
export const LOCAL_SLOT_PREFIX = 'vicinity-query-slot-';

export interface LocalSlotsOptions {
  /** How many slot functions (shard j → slot j mod shardSlots). */
  shardSlots: number;
  /** Worker processes per slot (default 1). */
  concurrency?: number;
  memoryMb?: number;
  /** Extra environment for every slot (e.g. the test hook ENV.testKillSlot). */
  env?: Record<string, string>;
  /** Hedge bound for the router (ENV.slotHedgeMs). */
  hedgeMs?: number;
}

/** The slot function definitions (handed to the stand-in at start) and the router's environment. */
export function localSlots(opts: LocalSlotsOptions | undefined): {
  defs: LambdaFunctionDef[];
  routerEnv: Record<string, string>;
  configure(config: Config, env: Record<string, string | undefined>, endpoint: string): void;
} {
  if (!opts) return { defs: [], routerEnv: {}, configure: () => undefined };
  const defs: LambdaFunctionDef[] = Array.from({ length: opts.shardSlots }, (_, i) => ({
    name: slotFunctionName(LOCAL_SLOT_PREFIX, i),
    module: SLOT_HANDLER,
    concurrency: opts.concurrency ?? 1,
    memoryMb: opts.memoryMb ?? 1024,
    timeoutMs: 30_000,
    env: {},
  }));
  return {
    defs,
    routerEnv: {
      [ENV.slotFunctionPrefix]: LOCAL_SLOT_PREFIX,
      [ENV.shardSlots]: String(opts.shardSlots),
      // The build refuses a release whose busiest slot would not fit (builder/serving-fit.ts).
      [ENV.slotMemoryMb]: String(opts.memoryMb ?? 1024),
      ...(opts.hedgeMs !== undefined ? { [ENV.slotHedgeMs]: String(opts.hedgeMs) } : {}),
    },
    configure(config, env, endpoint) {
      for (const [i, def] of defs.entries()) {
        def.env = {
          ...env,
          AWS_ACCESS_KEY_ID: 'S3RVER',
          AWS_SECRET_ACCESS_KEY: 'S3RVER',
          [ENV.lambdaEndpoint]: endpoint,
          [ENV.slot]: String(i),
          [ENV.shardSlots]: String(opts.shardSlots),
          // Each slot its own cache directory, as each Lambda instance has its own /tmp.
          [ENV.cacheDir]: `${config.cacheDir}-slot-${i}`,
          [ENV.memoryBudgetMb]: String(cacheBudgetMb(def.memoryMb ?? 1024)),
          POWERTOOLS_LOG_LEVEL: process.env.POWERTOOLS_LOG_LEVEL,
          POWERTOOLS_METRICS_DISABLED: process.env.POWERTOOLS_METRICS_DISABLED,
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
          ...opts.env,
        };
      }
    },
  };
}
