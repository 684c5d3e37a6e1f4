/** The router's slot calls as synchronous Lambda Invokes (RequestResponse) of `{prefix}{slot}`. */
import { LambdaInvoker, lazyLambdaClient } from '../../adapters/lambda-invoke';
import type { Config } from '../../common/config';
import type { Log } from '../../core/ports';
import type { SnapshotCache } from '../../snapshot/cache';
import { type SlotRequest, type SlotResponse, slotFunctionName } from './protocol';
import { ShardRouter } from './router';

/** The router over the stack's slot functions, or undefined when none is configured (in-process path). */
export function lambdaShardRouter(
  config: Config,
  cache: Pick<SnapshotCache, 'manifest'>,
  log: Log,
): ShardRouter | undefined {
  const prefix = config.slotFunctionPrefix;
  if (!prefix) return undefined;
  const local = !!config.lambdaEndpoint && !process.env.AWS_ACCESS_KEY_ID;
  const client = lazyLambdaClient({
    region: config.region,
    lambdaEndpoint: config.lambdaEndpoint,
    ...(local ? { credentials: { accessKeyId: 'local', secretAccessKey: 'local' } } : {}),
  });
  const invokers = new Map<number, LambdaInvoker>();
  const invoker = (slot: number) => {
    let i = invokers.get(slot);
    if (!i) {
      i = new LambdaInvoker(client, slotFunctionName(prefix, slot));
      invokers.set(slot, i);
    }
    return i;
  };
  return new ShardRouter({
    shardSlots: config.shardSlots,
    hedgeMs: config.slotHedgeMs,
    deadlineMs: config.slotDeadlineMs,
    invoke: (slot: number, req: SlotRequest) => invoker(slot).invoke<SlotResponse>(req),
    manifest: (space, version, key) => cache.manifest(space, version, key),
    log,
  });
}
