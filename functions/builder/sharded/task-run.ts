/**
 * One build task, whatever its kind: count the attempt, do the work (skipped if already done), record
 * it done with one conditional update on the version record (idempotent per task), and advance the
 * fan-in — the partition that completes the set of partitions starts the shard tasks, the shard that
 * completes the set of shards finalizes. A refused release FAILS the version at once; any other error
 * is rethrown for Lambda to retry, and FAILS the version on the third attempt.
 */

import { randomUUID } from 'node:crypto';
import { mkdir, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EVENT_DETAIL_TYPE } from '../../contract';
import { ReleaseInvalidError, type ReleaseProblem } from '../../core/errors';
import type { TaskDispatcher } from '../../core/ports';
import { type BuildTaskEvent, taskKey } from '../../core/shard';
import type { TaskState, VersionRecord } from '../../core/version';
import type { BuildDeps } from '../deps';
import { changedInput } from '../ingest';
import { deleteInputsIfAsked } from '../inputs';
import { finalizeVersion } from './finalize';
import {
  deleteStaging,
  describePartition,
  lineBasesKey,
  type PartitionResult,
  partitionResultKey,
  planKey,
  queriesKey,
  readJson,
  type SampleItem,
  type ShardedCollectionPlan,
  type ShardedPlan,
  type TaskRun,
} from './layout';
import { runPartition, sortSample } from './partition';
import { runShard } from './shard-task';

export const TASK_ATTEMPTS = 3;

export type TaskOutcome =
  | { status: 'DONE' | 'ALREADY_DONE'; key: string; next?: 'shards' | 'READY' | 'SETTLED' }
  | { status: 'SKIPPED'; key: string; reason: string }
  | { status: 'FAILED'; key: string; reason: string };

function describeTask(t: BuildTaskEvent, plan?: ShardedPlan): string {
  if (t.kind === 'finalize') return 'finalize';
  if (t.kind === 'shard') return `shard ${t.index} of collection ${t.collection}`;
  const part = plan?.sharded.find((c) => c.name === t.collection)?.partitions[t.index ?? 0];
  return `partition ${t.index} of collection ${t.collection}${part ? ` (${describePartition(part)})` : ''}`;
}

/** Rows refused in later byte ranges, found by the fan-in: the reason names the partition that read them. */
export class PartitionRefusedError extends ReleaseInvalidError {
  static override readonly errorName: string = 'PartitionRefusedError';
  constructor(
    readonly what: string,
    problems: ReleaseProblem[],
    count: number,
  ) {
    super(problems, count);
  }
}

export async function runBuildTask(
  deps: BuildDeps,
  tasks: TaskDispatcher,
  task: BuildTaskEvent,
  remainingMs: () => number,
): Promise<TaskOutcome> {
  const { registry, log } = deps;
  const { space, version } = task;
  const key = taskKey(task);
  const workDir = join(
    deps.config.cacheDir,
    'tasks',
    `${space}-${version}-${key.replaceAll(':', '_')}-${randomUUID()}`,
  );
  const run: TaskRun = {
    deps,
    tasks,
    space,
    version,
    remainingMs,
    async putBytes(k, body) {
      await mkdir(workDir, { recursive: true });
      const path = join(workDir, `put-${randomUUID()}`);
      await writeFile(path, body);
      try {
        await deps.store.putFile(k, path);
      } finally {
        await unlink(path).catch(() => undefined);
      }
    },
  };
  const ctx = { space, version, task: key };

  const begun =
    task.kind === 'finalize'
      ? await registry
          .getVersion(space, version)
          .then((record) =>
            record?.status === 'BUILDING' && record.tasks ? { attempts: 1, done: false, record } : undefined,
          )
      : await registry.beginTask(space, version, key);
  if (!begun) return { status: 'SKIPPED', key, reason: 'the version is not BUILDING with tasks' };
  run.inputEtags = begun.record.inputEtags;
  let plan: ShardedPlan | undefined;
  try {
    plan = await readJson<ShardedPlan>(deps.store, planKey(space, version));
    let record: VersionRecord = begun.record;
    let recorded = false;
    if (task.kind === 'finalize') {
      // An explicit finalize (operator or a lost finaliser): only once every shard is done.
    } else if (!begun.done) {
      let rows = 0;
      if (task.kind === 'partition') {
        rows = (await runPartition(run, plan, task.collection as string, task.index as number)).rows;
      } else {
        rows = (await runShard(run, plan, task.collection as string, task.index as number, workDir)).count;
      }
      const done = await registry.completeTask(space, version, key, rows);
      if (!done) {
        // The version settled (FAILED by another task) while this one wrote: its outputs go too.
        await deleteStaging(deps.store, space, version);
        return { status: 'SKIPPED', key, reason: 'the version settled while the task ran' };
      }
      record = done.record;
      recorded = done.recorded;
    }
    const t = record.tasks as TaskState;
    log.info('build task done', {
      ...ctx,
      recorded,
      partitions: `${t.partitionsDone}/${t.partitions}`,
      shards: `${t.shardsDone}/${t.shards}`,
      rows: t.rows,
    });
    if (task.kind === 'partition' && t.partitionsDone === t.partitions && t.shardsDone < t.shards) {
      // Exactly one update saw the count reach the total; a retry of it (already done) repeats the dispatch.
      await startShards(run, plan);
      return { status: recorded ? 'DONE' : 'ALREADY_DONE', key, next: 'shards' };
    }
    if (task.kind !== 'partition' && t.shardsDone === t.shards && t.partitionsDone === t.partitions) {
      const r = await finalizeVersion(run, plan, workDir);
      return { status: recorded ? 'DONE' : 'ALREADY_DONE', key, next: r.status };
    }
    return { status: recorded ? 'DONE' : 'ALREADY_DONE', key };
  } catch (thrown) {
    // An input rewritten after the build recorded its ETag: refused, naming the file (not retried).
    const err = (plan && changedInput(thrown, `incoming/${space}/${plan.event.release}/`)) || thrown;
    const what = err instanceof PartitionRefusedError ? err.what : describeTask(task, plan);
    if (err instanceof ReleaseInvalidError) {
      await failVersion(deps, task, plan, `${what}: ${err.message}`, err);
      return { status: 'FAILED', key, reason: err.message };
    }
    if (begun.attempts >= TASK_ATTEMPTS) {
      const reason = `${what} failed ${begun.attempts} times; last error: ${(err as Error).message}`;
      await failVersion(deps, task, plan, reason);
      return { status: 'FAILED', key, reason };
    }
    log.error('build task failed; Lambda retries it', {
      ...ctx,
      attempts: begun.attempts,
      error: String(err),
    });
    throw err;
  } finally {
    await rm(workDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/**
 * Where each partition's first line is in its file: 0, except for byte ranges after the first, which
 * start after the lines of the ranges before them (each range counted its own lines).
 */
export function lineBases(cp: ShardedCollectionPlan, parts: PartitionResult[]): number[] {
  const seen = new Map<string, number>();
  return cp.partitions.map((p, i) => {
    if (!p.bytes) return 0;
    const file = p.files[0] as string;
    const base = seen.get(file) ?? 0;
    seen.set(file, base + (parts[i]?.lines ?? 0));
    return base;
  });
}

/** A problem of a later byte range with its file line: `line` and a dims message's `(set by line n)`. */
function atFileLine(p: ReleaseProblem, base: number): ReleaseProblem {
  if (p.line === undefined || base === 0) return p;
  return {
    ...p,
    line: p.line + base,
    message: p.message.replace(/\(set by line (\d+)\)/, (_, n) => `(set by line ${Number(n) + base})`),
  };
}

/** After the last partition: check the parts agree, pick the gate's sample, start one task per shard. */
async function startShards(run: TaskRun, plan: ShardedPlan): Promise<void> {
  const { deps, space, version } = run;
  for (const cp of plan.sharded) {
    const parts = await Promise.all(
      cp.partitions.map((_, i) =>
        readJson<PartitionResult>(deps.store, partitionResultKey(space, version, cp.name, i)),
      ),
    );
    const bases = lineBases(cp, parts);
    const refused = parts.flatMap((p, i) =>
      p.problems?.length
        ? [
            {
              i,
              problems: p.problems.map((x) => atFileLine(x, bases[i] ?? 0)),
              count: p.problemCount ?? p.problems.length,
            },
          ]
        : [],
    );
    if (refused.length) {
      const first = refused[0] as (typeof refused)[number];
      throw new PartitionRefusedError(
        describeTask(
          { vicinity: 'build-task', kind: 'partition', space, version, collection: cp.name, index: first.i },
          plan,
        ),
        refused.flatMap((r) => r.problems).slice(0, 10),
        refused.reduce((n, r) => n + r.count, 0),
      );
    }
    const withRows = parts.filter((p) => p.rows > 0);
    const dims = withRows[0]?.dims;
    const odd = withRows.find((p) => p.dims !== dims);
    if (odd) {
      throw new ReleaseInvalidError([
        {
          file: odd.files[0] as string,
          message: `collection ${cp.name}: vectors have ${odd.dims} values here but ${dims} in ${withRows[0]?.files[0]}`,
        },
      ]);
    }
    if (!withRows.length) {
      throw new ReleaseInvalidError([
        { file: cp.partitions[0]?.files[0] as string, message: `collection ${cp.name} is empty` },
      ]);
    }
    const sample = sortSample(parts.flatMap((p) => p.sample)).slice(0, plan.quality.sample) as SampleItem[];
    await deps.store.putText(queriesKey(space, version, cp.name), JSON.stringify(sample));
    await deps.store.putText(lineBasesKey(space, version, cp.name), JSON.stringify(bases));
  }
  for (const cp of plan.sharded) {
    for (let j = 0; j < cp.shards; j++) {
      await run.tasks.dispatch({
        vicinity: 'build-task',
        kind: 'shard',
        space,
        version,
        collection: cp.name,
        index: j,
      });
    }
  }
}

/** FAILED with the task and reason (only while the version is BUILDING under the task phase's lease). */
async function failVersion(
  deps: BuildDeps,
  task: BuildTaskEvent,
  plan: ShardedPlan | undefined,
  reason: string,
  invalid?: ReleaseInvalidError,
): Promise<void> {
  const { space, version } = task;
  const owner = plan?.taskOwner ?? `tasks:${version}`;
  const ok = await deps.registry.finishVersion(space, version, owner, {
    status: 'FAILED',
    finishedAt: new Date().toISOString(),
    reason,
    ...(invalid ? { problems: invalid.problems, problemCount: invalid.problemCount } : {}),
  });
  if (!ok) return;
  deps.log.warn('sharded build FAILED', { space, version, reason });
  await deps.events.publish(EVENT_DETAIL_TYPE.versionFailed, {
    space,
    version,
    release: plan?.event.release,
    reason,
  });
  await deleteStaging(deps.store, space, version).catch((err) =>
    deps.log.warn('could not delete staging; the sweeper removes it', { space, version, error: String(err) }),
  );
  if (plan) await deleteInputsIfAsked(deps, space, plan.event.release);
}
