/**
 * Shard task: reads its chunks from every partition, checks ids are unique within the shard (the hash
 * sends equal ids to one shard, so that is unique across the collection), builds the shard's HNSW
 * segments in worker threads, uploads them with per-part hashes under
 * `snapshots/{space}/{version}/{collection}/shard-{j}/seg-i/`, and measures, for the release's sampled
 * query vectors, exact and HNSW top-11 over its own slice for the distributed quality gate.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProblemCollector } from '../../adapters/readers/types';
import { ENV } from '../../contract';
import { ReleaseInvalidError } from '../../core/errors';
import { bruteForce, mergeNeighbours, type Neighbour, normalisedArray } from '../../core/search';
import { writeSegments } from '../../snapshot/writer';
import { buildIndex, rowOf } from '../index-build';
import { VectorTable } from '../vector-table';
import type { TaskRun } from './layout';
import {
  decodeChunk,
  QUALITY_K,
  queriesKey,
  readBytes,
  readJson,
  type SampleItem,
  type ShardedPlan,
  type ShardResult,
  shardPiecesPrefix,
  shardResultKey,
} from './layout';

/** Test hook (ENV.testKillShard = `marker:collection:shard`): SIGKILL this process once, mid-task. */
function maybeKillForTest(collection: string, shard: number): void {
  const hook = process.env[ENV.testKillShard];
  if (!hook) return;
  const [marker, c, s] = hook.split(':');
  if (!marker || c !== collection || Number(s) !== shard || existsSync(marker)) return;
  writeFileSync(marker, `${process.pid}\n`);
  process.kill(process.pid, 'SIGKILL');
}

const pieceOrder = (key: string): [number, number] => {
  const m = /\/p(\d+)-(\d+)\.chunk$/.exec(key);
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
};

export async function runShard(
  run: TaskRun,
  plan: ShardedPlan,
  collection: string,
  shard: number,
  workDir: string,
): Promise<ShardResult> {
  const { deps, space, version } = run;
  const ctx = { space, version, release: plan.event.release };
  const spec = plan.spec.collections.find((c) => c.name === collection);
  if (!spec) throw new Error(`plan of ${version} has no collection ${collection}`);
  const t0 = Date.now();
  const keys = (await deps.store.list(shardPiecesPrefix(space, version, collection, shard)))
    .map((o) => o.key)
    .filter((k) => k.endsWith('.chunk'))
    .sort((a, b) => {
      const [pa, ka] = pieceOrder(a);
      const [pb, kb] = pieceOrder(b);
      return pa - pb || ka - kb;
    });
  maybeKillForTest(collection, shard);

  const problems = new ProblemCollector(10);
  const seen = new Map<string, string>();
  let table: VectorTable | undefined;
  for (const key of keys) {
    const { header, vectors } = decodeChunk(await readBytes(deps.store, key));
    table ??= new VectorTable(header.dims, spec.metric === 'cosine', Math.max(1024, header.n));
    for (let i = 0; i < header.n; i++) {
      const id = header.ids[i] as string;
      const where = `${header.file}:${header.lines[i]}`;
      const first = seen.get(id);
      if (first !== undefined) {
        problems.add({
          file: header.file,
          line: header.lines[i],
          message: `duplicate id ${JSON.stringify(id)} (first at ${first})`,
        });
        continue;
      }
      seen.set(id, where);
      table.push({
        id,
        vector: vectors.subarray(i * header.dims, (i + 1) * header.dims),
        metadata: header.meta?.[i] ?? null,
        file: header.file,
        line: header.lines[i] as number,
      });
    }
    if (run.remainingMs() < 10_000)
      throw new Error(`shard ${shard} of ${collection}: deadline near while reading`);
  }
  if (!problems.ok) throw new ReleaseInvalidError(problems.problems, problems.count);
  seen.clear();
  const t1 = Date.now();
  const queries = await readJson<SampleItem[]>(deps.store, queriesKey(space, version, collection));

  if (!table || table.count === 0) {
    const empty: ShardResult = {
      count: 0,
      dims: table?.dims ?? 0,
      metadataFields: [],
      segments: [],
      exact: queries.map(() => []),
      approx: queries.map(() => []),
      timings: { readMs: t1 - t0, indexMs: 0, qualityMs: 0, uploadMs: 0 },
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
    };
    await deps.store.putText(shardResultKey(space, version, collection, shard), JSON.stringify(empty));
    return empty;
  }

  const { segments: built } = await buildIndex(
    deps,
    spec,
    table,
    join(workDir, collection, `shard-${shard}`),
    ctx,
  );
  const t2 = Date.now();
  const t = table;
  const indexes = await Promise.all(
    built.map((s) => deps.engine.load(s.indexPath, spec.metric, t.dims, s.count, spec.M, spec.ef)),
  );
  const vectors = t.vectors();
  const exact: Neighbour[][] = [];
  const approx: Neighbour[][] = [];
  for (const q of queries) {
    const query = spec.metric === 'cosine' ? normalisedArray(q.vector) : q.vector;
    exact.push(bruteForce(spec.metric, t.dims, vectors, t.ids, query, QUALITY_K));
    const lists = indexes.map((index, s) =>
      index.search(query, QUALITY_K, spec.ef).map((h) => ({
        id: t.ids[rowOf(built[s] as (typeof built)[number], h.label)] as string,
        distance: h.distance,
      })),
    );
    approx.push(mergeNeighbours(lists, QUALITY_K));
  }
  const t3 = Date.now();
  const segments = await writeSegments(deps.store, space, version, `${collection}/shard-${shard}`, built);
  const t4 = Date.now();
  const result: ShardResult = {
    count: t.count,
    dims: t.dims,
    metadataFields: [...t.metadataFields].sort(),
    segments,
    exact,
    approx,
    timings: { readMs: t1 - t0, indexMs: t2 - t1, qualityMs: t3 - t2, uploadMs: t4 - t3 },
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
  };
  await deps.store.putText(shardResultKey(space, version, collection, shard), JSON.stringify(result));
  return result;
}
