/**
 * `VICINITY_DEMO=sharded npm start`: the local stack with shard-slot functions (worker processes behind
 * the Lambda Invoke stand-in); main.ts then publishes the music demo again as space `music-sharded` with
 * its artists in 4 shards (demo.ts publishShardedMusicDemo). publishShardedDemo, a synthetic space
 * `sharded` whose collection `points` has 8 shards, is what the shard-slot integration tests publish.
 */
import type { BlobStore } from '../functions/core/ports';
import type { LocalSlotsOptions } from './shard-slots';
import { clusteredVectors, jsonlRows } from './synthetic';

export const SHARDED_DEMO_SPACE = 'sharded';

/** The slots `npm start` runs with VICINITY_DEMO=sharded (VICINITY_SHARD_SLOTS, default 4). */
export function demoSlots(env: NodeJS.ProcessEnv = process.env): LocalSlotsOptions | undefined {
  if (env.VICINITY_DEMO !== 'sharded') return undefined;
  return { shardSlots: Math.max(1, Math.min(64, Number(env.VICINITY_SHARD_SLOTS || 4))), memoryMb: 1024 };
}

/** 20,000 clustered 32-dim points in 8 shards (metadata: their cluster), release.json last. */
export async function publishShardedDemo(store: BlobStore, n = 20_000, dims = 32): Promise<void> {
  const data = clusteredVectors(n, dims, 40, 11);
  const ids = Array.from({ length: n }, (_, i) => `p${i}`);
  const prefix = `incoming/${SHARDED_DEMO_SPACE}/synthetic-1/`;
  await store.putText(
    `${prefix}points.jsonl`,
    jsonlRows(ids, data.vectors, dims, (i) => ({ cluster: data.cluster[i] })),
  );
  await store.putText(
    `${prefix}release.json`,
    JSON.stringify({ collections: { points: { file: 'points.jsonl', metric: 'cosine', shards: 8 } } }),
    'application/json',
  );
}
