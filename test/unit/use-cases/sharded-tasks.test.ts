/**
 * Sharded builds on the in-memory ports, the build tasks run in this process from a queue (as Lambda's
 * asynchronous invokes would run them): inputs read by their recorded ETags, the tie-aware distributed
 * gate, and the sweeper's verdict on a build that died between the hand-off and the dispatch.
 */
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BuildDeps } from '../../../functions/builder/build-release';
import { runBuildTask } from '../../../functions/builder/sharded/task-run';
import type { TaskDispatcher } from '../../../functions/core/ports';
import { silentLog } from '../../../functions/core/ports';
import type { BuildTaskEvent } from '../../../functions/core/shard';
import { sweep } from '../../../functions/sweeper/sweep';
import { jsonlRows } from '../../../local/synthetic';
import { type Harness, harness, jsonl } from '../../support/memory/harness';

/** A dispatcher that queues tasks, and `drain` that runs them here (a thrown task is retried twice, as Lambda does). */
function queuedTasks(deps: () => BuildDeps) {
  const queue: BuildTaskEvent[] = [];
  const tasks: TaskDispatcher = {
    dispatch: async (t) => {
      queue.push(t);
    },
  };
  return {
    tasks,
    queue,
    async drain() {
      for (let t = queue.shift(); t; t = queue.shift()) {
        for (let attempt = 1; attempt <= 3; attempt++) {
          try {
            await runBuildTask(deps(), tasks, t, () => Number.MAX_SAFE_INTEGER);
            break;
          } catch {
            // retried
          }
        }
      }
    },
  };
}

describe('sharded build tasks (in-memory ports)', () => {
  let h: Harness;
  let q: ReturnType<typeof queuedTasks>;
  beforeEach(async () => {
    h = await harness({ qualitySample: 30 });
    q = queuedTasks(() => h.deps({ tasks: q.tasks }));
  });
  afterEach(() => h.dispose());

  it('an input rewritten after the build recorded its ETag FAILS the version, naming the file', async () => {
    const release = {
      collections: { items: { files: ['a.jsonl', 'b.jsonl'], metric: 'cosine', shards: 3 } },
    };
    const event = await h.publish(
      's',
      'r1',
      { 'a.jsonl': jsonl('a', 60, 1), 'b.jsonl': jsonl('b', 60, 2) },
      release,
    );
    expect(await h.build(event, { tasks: q.tasks })).toMatchObject({ status: 'DISPATCHED', partitions: 2 });
    // Rewritten between the plan and its partition task.
    h.store.putBytes('incoming/s/r1/b.jsonl', jsonl('b', 61, 3));
    await q.drain();
    const v = await h.registry.getVersion('s', 'v1');
    expect(v?.status).toBe('FAILED');
    expect(v?.reason).toMatch(
      /^partition 1 of collection items \(b\.jsonl\): b\.jsonl: changed while the build read it \(ETag /,
    );
    expect(v?.problems).toEqual([expect.objectContaining({ file: 'b.jsonl' })]);
    expect((await h.registry.getPointer('s')).version).toBeFalsy();
  });

  it('a Parquet input rewritten after planning FAILS the version too (the reader wraps the storage error)', async () => {
    const part = (n: number) =>
      Buffer.from(
        parquetWriteBuffer({
          columnData: [
            { name: 'id', data: Array.from({ length: n }, (_, i) => `p${i}`) },
            { name: 'vector', data: Array.from({ length: n }, (_, i) => [1, i + 1, 2]) },
          ],
          schema: [
            { name: 'root', num_children: 2 },
            { name: 'id', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' },
            { name: 'vector', repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
            { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
            { name: 'element', type: 'FLOAT', repetition_type: 'OPTIONAL' },
          ],
        }),
      );
    const release = { collections: { items: { files: ['p.parquet'], metric: 'cosine', shards: 2 } } };
    h.store.putBytes('incoming/s/r1/p.parquet', part(50));
    const event = await h.publish('s', 'r1', {}, release);
    expect(await h.build(event, { tasks: q.tasks })).toMatchObject({ status: 'DISPATCHED' });
    h.store.putBytes('incoming/s/r1/p.parquet', part(51));
    await q.drain();
    const v = await h.registry.getVersion('s', 'v1');
    expect(v?.status).toBe('FAILED');
    expect(v?.reason).toMatch(
      /^partition 0 of collection items \(p\.parquet\): p\.parquet: changed while the build read it/,
    );
  });

  it('the same release untouched goes READY (the ETags recorded are the ones read)', async () => {
    const release = {
      collections: { items: { files: ['a.jsonl', 'b.jsonl'], metric: 'cosine', shards: 3 } },
    };
    const event = await h.publish(
      's',
      'r1',
      { 'a.jsonl': jsonl('a', 60, 1), 'b.jsonl': jsonl('b', 60, 2) },
      release,
    );
    await h.build(event, { tasks: q.tasks });
    await q.drain();
    expect(await h.registry.getVersion('s', 'v1')).toMatchObject({ status: 'READY', tasks: { rows: 120 } });
  });

  it('the distributed gate counts ties: items as near as the true 10th are hits, whichever the exact search listed', async () => {
    // ±e_i ± e_j in 16 dims (480 distinct vectors): every item has 56 others at l2 distance 2 exactly, so
    // its top 10 is 10 of 56 tied items — an id-based gate scores HNSW's (equally right) choice near 0.2.
    const dims = 16;
    const vectors: number[][] = [];
    for (let i = 0; i < dims; i++)
      for (let j = i + 1; j < dims; j++)
        for (const si of [1, -1])
          for (const sj of [1, -1]) {
            const v = new Array(dims).fill(0);
            v[i] = si;
            v[j] = sj;
            vectors.push(v);
          }
    const ids = vectors.map((_, n) => `v${String(n).padStart(3, '0')}`);
    const text = jsonlRows(ids, Float32Array.from(vectors.flat()), dims);
    const release = {
      collections: { items: { file: 'items.jsonl', metric: 'l2', shards: 4 } },
      quality: { minRecall: 0.99 },
    };
    await h.build(await h.publish('ties', 'r1', { 'items.jsonl': text }, release), { tasks: q.tasks });
    await q.drain();
    const v = await h.registry.getVersion('ties', 'v1');
    expect(v?.reason).toBeUndefined();
    expect(v).toMatchObject({
      status: 'READY',
      collections: { items: { count: 480, shards: 4, recallAt10: 1 } },
    });
  });
});

describe('sweeper: a build that died between the lease hand-off and the dispatch', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness({ qualitySample: 10, taskStartMs: 600_000 });
  });
  afterEach(() => h.dispose());

  const T0 = Date.parse('2026-11-30T12:00:00Z');
  const sweepAt = (ms: number) =>
    sweep({
      store: h.store,
      registry: h.registry,
      log: silentLog,
      events: { publish: async () => undefined },
      now: () => new Date(T0 + ms),
      staleMs: 3_600_000,
      taskStartMs: 600_000,
      graceMs: 0,
    });
  const release = { collections: { items: { file: 'items.jsonl', metric: 'cosine', shards: 2 } } };

  it('FAILS it once the bound passes (not before), though its 4-hour task lease is live', async () => {
    const event = await h.publish('s', 'r1', { 'items.jsonl': jsonl('a', 40, 1) }, release);
    // The first dispatch kills the build: the lease is the tasks', no task was queued.
    const dying: TaskDispatcher = {
      dispatch: async () => {
        throw new Error('killed mid-dispatch');
      },
    };
    await h.build(event, { tasks: dying, now: () => new Date(T0) }).catch(() => undefined);
    const before = await h.registry.getVersion('s', 'v1');
    expect(before).toMatchObject({ status: 'BUILDING', leaseOwner: 'tasks:v1', tasks: { startedAt: T0 } });
    expect(before?.tasksDispatchedAt).toBeUndefined();

    expect((await sweepAt(599_999)).failed).toEqual([]);
    expect((await h.registry.getVersion('s', 'v1'))?.status).toBe('BUILDING');
    const report = await sweepAt(600_000);
    expect(report.failed).toEqual([
      {
        space: 's',
        version: 'v1',
        reason: expect.stringMatching(/died between the hand-off and the dispatch/),
      },
    ]);
    expect(await h.registry.getVersion('s', 'v1')).toMatchObject({ status: 'FAILED' });
  });

  it('leaves a dispatched task phase alone however long its tasks wait in the queue', async () => {
    const event = await h.publish('s', 'r1', { 'items.jsonl': jsonl('a', 40, 1) }, release);
    const queued: BuildTaskEvent[] = [];
    const tasks: TaskDispatcher = {
      dispatch: async (t) => {
        queued.push(t);
      },
    };
    expect(await h.build(event, { tasks, now: () => new Date(T0) })).toMatchObject({ status: 'DISPATCHED' });
    expect(queued).toHaveLength(1);
    expect((await h.registry.getVersion('s', 'v1'))?.tasksDispatchedAt).toBe(new Date(T0).toISOString());
    expect((await sweepAt(3_000_000)).failed).toEqual([]);
    expect((await h.registry.getVersion('s', 'v1'))?.status).toBe('BUILDING');
  });
});
