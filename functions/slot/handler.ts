// slot/: a shard-slot function — serves shard j of every sharded collection for j mod shardSlots = its
// slot, by synchronous Lambda Invoke from the query router. Use case: query/shards/slot.ts.
import { existsSync } from 'node:fs';
import { hnswEngine } from '../adapters/hnsw-index';
import { adapters } from '../common/adapters';
import { asLog, createObservability } from '../common/observability';
import { depsFromEnv, type HandlerDeps, lazyHandler } from '../common/wiring';
import { ENV } from '../contract';
import { isSlotRequest, type SlotRequest, type SlotResponse, slotManifest } from '../query/shards/protocol';
import { SlotService } from '../query/shards/slot';
import { SnapshotCache } from '../snapshot/cache';

export function createSlotHandler(deps: HandlerDeps, slot: number, shardSlots: number) {
  const obs = deps.obs ?? createObservability('vicinity-query-slot');
  const log = asLog(obs.logger);
  const { store, registry } = adapters(deps);
  const cache = new SnapshotCache(store, hnswEngine, {
    cacheDir: deps.config.cacheDir,
    memoryBudgetBytes: deps.config.memoryBudgetBytes,
    diskBudgetBytes: deps.config.diskBudgetBytes,
    maxPinnedVersions: deps.config.maxPinnedVersions,
    pinWindowMs: deps.config.pinWindowMs,
    versionGone: async (space, version) => {
      const record = await registry.getVersion(space, version);
      return !record || record.status === 'DELETED';
    },
    log,
    view: (m) => slotManifest(m, slot, shardSlots),
  });
  const service = new SlotService({
    cache,
    slot,
    shardSlots,
    maxResponseBytes: deps.config.slotMaxResponseBytes,
  });
  return Object.assign((event: SlotRequest) => service.handle(event), { cache, service });
}

/** Test hook (ENV.testKillSlot `<marker>:<slot>`): while the marker file exists, this slot dies on every call. */
function killHook(slot: number): void {
  const hook = process.env[ENV.testKillSlot];
  if (!hook) return;
  const at = hook.lastIndexOf(':');
  if (Number(hook.slice(at + 1)) === slot && existsSync(hook.slice(0, at)))
    process.kill(process.pid, 'SIGKILL');
}

export const handler = lazyHandler<unknown, SlotResponse>(() => {
  const slot = Number(process.env[ENV.slot]);
  const shardSlots = Number(process.env[ENV.shardSlots]);
  if (!Number.isInteger(slot) || !Number.isInteger(shardSlots) || slot < 0 || slot >= shardSlots)
    throw new Error(
      `${ENV.slot}=${process.env[ENV.slot]} of ${ENV.shardSlots}=${process.env[ENV.shardSlots]}`,
    );
  const fn = createSlotHandler(depsFromEnv(), slot, shardSlots);
  return async (event) => {
    killHook(slot);
    if (!isSlotRequest(event)) throw new Error('not a slot request');
    return fn(event);
  };
});
