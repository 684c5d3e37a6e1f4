/**
 * Staging of settled sharded builds on the stand-ins (s3rver, dynalite, the Lambda Invoke stand-in):
 * nothing of a half-built version stays. The sweeper deletes the staging of a build it FAILS, and the
 * staging objects a FAILED or READY version still has (a task killed after the cleanup, a cleanup
 * that failed) on its next pass; a BUILDING version's staging is never touched.
 */
import type { S3Event } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoRegistry } from '../../functions/adapters/dynamo-registry';
import { createBuildHandler } from '../../functions/builder/handler';
import { lambdaTasks } from '../../functions/builder/sharded/layout';
import { noEvents, silentLog, type TaskDispatcher } from '../../functions/core/ports';
import type { BuildTaskEvent } from '../../functions/core/shard';
import { sweep } from '../../functions/sweeper/sweep';
import { BUILD_TIMEOUT_MS, fakeContext } from '../../local/http-adapter';
import { clusteredVectors, jsonlRows } from '../../local/synthetic';
import { type TestStack, testStack } from '../support/local';
import { versionSettled } from '../support/settle';

const DIMS = 8;
const N = 200;
const data = clusteredVectors(N, DIMS, 4, 3);
const lines = jsonlRows(
  Array.from({ length: N }, (_, i) => `item-${i}`),
  data.vectors,
  DIMS,
)
  .split('\n')
  .slice(0, N);
const good = `${lines.join('\n')}\n`;
const bad = `${[...lines.slice(0, 150), '{"id":"short","vector":[1,2,3]}', ...lines.slice(151)].join('\n')}\n`;
const release = { collections: { items: { file: 'items.jsonl', metric: 'cosine', shards: 2 } } };
const TASK_START_MS = 60_000;
const QUIET_MS = 15 * 60_000;

describe('staging of settled sharded builds (sweeper, on the stand-ins)', () => {
  let s: TestStack;
  let registry: DynamoRegistry;
  /** Build tasks of these spaces are held here instead of queued (their versions stay BUILDING). */
  const held = new Map<string, BuildTaskEvent[]>();
  /** Spaces whose build dies at its first dispatch, after handing the lease to its tasks. */
  const dying = new Set<string>();

  const runSweep = (at = Date.now()) =>
    sweep({
      store: s.store,
      registry,
      log: silentLog,
      events: noEvents,
      now: () => new Date(at),
      staleMs: 3_600_000,
      taskStartMs: TASK_START_MS,
      graceMs: 0,
    });
  const staging = async (space: string, version: string) =>
    (await s.store.list(`staging/${space}/${version}/`)).map((o) => o.key).sort();

  beforeAll(async () => {
    // The build handler the stack runs, with a dispatcher the tests steer per space.
    const tasks: TaskDispatcher = {
      dispatch: async (t) => {
        if (dying.has(t.space)) throw new Error('the build died dispatching its tasks');
        const hold = held.get(t.space);
        if (hold) hold.push(t);
        else await lambdaTasks(s.deps.config).dispatch(t);
      },
    };
    let build: ReturnType<typeof createBuildHandler> | undefined;
    s = await testStack({ qualitySample: 20, retentionGraceMs: 0 }, undefined, {
      tasks: { concurrency: 2, retryDelayMs: 100 },
      sweepMs: 0,
      deliver: (event: S3Event) => {
        build ??= createBuildHandler({ ...s.deps, tasks, busyWaitMs: 0 });
        return build(event, fakeContext('vicinity-build', `build-${Date.now()}`, BUILD_TIMEOUT_MS));
      },
    });
    registry = new DynamoRegistry(s.deps.dynamo, s.info.table);
  }, 120_000);
  afterAll(async () => {
    await s?.dispose();
  });

  it('a build that died between the hand-off and the dispatch is FAILED by the sweeper, and its staging deleted', async () => {
    dying.add('dying');
    await expect(s.publish('dying', 'r1', { 'items.jsonl': good }, release)).rejects.toThrow();
    expect(await registry.getVersion('dying', 'v1')).toMatchObject({
      status: 'BUILDING',
      leaseOwner: 'tasks:v1',
    });
    expect(await staging('dying', 'v1')).toEqual(['staging/dying/v1/plan.json']);

    const report = await runSweep(Date.now() + TASK_START_MS + 1000);
    expect(report.failed).toEqual([
      { space: 'dying', version: 'v1', reason: expect.stringMatching(/never recorded dispatching/) },
    ]);
    expect(report.staging).toEqual([{ space: 'dying', version: 'v1', status: 'FAILED', objects: 1 }]);
    expect(await staging('dying', 'v1')).toEqual([]);
  }, 120_000);

  it('staging written after a FAILED version was cleaned is deleted by every sweep until the quiet period ends', async () => {
    await s.publish('late', 'r1', { 'items.jsonl': bad }, release);
    const v = await versionSettled(s, 'late', 'v1');
    expect(v.status).toBe('FAILED');
    await s.idle();
    expect(await staging('late', 'v1')).toEqual([]);

    // A partition task killed after writing, once the version had FAILED and its staging was deleted.
    const late = 'staging/late/v1/items/shard-1/p0-0.chunk';
    await s.store.putText(late, 'chunk');
    const first = await runSweep();
    expect(first.staging).toEqual([{ space: 'late', version: 'v1', status: 'FAILED', objects: 1 }]);
    expect(await staging('late', 'v1')).toEqual([]);
    // Still within the quiet period: not marked, so the next sweep looks again.
    expect((await registry.getVersion('late', 'v1'))?.stagingDeletedAt).toBeUndefined();
    await s.store.putText(late, 'chunk');
    expect((await runSweep()).staging).toEqual([
      { space: 'late', version: 'v1', status: 'FAILED', objects: 1 },
    ]);
    expect(await staging('late', 'v1')).toEqual([]);

    // Past it: marked once, and never listed again (bounded work per sweep).
    const after = Date.parse(v.finishedAt as string) + QUIET_MS;
    expect((await runSweep(after)).staging).toEqual([]);
    expect((await registry.getVersion('late', 'v1'))?.stagingDeletedAt).toBe(new Date(after).toISOString());
    await s.store.putText('staging/late/v1/stray', 'x');
    expect((await runSweep(after + 1)).staging).toEqual([]);
    expect(await staging('late', 'v1')).toEqual(['staging/late/v1/stray']);
  }, 120_000);

  it("a BUILDING version's staging is untouched by the sweep that cleans a FAILED one's; READY leftovers go too", async () => {
    await s.publish('mixed', 'r1', { 'items.jsonl': bad }, release);
    expect((await versionSettled(s, 'mixed', 'v1')).status).toBe('FAILED');
    await s.idle();
    await s.store.putText('staging/mixed/v1/items/shard-0/p0-0.chunk', 'left by a killed task');

    // v2's tasks are held: it stays BUILDING, with its plan and a chunk as a partition task writes it.
    const tasks: BuildTaskEvent[] = [];
    held.set('mixed', tasks);
    await s.publish('mixed', 'r2', { 'items.jsonl': good }, release);
    expect(tasks).toHaveLength(1);
    await s.store.putText('staging/mixed/v2/items/shard-0/p0-0.chunk', 'being written');
    const building = await staging('mixed', 'v2');
    expect(building).toEqual(['staging/mixed/v2/items/shard-0/p0-0.chunk', 'staging/mixed/v2/plan.json']);

    const report = await runSweep();
    expect(report.failed).toEqual([]);
    expect(report.staging).toEqual([{ space: 'mixed', version: 'v1', status: 'FAILED', objects: 1 }]);
    expect(await staging('mixed', 'v1')).toEqual([]);
    expect(await staging('mixed', 'v2')).toEqual(building);
    expect((await registry.getVersion('mixed', 'v2'))?.status).toBe('BUILDING');

    // The held tasks run: v2 builds READY and its finaliser deletes its staging.
    held.delete('mixed');
    for (const t of tasks) await lambdaTasks(s.deps.config).dispatch(t);
    expect((await versionSettled(s, 'mixed', 'v2')).status).toBe('READY');
    await s.idle();
    expect(await staging('mixed', 'v2')).toEqual([]);
    // A finaliser whose cleanup failed leaves staging behind: the next sweep deletes it.
    await s.store.putText('staging/mixed/v2/items/shard-1.result.json', '{}');
    expect((await runSweep()).staging).toEqual([
      { space: 'mixed', version: 'v2', status: 'READY', objects: 1 },
    ]);
    expect(await staging('mixed', 'v2')).toEqual([]);
  }, 180_000);
});
